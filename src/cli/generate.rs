//! `sda generate`: a trajectory dataset of a registered system.

use super::args::{merge_params, read_toml};
use crate::experiments::generate::{self, GenerateOptions, Outcome, Preset};
use crate::registry::{self, parse_params, SystemPlugin};
use crate::Result;

/// Generate a trajectory dataset (train/valid/test `.npy` + `manifest.json`). Resumable:
/// rerun the same command after an interruption.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The system: `lorenz63`, `kolmogorov`, or any registered system (`sda list`).
    system: String,
    /// Output folder (default `data/<system>`).
    #[arg(long)]
    out: Option<String>,
    /// Number of trajectories, split 80/10/10 (default 1024, the paper's).
    #[arg(long)]
    trajectories: Option<usize>,
    /// Base seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Discarded transitions before the kept states (kolmogorov: 64, others: 1024).
    #[arg(long)]
    burn_in: Option<usize>,
    /// Kept states per trajectory (kolmogorov: 64, others: 1024).
    #[arg(long)]
    keep: Option<usize>,
    /// Small preset for quick tries and tests: 64 × 256 states, kolmogorov 16
    /// trajectories on a 64² grid (explicit flags still win).
    #[arg(long)]
    small: bool,
    /// Solver grid size: the parameter `grid` (kolmogorov), over the others.
    #[arg(long)]
    grid: Option<usize>,
    /// Mean-pooling factor to the learning grid: the parameter `coarsen` (kolmogorov), over the
    /// others.
    #[arg(long)]
    coarsen: Option<usize>,
    /// TOML file of the system's parameters (unknown keys are errors).
    #[arg(long)]
    config: Option<String>,
    /// The system's parameters, as the inside of a TOML inline table, over those of --config.
    #[arg(long, default_value = "")]
    system_params: String,
    /// Stop after this many new trajectories (generate in chunks).
    #[arg(long)]
    max_new: Option<usize>,
    /// Replace a dataset of other settings already in --out.
    #[arg(long)]
    force: bool,
}

impl GenerateArgs {
    /// Runs the command: the system by its registered name, its parameters from the preset
    /// (`--small`), then --config, then --system-params, then --grid/--coarsen.
    pub fn run(self) -> Result<()> {
        let Self {
            system,
            out,
            trajectories,
            seed,
            burn_in,
            keep,
            small,
            grid,
            coarsen,
            config,
            system_params,
            max_new,
            force,
        } = self;
        // an unknown name is refused before any parameter file is read
        registry::find::<SystemPlugin>(&system)?;
        let preset = Preset::of(&system, small);
        let mut params = parse_params(preset.params)?;
        if let Some(path) = &config {
            merge_params(&mut params, read_toml::<toml::Value>(path)?);
        }
        merge_params(&mut params, parse_params(&system_params)?);
        for (key, value) in [("grid", grid), ("coarsen", coarsen)] {
            if let Some(v) = value {
                let v = i64::try_from(v).map_err(|_| {
                    crate::Error::Invalid(format!("--{key} {v} is beyond any grid"))
                })?;
                let mut table = toml::Table::new();
                table.insert(key.into(), v.into());
                merge_params(&mut params, toml::Value::Table(table));
            }
        }
        let sys = registry::build::<SystemPlugin>(&system, &params).map_err(|e| match &config {
            Some(path) => crate::Error::Invalid(format!("{system} parameters (from {path}): {e}")),
            None => e,
        })?;
        let opts = GenerateOptions {
            out: out.unwrap_or_else(|| format!("data/{system}")).into(),
            trajectories: trajectories.unwrap_or(preset.trajectories),
            seed,
            burn_in: burn_in.unwrap_or(preset.burn_in),
            keep: keep.unwrap_or(preset.keep),
            max_new,
            progress: true,
            force,
        };
        let start = std::time::Instant::now();
        let outcome = generate::generate_system(&system, &params, sys.as_ref(), &opts)?;
        let secs = start.elapsed().as_secs_f64();
        match outcome {
            Outcome::Complete { computed, reused } => println!(
                "wrote {}/{{train,valid,test}}.npy and manifest.json: {computed} trajectories \
                 simulated in {secs:.1} s, {reused} reused",
                opts.out.display()
            ),
            Outcome::Partial {
                computed,
                remaining,
            } => println!(
                "{computed} trajectories simulated in {secs:.1} s, {remaining} remaining: \
                 rerun the same command to continue"
            ),
        }
        Ok(())
    }
}
