//! `sda oracle`: one oracle run with every component chosen by registered name.

use super::args::plugin_params;
use crate::experiments::oracle::{self, NamedRun};
use crate::registry::parse_params;
use crate::sampler::SampleOptions;
use crate::Result;

/// One oracle run with every component chosen by registered name.
#[derive(clap::Args, Debug)]
pub struct OracleArgs {
    /// Observation plugin.
    #[arg(long, default_value = "pick")]
    observation: String,
    /// Observation parameters, as the inside of a TOML inline table.
    #[arg(
        long,
        default_value = "states = [0, 5, 10, 15], components = [0], sigma = 0.1"
    )]
    observation_params: String,
    /// Guidance plugin (`exact` samples the exact posterior ε instead).
    #[arg(long, default_value = "sda")]
    guidance: String,
    /// Guidance parameters [default for `sda`: "gamma = 0.01"; any other guidance gets
    /// only its own defaults].
    #[arg(long)]
    guidance_params: Option<String>,
    /// Blanket plugin.
    #[arg(long, default_value = "temporal-window")]
    blanket: String,
    /// Blanket parameters [default for `temporal-window`: "k = 2"; any other blanket
    /// gets only its own defaults].
    #[arg(long)]
    blanket_params: Option<String>,
    /// Sampler plugin.
    #[arg(long, default_value = "pc")]
    sampler: String,
    /// Sampler parameters [default for `pc`: "corrections = 1, tau = 0.25"; any other
    /// sampler gets only its own defaults].
    #[arg(long)]
    sampler_params: Option<String>,
    /// Diffusion schedule plugin (`vp-cosine` is the paper's).
    #[arg(long, default_value = "vp-cosine")]
    schedule: String,
    /// Schedule parameters.
    #[arg(long, default_value = "")]
    schedule_params: String,
    /// Trajectory length L.
    #[arg(long, default_value_t = oracle::ORACLE_LEN)]
    len: usize,
    /// Posterior samples.
    #[arg(long, default_value_t = 1024)]
    samples: usize,
    /// Reverse-diffusion steps.
    #[arg(long, default_value_t = 256)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl OracleArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
            observation,
            observation_params,
            guidance,
            guidance_params,
            blanket,
            blanket_params,
            sampler,
            sampler_params,
            schedule,
            schedule_params,
            len,
            samples,
            steps,
            seed,
        } = self;
        let run = NamedRun {
            observation: (observation, parse_params(&observation_params)?),
            guidance: if guidance == "exact" {
                None
            } else {
                Some(plugin_params(
                    guidance,
                    guidance_params,
                    ("sda", "gamma = 0.01"),
                )?)
            },
            blanket: plugin_params(blanket, blanket_params, ("temporal-window", "k = 2"))?,
            sampler: plugin_params(
                sampler,
                sampler_params,
                ("pc", "corrections = 1, tau = 0.25"),
            )?,
            schedule: (schedule, parse_params(&schedule_params)?),
            len,
            options: SampleOptions {
                samples,
                steps,
                seed: seed.wrapping_add(100),
                progress: true,
            },
            problem_seed: seed,
        };
        let row = oracle::run_named(&run)?;
        println!("{}", oracle::format_table([&row]));
        Ok(())
    }
}
