//! The `sda` command line. [`run`] is public so a downstream binary that links its own plugins
//! (registered with `inventory`) gets the same commands, with its plugins available by name.

use clap::{Parser, Subcommand};

use crate::backend::DefaultBackend;
use crate::generate::{self, GenerateOptions, Outcome};
use crate::oracle::{self, NamedRun};
use crate::registry::{
    self, parse_params, BlanketPlugin, GuidancePlugin, ObservationPlugin, Plugin, SamplerPlugin,
    SchedulePlugin, SystemPlugin,
};
use crate::sampler::SampleOptions;
use crate::score::mlp::MlpConfig;
use crate::score::train::{self, TrainConfig};
use crate::systems::kolmogorov::{vorticity_from_velocity, KolmogorovConfig};
use crate::systems::lorenz63::Lorenz63;
use crate::Result;

/// Score-based data assimilation.
#[derive(Parser, Debug)]
#[command(name = "sda", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every registered plugin (systems, observations, blankets, guidance, samplers,
    /// schedules).
    List,
    /// Exact-oracle demo: SDA, DPS and the exact-ε sampler against the Kalman smoother on the
    /// linear-Gaussian system; prints a table.
    Quickstart {
        /// Posterior samples per method.
        #[arg(long, default_value_t = 1024)]
        samples: usize,
        /// Reverse-diffusion steps.
        #[arg(long, default_value_t = 256)]
        steps: usize,
        /// Seed of the problem and of the samplers.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Comma-separated numbers of Langevin corrections C.
        #[arg(long, value_delimiter = ',', default_values_t = vec![0usize, 1, 2, 8])]
        corrections: Vec<usize>,
        /// Output folder of the figure.
        #[arg(long, default_value = "runs/quickstart")]
        out: String,
    },
    /// Generate a trajectory dataset (train/valid/test `.npy` + `manifest.json`). Resumable:
    /// rerun the same command after an interruption.
    Generate {
        /// The system: `lorenz63` or `kolmogorov`.
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
        /// Discarded transitions before the kept states (lorenz63: 1024, kolmogorov: 64).
        #[arg(long)]
        burn_in: Option<usize>,
        /// Kept states per trajectory (lorenz63: 1024, kolmogorov: 64).
        #[arg(long)]
        keep: Option<usize>,
        /// Small preset for quick tries and tests: lorenz63 64 × 256 states, kolmogorov
        /// 16 trajectories on a 64² grid (explicit flags still win).
        #[arg(long)]
        small: bool,
        /// Solver grid size (overrides the config).
        #[arg(long)]
        grid: Option<usize>,
        /// Mean-pooling factor to the learning grid (overrides the config).
        #[arg(long)]
        coarsen: Option<usize>,
        /// TOML file with the system's configuration (unknown keys are errors).
        #[arg(long)]
        config: Option<String>,
        /// Stop after this many new trajectories (generate in chunks).
        #[arg(long)]
        max_new: Option<usize>,
    },
    /// Render the vorticity of a Kolmogorov trajectory (`[N, T, 2, n, n]` .npy) as a PNG strip.
    Plot {
        /// The `.npy` file (e.g. data/kolmogorov/test.npy).
        data: String,
        /// Which trajectory.
        #[arg(long, default_value_t = 0)]
        trajectory: usize,
        /// Number of snapshots in the strip.
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Snapshots between two panels.
        #[arg(long, default_value_t = 4)]
        every: usize,
        /// Output PNG.
        #[arg(long, default_value = "runs/plot/vorticity.png")]
        out: String,
    },
    /// Train a local score (Algorithm 1) on a dataset; checkpoints every `checkpoint_every`
    /// steps, `--resume` continues a killed run.
    Train {
        /// TOML file of a `TrainConfig` (unknown keys are errors); flags below override it.
        #[arg(long)]
        config: Option<String>,
        /// Dataset folder (train.npy, valid.npy).
        #[arg(long)]
        data: Option<String>,
        /// Blanket half-width k (the paper's network for that k).
        #[arg(long)]
        k: Option<usize>,
        /// Total steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Checkpoint folder (default runs/train-<system>-k<k>).
        #[arg(long)]
        out: Option<String>,
        /// Continue the run checkpointed in --out.
        #[arg(long)]
        resume: bool,
        /// Stop after this many steps of this call (train in chunks).
        #[arg(long)]
        max_steps: Option<usize>,
    },
    /// One oracle run with every component chosen by registered name.
    Oracle {
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
        /// Guidance parameters.
        #[arg(long, default_value = "gamma = 0.01")]
        guidance_params: String,
        /// Blanket plugin.
        #[arg(long, default_value = "temporal-window")]
        blanket: String,
        /// Blanket parameters.
        #[arg(long, default_value = "k = 2")]
        blanket_params: String,
        /// Sampler plugin.
        #[arg(long, default_value = "pc")]
        sampler: String,
        /// Sampler parameters.
        #[arg(long, default_value = "corrections = 1, tau = 0.25")]
        sampler_params: String,
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
    },
}

fn list_section<T: Plugin + inventory::Collect>(title: &str, out: &mut String) -> Result<()> {
    out.push_str(&format!("{title}:\n"));
    for e in registry::entries::<T>()? {
        out.push_str(&format!("  {:<18} {}\n", e.name(), e.description()));
    }
    Ok(())
}

/// The text of `sda list`.
pub fn list_text() -> Result<String> {
    let mut s = String::new();
    list_section::<SystemPlugin>("systems", &mut s)?;
    list_section::<ObservationPlugin>("observations", &mut s)?;
    list_section::<BlanketPlugin>("blankets", &mut s)?;
    list_section::<GuidancePlugin>("guidance", &mut s)?;
    list_section::<SamplerPlugin>("samplers", &mut s)?;
    list_section::<SchedulePlugin>("schedules", &mut s)?;
    Ok(s)
}

/// Parses `args` (including the program name) and runs the command.
pub fn run<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::List => print!("{}", list_text()?),
        Command::Quickstart {
            samples,
            steps,
            seed,
            corrections,
            out,
        } => {
            eprintln!(
                "Oracle: linear-Gaussian D=2, F=0.95 R(0.3), Q=0.1 I, L=16; component 0 observed \
                 at states 0,5,10,15 (sigma_y=0.1); {samples} samples, {steps} steps, tau=0.25"
            );
            let q = oracle::quickstart(samples, steps, seed, &corrections, true)?;
            println!("{}", q.table());
            println!(
                "Reference: Kalman-RTS smoother. Pass: max |Δmean|/std ≤ 0.15 and variance \
                 ratios in [0.85, 1.15] for the exact ε with C = 0."
            );
            let path = std::path::Path::new(&out).join("oracle.png");
            match q.figure(&path) {
                Ok(()) => println!("Figure: {}", path.display()),
                Err(e) => eprintln!("no figure: {e}"),
            }
        }
        Command::Generate {
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
            max_new,
        } => {
            let (n_default, b_default, k_default) = match (system.as_str(), small) {
                ("lorenz63", false) => (1024, 1024, 1024),
                ("lorenz63", true) => (64, 1024, 256),
                ("kolmogorov", false) => (1024, 64, 64),
                ("kolmogorov", true) => (16, 64, 64),
                _ => {
                    return Err(crate::Error::UnknownPlugin {
                        kind: "dataset system",
                        name: system,
                        known: vec!["kolmogorov".into(), "lorenz63".into()],
                    })
                }
            };
            let opts = GenerateOptions {
                out: out.unwrap_or_else(|| format!("data/{system}")).into(),
                trajectories: trajectories.unwrap_or(n_default),
                seed,
                burn_in: burn_in.unwrap_or(b_default),
                keep: keep.unwrap_or(k_default),
                max_new,
                progress: true,
            };
            let read_config = |path: &str| -> crate::Result<String> {
                std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
                    path: path.into(),
                    source,
                })
            };
            let start = std::time::Instant::now();
            let outcome = if system == "lorenz63" {
                if grid.is_some() || coarsen.is_some() {
                    return Err(crate::Error::Invalid(
                        "--grid and --coarsen apply to kolmogorov only".into(),
                    ));
                }
                let sys = match &config {
                    Some(path) => toml::from_str::<Lorenz63>(&read_config(path)?)
                        .map_err(|e| crate::Error::config(path, e))?,
                    None => Lorenz63::default(),
                };
                generate::generate_lorenz63(&sys, &opts)?
            } else {
                let mut cfg = match &config {
                    Some(path) => toml::from_str::<KolmogorovConfig>(&read_config(path)?)
                        .map_err(|e| crate::Error::config(path, e))?,
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
        }
        Command::Plot {
            data,
            trajectory,
            count,
            every,
            out,
        } => {
            let a = crate::data::read_npy(std::path::Path::new(&data))?;
            let [n_traj, t, c, h, w] = a.shape[..] else {
                return Err(crate::Error::Shape(format!(
                    "{data}: expected [trajectories, time, 2, n, n], got {:?}",
                    a.shape
                )));
            };
            if c != 2 || h != w || trajectory >= n_traj || every == 0 {
                return Err(crate::Error::Shape(format!(
                    "{data}: shape {:?}, trajectory {trajectory}, every {every}: need 2 velocity \
                     channels on a square grid and an existing trajectory",
                    a.shape
                )));
            }
            let state = 2 * h * w;
            let fields: Vec<Vec<f64>> = (0..t)
                .step_by(every)
                .take(count)
                .map(|s| {
                    let off = (trajectory * t + s) * state;
                    let uv: Vec<f64> = a.data[off..off + state].iter().map(|&v| v as f64).collect();
                    vorticity_from_velocity(&uv[..h * w], &uv[h * w..], h)
                })
                .collect();
            let path = std::path::Path::new(&out);
            crate::plot::vorticity_strip_png(
                path,
                &fields,
                h,
                &format!("{data}: trajectory {trajectory}, vorticity of every {every}-th state"),
            )?;
            println!("wrote {}", path.display());
        }
        Command::Train {
            config,
            data,
            k,
            steps,
            seed,
            out,
            resume,
            max_steps,
        } => {
            let mut cfg = match &config {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
                            path: path.into(),
                            source,
                        })?;
                    toml::from_str::<TrainConfig>(&text)
                        .map_err(|e| crate::Error::config(path, e))?
                }
                None => TrainConfig {
                    system: "lorenz63".into(),
                    data: "data/lorenz63".into(),
                    network: MlpConfig::paper(2),
                    steps: 20_000,
                    batch: 256,
                    lr: 1e-3,
                    weight_decay: 1e-3,
                    validate_every: 1000,
                    checkpoint_every: 1000,
                    seed: 0,
                },
            };
            if let Some(d) = data {
                cfg.data = d.into();
            }
            if let Some(k) = k {
                cfg.network = MlpConfig::paper(k);
            }
            cfg.steps = steps.unwrap_or(cfg.steps);
            cfg.seed = seed.unwrap_or(cfg.seed);
            let out = out
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| train::default_out(&cfg));
            let device = crate::backend::default_device();
            let log = train::train::<DefaultBackend>(&cfg, &out, resume, max_steps, true, &device)?;
            let tail = &log.loss[log.loss.len().saturating_sub(100)..];
            println!(
                "{}: step {}/{}, mean loss of the last {} steps {:.4}, validation {:?}, {:.0} s of training",
                out.display(),
                log.step,
                cfg.steps,
                tail.len(),
                tail.iter().sum::<f32>() / tail.len().max(1) as f32,
                log.valid.last(),
                log.seconds
            );
        }
        Command::Oracle {
            observation,
            observation_params,
            guidance,
            guidance_params,
            blanket,
            blanket_params,
            sampler,
            sampler_params,
            len,
            samples,
            steps,
            seed,
        } => {
            let run = NamedRun {
                observation: (observation, parse_params(&observation_params)?),
                guidance: if guidance == "exact" {
                    None
                } else {
                    Some((guidance, parse_params(&guidance_params)?))
                },
                blanket: (blanket, parse_params(&blanket_params)?),
                sampler: (sampler, parse_params(&sampler_params)?),
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
        }
    }
    Ok(())
}
