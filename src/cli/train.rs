//! `sda train`: training a local score (Algorithm 1).

use super::args::read_toml;
use crate::backend::DefaultBackend;
use crate::registry::parse_params;
use crate::score::mlp::MlpConfig;
use crate::score::train::{self, TrainConfig};
use crate::Result;

/// Train a local score (Algorithm 1) on a dataset; checkpoints every `checkpoint_every`
/// steps, `--resume` continues a killed run.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// TOML file of a `TrainConfig` (unknown keys are errors); flags below override it.
    #[arg(long)]
    config: Option<String>,
    /// Dataset folder (train.npy, valid.npy). Without --config, its manifest.json names the
    /// system, and the network is a ResMLP of the paper's Lorenz sizes for that system's
    /// states (default data/lorenz63).
    #[arg(long)]
    data: Option<String>,
    /// Blanket half-width k (a ResMLP of the paper's sizes for that k).
    #[arg(long)]
    k: Option<usize>,
    /// Total steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Checkpoint folder (default `runs/train-<system>-k<k>`).
    #[arg(long)]
    out: Option<String>,
    /// Continue the run checkpointed in --out.
    #[arg(long)]
    resume: bool,
    /// Warm start from the last checkpoint of another training folder (same network):
    /// a new step count and learning-rate cycle. Overrides the config's `init`.
    #[arg(long)]
    init: Option<String>,
    /// Initial learning rate (decays linearly to 0). Overrides the config.
    #[arg(long)]
    lr: Option<f64>,
    /// Stop after this many steps of this call (train in chunks).
    #[arg(long)]
    max_steps: Option<usize>,
    /// How the network's raw output becomes ε: `epsilon` (the paper) or `preconditioned`
    /// (Gaussian skip; see `sda::score::precondition`). Overrides the config.
    #[arg(long)]
    output: Option<crate::score::precondition::Output>,
    /// Diffusion schedule plugin of the training and of every use of the network
    /// (default: the config's, else the paper's `vp-cosine`).
    #[arg(long)]
    schedule: Option<String>,
    /// Schedule parameters, as the inside of a TOML inline table (with --schedule).
    #[arg(long)]
    schedule_params: Option<String>,
    /// Threads of one training step: each batch in that many equal shards, their gradients
    /// averaged (the same gradient to rounding; 2 on 2 cores). Overrides the config.
    #[arg(long)]
    threads: Option<usize>,
}

impl TrainArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
            config,
            data,
            k,
            steps,
            seed,
            out,
            resume,
            init,
            lr,
            max_steps,
            output,
            schedule,
            schedule_params,
            threads,
        } = self;
        let mut cfg = match &config {
            Some(path) => read_toml::<TrainConfig>(path)?,
            None => {
                // the dataset's manifest names the system and its state shape
                let dir = data.clone().unwrap_or_else(|| "data/lorenz63".into());
                if !std::path::Path::new(&dir).is_dir() {
                    return Err(crate::Error::Invalid(format!(
                        "the dataset folder {dir} does not exist: make it with `sda generate` \
                         or give --data"
                    )));
                }
                let Some(m) = crate::data::Manifest::read(dir.as_ref())? else {
                    return Err(crate::Error::Invalid(format!(
                        "{dir} has no manifest.json naming its system and state shape: make the \
                         dataset with `sda generate`, or give a training config (--config) \
                         that names them"
                    )));
                };
                let (system, dim) = (m.system, m.state_shape.iter().product());
                if system == "kolmogorov" {
                    return Err(crate::Error::Invalid(format!(
                        "{dir} holds kolmogorov fields: give a training config with a \
                         U-Net (--config; see the book's Kolmogorov chapter)"
                    )));
                }
                TrainConfig {
                    system,
                    data: dir.into(),
                    network: MlpConfig {
                        state_dim: dim,
                        ..MlpConfig::paper(2)
                    }
                    .into(),
                    steps: 20_000,
                    batch: 256,
                    lr: 1e-3,
                    weight_decay: 1e-3,
                    validate_every: 1000,
                    checkpoint_every: 1000,
                    seed: 0,
                    init: None,
                    schedule: Default::default(),
                    time_power: 1.0,
                    threads: 1,
                }
            }
        };
        if let Some(d) = data {
            cfg.data = d.into();
        }
        if let Some(n) = threads {
            cfg.threads = n;
        }
        // recorded absolute, so the run resumes and is used from any working directory
        cfg.data = std::fs::canonicalize(&cfg.data).map_err(|source| crate::Error::Io {
            path: cfg.data.clone(),
            source,
        })?;
        if max_steps == Some(0) {
            return Err(crate::Error::Invalid(
                "--max-steps must be ≥ 1 (the steps of this call)".into(),
            ));
        }
        if let Some(k) = k {
            cfg.network = match cfg.network {
                crate::score::network::NetworkConfig::UNet(mut c) => {
                    c.k = k;
                    c.into()
                }
                crate::score::network::NetworkConfig::Ring(mut c) => {
                    c.k = k;
                    c.into()
                }
                crate::score::network::NetworkConfig::Mlp(c) => MlpConfig {
                    state_dim: c.state_dim,
                    ..MlpConfig::paper(k)
                }
                .into(),
            };
        }
        if let Some(o) = output {
            cfg.network.set_output(o);
        }
        cfg.steps = steps.unwrap_or(cfg.steps);
        cfg.seed = seed.unwrap_or(cfg.seed);
        cfg.lr = lr.unwrap_or(cfg.lr);
        if let Some(init) = init {
            cfg.init = Some(init.into());
        }
        match (schedule, schedule_params) {
            (Some(name), params) => {
                let params = match parse_params(params.as_deref().unwrap_or(""))? {
                    toml::Value::Table(t) => t,
                    _ => toml::Table::new(),
                };
                cfg.schedule = train::ScheduleChoice { name, params };
            }
            (None, Some(_)) => {
                return Err(crate::Error::Invalid(
                    "--schedule-params needs --schedule NAME".into(),
                ))
            }
            (None, None) => {}
        }
        let out = out
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| train::default_out(&cfg));
        let device = crate::backend::default_device();
        let log = train::train::<DefaultBackend>(&cfg, &out, resume, max_steps, true, &device)?;
        let tail = &log.loss[log.loss.len().saturating_sub(100)..];
        let validation = match log.valid.last() {
            Some((step, loss)) => format!("validation loss {loss:.4} at step {step}"),
            None => "no validation yet".into(),
        };
        println!(
            "{}: step {}/{}, mean loss of the last {} steps {:.4}, {validation}, {:.0} s of \
             training",
            out.display(),
            log.step,
            cfg.steps,
            tail.len(),
            tail.iter().sum::<f32>() / tail.len().max(1) as f32,
            log.seconds
        );
        Ok(())
    }
}
