//! `sda generate`: a trajectory dataset of a registered system.

use super::args::read_toml;
use crate::experiments::generate::{self, GenerateOptions, Outcome};
use crate::registry::{self, parse_params};
use crate::registry::{Plugin, SystemPlugin};
use crate::systems::kolmogorov::KolmogorovConfig;
use crate::systems::lorenz63::Lorenz63;
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
    /// Solver grid size (overrides the config).
    #[arg(long)]
    grid: Option<usize>,
    /// Mean-pooling factor to the learning grid (overrides the config).
    #[arg(long)]
    coarsen: Option<usize>,
    /// TOML file with the configuration of lorenz63 or kolmogorov (unknown keys are
    /// errors).
    #[arg(long)]
    config: Option<String>,
    /// Parameters of another registered system, as the inside of a TOML inline table.
    #[arg(long, default_value = "")]
    system_params: String,
    /// Stop after this many new trajectories (generate in chunks).
    #[arg(long)]
    max_new: Option<usize>,
}

impl GenerateArgs {
    /// Runs the command.
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
        } = self;
        // lorenz63 and kolmogorov have their own generators and configuration files;
        // every other system is generated through its registered `Dynamics`
        let plugin = if matches!(system.as_str(), "kolmogorov" | "lorenz63") {
            None
        } else if let Ok(p) = registry::find::<SystemPlugin>(&system) {
            Some(p)
        } else {
            let mut known: Vec<String> = registry::entries::<SystemPlugin>()?
                .iter()
                .map(|e| e.name().to_string())
                .collect();
            known.push("kolmogorov".into());
            known.sort();
            return Err(crate::Error::UnknownPlugin {
                kind: "dataset system",
                name: system,
                known,
            });
        };
        let (n_default, b_default, k_default) = match (system.as_str(), small) {
            ("kolmogorov", false) => (1024, 64, 64),
            ("kolmogorov", true) => (16, 64, 64),
            (_, false) => (1024, 1024, 1024),
            (_, true) => (64, 1024, 256),
        };
        if system != "kolmogorov" && (grid.is_some() || coarsen.is_some()) {
            return Err(crate::Error::Invalid(
                "--grid and --coarsen apply to kolmogorov only".into(),
            ));
        }
        if plugin.is_some() && config.is_some() {
            return Err(crate::Error::Invalid(format!(
                "--config applies to lorenz63 and kolmogorov; give {system}'s parameters \
                 with --system-params"
            )));
        }
        if plugin.is_none() && !system_params.trim().is_empty() {
            return Err(crate::Error::Invalid(format!(
                "--system-params applies to other registered systems; configure {system} \
                 with --config"
            )));
        }
        let opts = GenerateOptions {
            out: out.unwrap_or_else(|| format!("data/{system}")).into(),
            trajectories: trajectories.unwrap_or(n_default),
            seed,
            burn_in: burn_in.unwrap_or(b_default),
            keep: keep.unwrap_or(k_default),
            max_new,
            progress: true,
        };
        let start = std::time::Instant::now();
        let outcome = if let Some(plugin) = plugin {
            let params = parse_params(&system_params)?;
            let sys = (plugin.build)(&params)?;
            generate::generate_system(&system, &params, sys.as_ref(), &opts)?
        } else if system == "lorenz63" {
            let sys = match &config {
                Some(path) => read_toml::<Lorenz63>(path)?,
                None => Lorenz63::default(),
            };
            generate::generate_lorenz63(&sys, &opts)?
        } else {
            let mut cfg = match &config {
                Some(path) => read_toml::<KolmogorovConfig>(path)?,
                None => KolmogorovConfig::default(),
            };
            if small {
                cfg.grid = 64;
                cfg.coarsen = 1;
            }
            cfg.grid = grid.unwrap_or(cfg.grid);
            cfg.coarsen = coarsen.unwrap_or(cfg.coarsen);
            generate::generate_kolmogorov(&cfg, &opts)?
        };

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
