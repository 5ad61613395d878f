//! `sda oracle`: one oracle run with every component chosen by registered name.

use super::args::{
    BlanketArgs, Defaults, GuidanceArgs, ObservationArgs, SamplerArgs, SamplingArgs,
};
use crate::experiments::oracle::{self, NamedRun};
use crate::registry::parse_params;
use crate::sampler::SampleOptions;
use crate::Result;

/// One oracle run with every component chosen by registered name.
#[derive(clap::Args, Debug)]
pub struct OracleArgs {
    #[command(flatten)]
    observation: ObservationArgs<Self>,
    // `exact` samples the exact posterior ε instead of a guidance's
    #[command(flatten)]
    guidance: GuidanceArgs<Self>,
    /// The prior ε that the guidance is applied to: `exact` (the whole trajectory's, closed
    /// form) or `composed` (Algorithm 2's composition of the analytic local score).
    #[arg(long, value_enum, default_value = "composed")]
    prior: oracle::OraclePrior,
    #[command(flatten)]
    blanket: BlanketArgs,
    #[command(flatten)]
    sampler: SamplerArgs<Self>,
    /// Diffusion schedule plugin (`vp-cosine` is the paper's).
    #[arg(long, default_value = "vp-cosine")]
    schedule: String,
    /// Schedule parameters.
    #[arg(long, default_value = "")]
    schedule_params: String,
    /// Trajectory length L.
    #[arg(long, default_value_t = oracle::ORACLE_LEN)]
    len: usize,
    #[command(flatten)]
    sampling: SamplingArgs<Self>,
}

impl Defaults for OracleArgs {
    const OBSERVATION: (&'static str, &'static str) = (
        "pick",
        "states = [0, 5, 10, 15], components = [0], sigma = 0.1",
    );
    const GUIDANCE: (&'static str, &'static str) = ("sda", "gamma = 0.01");
    const SAMPLER: (&'static str, &'static str) = ("pc", "corrections = 1");
    const SAMPLES: &'static str = "1024";
    const STEPS: &'static str = "256";
    const EXACT_GUIDANCE: bool = true;
}

impl OracleArgs {
    /// Runs the command: one row, or one per `--corrections` value.
    pub fn run(self) -> Result<()> {
        let corrections: Vec<Option<usize>> = match self.sampling.corrections() {
            Some(list) => list.iter().map(|&c| Some(c)).collect(),
            None => vec![None],
        };
        let guidance = match self.guidance.name() {
            "exact" => None,
            _ => Some(self.sampling.guidance(&self.guidance)?),
        };
        let seed = self.sampling.seed;
        let mut rows = Vec::new();
        for c in corrections {
            let run = NamedRun {
                observation: self.observation.named()?,
                guidance: guidance.clone(),
                prior: self.prior,
                blanket: self.blanket.clone().named(2)?,
                sampler: self.sampling.sampler(&self.sampler, c)?,
                schedule: (self.schedule.clone(), parse_params(&self.schedule_params)?),
                len: self.len,
                options: SampleOptions {
                    samples: self.sampling.samples,
                    steps: self.sampling.steps,
                    grid: self.sampling.time_grid,
                    seed: seed.wrapping_add(100),
                    progress: true,
                },
                problem_seed: seed,
            };
            rows.push(oracle::run_named(&run)?);
        }
        println!("{}", oracle::format_table(&rows));
        Ok(())
    }
}
