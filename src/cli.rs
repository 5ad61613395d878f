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
    /// The whole method at small scale, in two parts: (1) the exact-oracle check — SDA, DPS
    /// and the exact-ε sampler against the Kalman smoother on the linear-Gaussian system;
    /// (2) Lorenz-63 end to end — small dataset, brief k = 2 training, one "lo" observation
    /// assimilated by SDA and compared with two particle filters, a PNG of the trajectories.
    Quickstart {
        /// Which part to run: `all`, `oracle` or `lorenz`.
        #[arg(long, default_value = "all")]
        part: String,
        /// Oracle: posterior samples per method.
        #[arg(long, default_value_t = 1024)]
        samples: usize,
        /// Oracle: reverse-diffusion steps.
        #[arg(long, default_value_t = 256)]
        steps: usize,
        /// Oracle: seed of the problem and of the samplers.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Oracle: comma-separated numbers of Langevin corrections C.
        #[arg(long, value_delimiter = ',', default_values_t = vec![0usize, 1, 2, 8])]
        corrections: Vec<usize>,
        /// Lorenz: training steps of the k = 2 model.
        #[arg(long, default_value_t = 4000)]
        train_steps: usize,
        /// Lorenz: SDA samples (and particle-filter trajectories).
        #[arg(long, default_value_t = 128)]
        lorenz_samples: usize,
        /// Lorenz: reverse-diffusion steps.
        #[arg(long, default_value_t = 128)]
        lorenz_steps: usize,
        /// Lorenz: particles per filter.
        #[arg(long, default_value_t = 1 << 14)]
        particles: usize,
        /// Output folder (figures, Lorenz data and checkpoint; reused when rerun).
        #[arg(long, default_value = "runs/quickstart")]
        out: String,
    },
    /// Assimilate one observation of a test trajectory with a trained local score: samples
    /// (`samples.npy`, physical units), the truth and y, a summary JSON and a PNG of the
    /// trajectories with the observations and the truth.
    Assimilate {
        /// Training folder of the local score (its checkpoint and architecture).
        #[arg(long)]
        run: String,
        /// Dataset folder (the truth comes from its `--split`).
        #[arg(long, default_value = "data/lorenz63")]
        data: String,
        /// Split of the observed trajectory.
        #[arg(long, default_value = "test", value_parser = ["train", "valid", "test"])]
        split: String,
        /// Index of the observed trajectory in the split.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Trajectory length L (its first L states).
        #[arg(long, default_value_t = crate::lorenz::EVAL_LEN)]
        len: usize,
        /// Observation plugin (`lo`, `hi`, `pick`, or any registered one).
        #[arg(long, default_value = "lo")]
        observation: String,
        /// Observation parameters, as the inside of a TOML inline table.
        #[arg(long, default_value = "")]
        observation_params: String,
        /// Guidance plugin.
        #[arg(long, default_value = "sda")]
        guidance: String,
        /// Guidance parameters [default for `sda`: "gamma = 0.03"; any other guidance gets
        /// only its own defaults].
        #[arg(long)]
        guidance_params: Option<String>,
        #[command(flatten)]
        blanket: TrainedBlanket,
        /// Sampler plugin.
        #[arg(long, default_value = "pc")]
        sampler: String,
        /// Sampler parameters [default for `pc`: "corrections = 2, tau = 0.25"; any other
        /// sampler gets only its own defaults].
        #[arg(long)]
        sampler_params: Option<String>,
        /// Posterior samples.
        #[arg(long, default_value_t = 128)]
        samples: usize,
        /// Reverse-diffusion steps.
        #[arg(long, default_value_t = 256)]
        steps: usize,
        /// Seed of the observation noise and of the sampler.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder.
        #[arg(long, default_value = "runs/assimilate")]
        out: String,
    },
    /// The paper's Figure-4 view of Kolmogorov assimilations of one observation (e.g. SDA and
    /// DPS): rows of vorticity for the truth, the observation (when it is images) and the first
    /// sample of each `sda assimilate` folder, plus their residual std beside σ_y.
    Compare {
        /// Output folders of `sda assimilate` on the same truth and observation.
        #[arg(required = true, num_args = 1..)]
        runs: Vec<String>,
        /// Output PNG.
        #[arg(long, default_value = "runs/compare.png")]
        out: String,
    },
    /// The paper's Figure-5 physical check of Kolmogorov samples: re-simulate each sample's first
    /// state with the solver and compare with the sample and with persistence.
    Resimulate {
        /// `samples.npy` of `sda assimilate` (`[N, L, 2, n, n]`).
        samples: String,
        /// How many samples to check (the first ones).
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// TOML file of the solver configuration (default: the paper's 256² coarsened 4×).
        #[arg(long)]
        config: Option<String>,
        /// Solver grid size (overrides the config).
        #[arg(long)]
        grid: Option<usize>,
        /// Mean-pooling factor to the learning grid (overrides the config).
        #[arg(long)]
        coarsen: Option<usize>,
    },
    /// The paper's Figure-2 evaluation of one trained state-vector local score (Lorenz-63 or
    /// any registered system): for test observations of `lo` / `hi` / `pick`, SDA with each C
    /// (and any registered sampler) against two particle filters of the dataset's system;
    /// medians of W1(SDA, BPF)/W1(BPF′, BPF), E[log p(y|x)] and E[log p(x_2:L|x_1)] as a table.
    /// Resumable: rows are saved per observation in `--out`.
    Evaluate {
        /// Training folder of the local score.
        #[arg(long)]
        run: String,
        /// Dataset folder (test split).
        #[arg(long, default_value = "data/lorenz63")]
        data: String,
        /// `lo`, `hi` or `pick` (a state-wise observation, which the particle filter needs).
        #[arg(long, default_value = "lo")]
        observation: String,
        /// Parameters of `pick`.
        #[arg(long, default_value = "")]
        observation_params: String,
        /// Number of test observations (trajectories 0, 1, …).
        #[arg(long, default_value_t = 16)]
        observations: usize,
        /// Trajectory length L.
        #[arg(long, default_value_t = crate::lorenz::EVAL_LEN)]
        len: usize,
        /// SDA samples and particle-filter trajectories per observation.
        #[arg(long, default_value_t = 128)]
        samples: usize,
        /// Reverse-diffusion steps.
        #[arg(long, default_value_t = 256)]
        steps: usize,
        /// Comma-separated corrections C of the paper's sampler (predictor–corrector,
        /// Algorithm 4), one row each [default: 0,1,2,4 when no --sampler is given, else none].
        #[arg(long, value_delimiter = ',')]
        corrections: Option<Vec<usize>>,
        /// A registered sampler to evaluate besides (after) the --corrections rows; repeat the
        /// flag for several (`sda list`).
        #[arg(long)]
        sampler: Vec<String>,
        /// Parameters of each --sampler, in the same order: give it once per --sampler, or
        /// never (each sampler then takes its own defaults).
        #[arg(long)]
        sampler_params: Vec<String>,
        /// Particles per filter.
        #[arg(long, default_value_t = 1 << 14)]
        particles: usize,
        /// Transitions of the system from its initial prior before the filters' first state.
        #[arg(long, default_value_t = crate::evaluate::FILTER_BURN_IN)]
        filter_burn_in: usize,
        #[command(flatten)]
        blanket: TrainedBlanket,
        /// Guidance plugin.
        #[arg(long, default_value = "sda")]
        guidance: String,
        /// Guidance parameters [default for `sda`: "gamma = " --gamma; any other guidance gets
        /// only its own defaults].
        #[arg(long)]
        guidance_params: Option<String>,
        /// γ of the `sda` guidance when --guidance-params is not given.
        #[arg(long, default_value_t = crate::lorenz::GAMMA)]
        gamma: f64,
        /// τ of the --corrections rows.
        #[arg(long, default_value_t = crate::lorenz::TAU)]
        tau: f64,
        /// Output folder (rows.jsonl, settings.json, table.md).
        #[arg(long, default_value = "runs/evaluate")]
        out: String,
    },
    /// Generate a trajectory dataset (train/valid/test `.npy` + `manifest.json`). Resumable:
    /// rerun the same command after an interruption.
    Generate {
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
        /// Checkpoint folder (default runs/train-<system>-k<k>).
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
    },
}

/// The blanket a trained network is composed with (`assimilate`, `evaluate`), by name.
#[derive(clap::Args, Debug)]
struct TrainedBlanket {
    /// Blanket plugin: how a trajectory is cut into the network's windows of 2k+1 states
    /// and their outputs composed (Algorithm 2).
    #[arg(long, default_value = "temporal-window")]
    blanket: String,
    /// Blanket parameters [default for `temporal-window`: "k = " the checkpoint's k; any
    /// other blanket gets only its own defaults].
    #[arg(long)]
    blanket_params: Option<String>,
}

impl TrainedBlanket {
    /// The registered blanket for a trained network of half-width `k`: `temporal-window`
    /// without parameters takes the network's k.
    fn build(self, k: usize) -> Result<Box<dyn crate::blanket::MarkovBlanket<DefaultBackend>>> {
        let (name, params) = plugin_params(
            self.blanket,
            self.blanket_params,
            ("temporal-window", &format!("k = {k}")),
        )?;
        (registry::find::<BlanketPlugin>(&name)?.build)(&params)
    }
}

/// A configuration file (`--config`) read as TOML into `T`; a missing file or an unknown or
/// mistyped field is an error naming the file.
fn read_toml<T: serde::de::DeserializeOwned>(path: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| crate::Error::config(path, e))
}

/// A plugin's name with its parameters: those given on the command line, else the command's
/// default when the plugin is the command's default one (`default = (plugin, parameters)`),
/// else none, so that each plugin falls back on its own defaults (another plugin's defaults
/// would be unknown fields to it).
fn plugin_params(
    name: String,
    given: Option<String>,
    default: (&str, &str),
) -> Result<(String, toml::Value)> {
    let text = match given {
        Some(text) => text,
        None if name == default.0 => default.1.to_string(),
        None => String::new(),
    };
    let params = parse_params(&text)?;
    Ok((name, params))
}

/// The samplers of `sda evaluate`: predictor–corrector with each of `corrections` (0, 1, 2, 4
/// when neither flag is given) and scale `tau`, then each registered sampler named, with the
/// parameters at the same position of `params` (all or none of them given).
fn evaluated_samplers(
    corrections: Option<Vec<usize>>,
    tau: f64,
    names: &[String],
    params: &[String],
) -> Result<Vec<Box<dyn crate::sampler::Sampler<DefaultBackend>>>> {
    if !params.is_empty() && params.len() != names.len() {
        return Err(crate::Error::Invalid(format!(
            "--sampler-params is given {} times for {} --sampler; give it once per sampler, in \
             the same order, or not at all",
            params.len(),
            names.len()
        )));
    }
    let corrections = match corrections {
        Some(c) => c,
        None if names.is_empty() => vec![0, 1, 2, 4],
        None => Vec::new(),
    };
    let mut samplers = crate::evaluate::predictor_correctors(&corrections, tau)?;
    for (i, name) in names.iter().enumerate() {
        let p = parse_params(params.get(i).map_or("", String::as_str))?;
        samplers.push((registry::find::<SamplerPlugin>(name)?.build)(&p)?);
    }
    Ok(samplers)
}

fn list_section<T: Plugin + inventory::Collect>(title: &str, out: &mut String) -> Result<()> {
    out.push_str(&format!("{title}:\n"));
    let entries = registry::entries::<T>()?;
    let width = entries.iter().map(|e| e.name().len()).max().unwrap_or(0);
    for e in entries {
        out.push_str(&format!("  {:<width$}  {}\n", e.name(), e.description()));
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

fn quickstart_oracle(
    samples: usize,
    steps: usize,
    seed: u64,
    corrections: &[usize],
    out: &str,
) -> Result<()> {
    println!(
        "## Part 1: exact oracle\nLinear-Gaussian D=2, F=0.95 R(0.3), Q=0.1 I, L=16; component 0 \
         observed at states 0,5,10,15 (sigma_y=0.1); {samples} samples, {steps} steps, tau=0.25\n"
    );
    let q = oracle::quickstart(samples, steps, seed, corrections, true)?;
    println!("{}", q.table());
    println!(
        "Reference: Kalman-RTS smoother. Pass: max |Δmean|/std ≤ 0.15 and variance \
         ratios in [0.85, 1.15] for the exact ε with C = 0."
    );
    let path = std::path::Path::new(out).join("oracle.png");
    match q.figure(&path) {
        Ok(()) => println!("Figure: {}\n", path.display()),
        Err(e) => eprintln!("no figure: {e}"),
    }
    Ok(())
}

fn quickstart_lorenz(
    train_steps: usize,
    samples: usize,
    steps: usize,
    particles: usize,
    out: &str,
) -> Result<()> {
    println!(
        "## Part 2: Lorenz-63 end to end\nSmall dataset (64 trajectories × 256 states), k = 2 \
         ResMLP trained {train_steps} steps, test trajectory 0 observed 'lo' (ã every 8th of 65 \
         states, σ_y = 0.05); SDA γ = 0.03, C = 1, {samples} samples, {steps} steps; two \
         particle filters of {particles} particles\n"
    );
    let start = std::time::Instant::now();
    let r = crate::lorenz::quickstart(&crate::lorenz::QuickstartSettings {
        out: std::path::Path::new(out).join("lorenz"),
        train_steps,
        samples,
        steps,
        corrections: 1,
        particles,
        progress: true,
    })?;
    println!(
        "training: {} steps, mean loss of the last 100 steps {:.4}, {:.0} s",
        r.training.0, r.training.1, r.training.2
    );
    println!(
        "{}",
        crate::evaluate::markdown_table("lo, test trajectory 0", &r.rows)
    );
    println!(
        "Figure: {}\nLorenz part: {:.0} s",
        r.figure.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

struct AssimilateArgs {
    run: String,
    data: String,
    split: String,
    index: usize,
    len: usize,
    observation: (String, toml::Value),
    guidance: (String, toml::Value),
    sampler: (String, toml::Value),
    samples: usize,
    steps: usize,
    seed: u64,
    out: String,
}

/// The registered observation (built for `shape`), guidance and sampler of an assimilation.
type Components = (
    Box<dyn crate::observe::ObservationModel<DefaultBackend>>,
    Box<dyn crate::guidance::Guidance<DefaultBackend>>,
    Box<dyn crate::sampler::Sampler<DefaultBackend>>,
);

impl AssimilateArgs {
    fn components(&self, shape: crate::TrajectoryShape) -> Result<Components> {
        let (o, g, s) = (&self.observation, &self.guidance, &self.sampler);
        Ok((
            (registry::find::<ObservationPlugin>(&o.0)?.build)(&o.1, shape)?,
            (registry::find::<GuidancePlugin>(&g.0)?.build)(&g.1)?,
            (registry::find::<SamplerPlugin>(&s.0)?.build)(&s.1)?,
        ))
    }

    fn sample_options(&self) -> SampleOptions {
        SampleOptions {
            samples: self.samples,
            steps: self.steps,
            seed: self.seed.wrapping_add(1),
            progress: true,
        }
    }

    /// Writes `samples.npy` `[N, L, state…]`, `truth.npy` `[L, state…]` and `y.npy` into the
    /// output folder, which it returns.
    fn write_arrays(
        &self,
        state: &[usize],
        x: &[f64],
        truth: &[f64],
        y: &[f64],
    ) -> Result<std::path::PathBuf> {
        use crate::data::{write_npy, Array};
        let out = std::path::PathBuf::from(&self.out);
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let shape = |lead: &[usize]| [lead, state].concat();
        write_npy(
            &out.join("samples.npy"),
            &Array::new(shape(&[self.samples, self.len]), f32s(x))?,
        )?;
        write_npy(
            &out.join("truth.npy"),
            &Array::new(shape(&[self.len]), f32s(truth))?,
        )?;
        write_npy(&out.join("y.npy"), &Array::new(vec![y.len()], f32s(y))?)?;
        Ok(out)
    }
}

/// [`crate::metrics::magnitude_ratio`] of the samples against the truth, with a warning on
/// standard error when it marks a divergence (the samples are still written, for inspection).
fn warn_divergence(x: &[f64], truth: &[f64]) -> f64 {
    let ratio = crate::metrics::magnitude_ratio(x, truth);
    if ratio > crate::metrics::DIVERGENCE_FACTOR {
        eprintln!(
            "warning: the samples diverged: their largest |x| is {ratio:.3e}× the truth's \
             (more than {}×); their statistics are meaningless",
            crate::metrics::DIVERGENCE_FACTOR
        );
    }
    ratio
}

/// Panel names of a trajectories figure: Lorenz-63's `a, b, c`, else `x0, x1, …`.
fn component_names(system: &str, dim: usize) -> Vec<String> {
    match (system, dim) {
        ("lorenz63", 3) => ["a", "b", "c"].map(String::from).to_vec(),
        _ => (0..dim).map(|c| format!("x{c}")).collect(),
    }
}

/// The manifest of the dataset folder `data`, if it has one; an error if it was made by another
/// system than the one the training folder `run` learned.
fn dataset_of(
    data: &str,
    trained_on: &str,
    run: &str,
) -> Result<Option<crate::generate::Manifest>> {
    let manifest = crate::generate::Manifest::read(data.as_ref())?;
    if let Some(m) = manifest.as_ref().filter(|m| m.system != trained_on) {
        return Err(crate::Error::Invalid(format!(
            "{data} holds {} data; the run {run} was trained on {trained_on}",
            m.system
        )));
    }
    Ok(manifest)
}

/// Components drawn in a trajectories figure at most (the first ones).
const FIGURE_COMPONENTS: usize = 6;

/// `sda assimilate` for a ResMLP checkpoint of any state-vector system: the units stored with
/// the checkpoint, the log-prior from the dataset's system (rebuilt from its manifest, when
/// registered and with a transition density), and a figure of the first components.
fn assimilate(a: AssimilateArgs, blanket: TrainedBlanket) -> Result<()> {
    use crate::data::write_atomic;
    use crate::score::network::NetworkConfig;
    use crate::vector;
    let network = train::trained_network(a.run.as_ref())?;
    let blanket = blanket.build(network.k())?;
    if let NetworkConfig::UNet(net) = network {
        return assimilate_flow(a, net.grid, blanket);
    }
    let device = crate::backend::default_device();
    let prior = vector::VectorPrior::load_with_blanket(a.run.as_ref(), blanket, &device)?;
    let trained_on = train::trained_config(a.run.as_ref())?.system;
    let d = prior.dim();
    let shape = crate::TrajectoryShape::new(a.len, d);
    let (observation, guidance, sampler) = a.components(shape)?;
    let manifest = dataset_of(&a.data, &trained_on, &a.run)?;
    let truth = vector::trajectory(a.data.as_ref(), &a.split, a.index, a.len, d)?;
    let units = &prior.units;
    let y =
        vector::observe::<DefaultBackend>(observation.as_ref(), units, &truth, a.seed, &device)?;
    let (x, report) = vector::posterior(
        &prior,
        observation.as_ref(),
        &y,
        guidance.as_ref(),
        sampler.as_ref(),
        &a.sample_options(),
        &device,
    )?;
    let out = a.write_arrays(&[d], &x, &truth, &y)?;
    let loglik = vector::expected_log_likelihood::<DefaultBackend>(
        observation.as_ref(),
        units,
        &y,
        &x,
        &device,
    );
    let system = match &manifest {
        Some(m) => m.system()?,
        None => None,
    };
    // the log-prior needs the system's transition density (probed on the first true state)
    let has_density = |s: &dyn crate::systems::Dynamics| {
        s.state_dim() == d
            && truth
                .chunks_exact(d)
                .next()
                .is_some_and(|x1| s.log_transition(x1, x1).is_some())
    };
    let logprior = match system {
        Some(s) if has_density(s.as_ref()) => {
            Some(crate::metrics::expected_log_prior(s.as_ref(), &x, a.len)?)
        }
        _ => None,
    };
    let magnitude = warn_divergence(&x, &truth);
    let summary = serde_json::json!({
        "run": a.run, "data": a.data, "split": a.split, "index": a.index, "len": a.len,
        "system": trained_on,
        "observation": [a.observation.0, a.observation.1.to_string()],
        "guidance": [a.guidance.0, a.guidance.1.to_string()],
        "blanket": prior.composed.blanket().describe(),
        "sampler": sampler.describe(),
        "samples": a.samples, "steps": a.steps, "seed": a.seed,
        "evaluations": report.evaluations, "seconds": report.seconds,
        "expected_log_likelihood": loglik, "expected_log_prior": logprior,
        "magnitude_ratio": magnitude,
        "diverged": magnitude > crate::metrics::DIVERGENCE_FACTOR,
        "units": "samples.npy and truth.npy physical; y.npy in the observation's (standardised) units",
        "standardisation": units,
    });
    write_atomic(
        &out.join("assimilate.json"),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )?;
    let figure = out.join("trajectories.png");
    let shown = d.min(FIGURE_COMPONENTS);
    let first = |v: &[f64]| -> Vec<f64> {
        v.chunks_exact(d)
            .flat_map(|s| s[..shown].iter().copied())
            .collect()
    };
    let names = component_names(&trained_on, d);
    let names: Vec<&str> = names.iter().take(shown).map(String::as_str).collect();
    let truth_shown = first(&truth);
    crate::plot::trajectories_png(
        &figure,
        &crate::plot::TrajectoriesFigure {
            title: format!(
                "'{}' on {} trajectory {}: {}, {}{}",
                a.observation.0,
                a.split,
                a.index,
                guidance.describe(),
                sampler.describe(),
                if shown < d {
                    format!(" (components 0–{} of {d})", shown - 1)
                } else {
                    String::new()
                }
            ),
            len: a.len,
            components: &names,
            draws: &first(&x),
            truth: Some(&truth_shown),
            reference: None,
            observations: vector::observed_coordinates::<DefaultBackend>(
                observation.as_ref(),
                units,
                &y,
                &device,
            )
            .into_iter()
            .filter(|o| o.1 < shown)
            .collect(),
        },
    )?;
    let logprior_text = logprior.map_or(
        "n/a (no registered system with a transition density)".into(),
        |v| format!("{v:.1}"),
    );
    println!(
        "{} samples in {:.1} s ({} network evaluations); E[log p(y|x)] = {loglik:.2}, \
         E[log p(x_2:L|x_1)] = {logprior_text}\nwrote {}/{{samples,truth,y}}.npy, assimilate.json, \
         trajectories.png",
        a.samples,
        report.seconds,
        report.evaluations,
        out.display()
    );
    Ok(())
}

/// `sda assimilate` for a U-Net (Kolmogorov) checkpoint: velocity fields, no standardisation,
/// the residual check and a vorticity figure.
fn assimilate_flow(
    a: AssimilateArgs,
    grid: usize,
    blanket: Box<dyn crate::blanket::MarkovBlanket<DefaultBackend>>,
) -> Result<()> {
    use crate::data::write_atomic;
    use crate::flow;
    let device = crate::backend::default_device();
    let d = 2 * grid * grid;
    let shape = crate::TrajectoryShape::new(a.len, d);
    let (observation, guidance, sampler) = a.components(shape)?;
    let prior = flow::load_prior_with_blanket(a.run.as_ref(), blanket, &device)?;
    let truth = flow::trajectory(a.data.as_ref(), &a.split, a.index, a.len, grid)?;
    let fixed = crate::observe::field::FieldScenario::fixed_y_of(&a.observation.0);
    let y = flow::observe::<DefaultBackend>(observation.as_ref(), &truth, fixed, a.seed, &device)?;
    let (x, report) = flow::posterior(
        &prior,
        observation.as_ref(),
        &y,
        guidance.as_ref(),
        sampler.as_ref(),
        &a.sample_options(),
        &device,
    )?;
    let residual = flow::residual_std::<DefaultBackend>(observation.as_ref(), &y, &x, &device);
    let sigma = observation.noise_std().first().copied().unwrap_or(f64::NAN);
    let out = a.write_arrays(&[2, grid, grid], &x, &truth, &y)?;
    let magnitude = warn_divergence(&x, &truth);
    let summary = serde_json::json!({
        "run": a.run, "data": a.data, "split": a.split, "index": a.index, "len": a.len,
        "observation": [a.observation.0, a.observation.1.to_string()],
        "guidance": [a.guidance.0, a.guidance.1.to_string()],
        "blanket": prior.blanket().describe(),
        "sampler": sampler.describe(),
        "samples": a.samples, "steps": a.steps, "seed": a.seed,
        "evaluations": report.evaluations, "seconds": report.seconds,
        "residual_std": residual, "sigma_y": sigma,
        "magnitude_ratio": magnitude,
        "diverged": magnitude > crate::metrics::DIVERGENCE_FACTOR,
    });
    write_atomic(
        &out.join("assimilate.json"),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )?;
    let every = a.len.div_ceil(8);
    let mut rows = vec![(
        "truth".to_string(),
        flow::vorticity_strip(&truth, a.len, grid, every),
    )];
    if let Some(row) = flow::observation_figure_row(observation.as_ref(), &y, a.len, every, grid) {
        rows.push(("observation".to_string(), row));
    }
    for (i, sample) in x.chunks_exact(a.len * d).take(3).enumerate() {
        rows.push((
            format!("sample {}", i + 1),
            flow::vorticity_strip(sample, a.len, grid, every),
        ));
    }
    let figure = out.join("vorticity.png");
    crate::plot::vorticity_rows_png(
        &figure,
        &rows,
        grid,
        &format!(
            "'{}': {}, {} — vorticity of {}",
            a.observation.0,
            guidance.describe(),
            sampler.describe(),
            flow::every_nth_state(every)
        ),
    )?;
    println!(
        "{} samples in {:.1} s ({} network evaluations); residual std of A(x) − y {residual:.4} \
         (σ_y = {sigma})\nwrote {}/{{samples,truth,y}}.npy, assimilate.json, vorticity.png",
        a.samples,
        report.seconds,
        report.evaluations,
        out.display()
    );
    Ok(())
}

/// One `sda assimilate` output folder of a Kolmogorov assimilation, as `sda compare` reads it.
struct FlowRun {
    summary: serde_json::Value,
    samples: crate::data::Array,
    truth: Vec<f64>,
    y: Vec<f64>,
}

impl FlowRun {
    fn load(dir: &str) -> Result<Self> {
        use crate::data::{read_json, read_npy};
        let dir = std::path::Path::new(dir);
        let summary: serde_json::Value = read_json(&dir.join("assimilate.json"))?;
        let samples = read_npy(&dir.join("samples.npy"))?;
        if samples.shape.len() != 5 || samples.shape[2] != 2 || samples.shape[3] != samples.shape[4]
        {
            return Err(crate::Error::Shape(format!(
                "{}: expected samples [N, L, 2, n, n] of a Kolmogorov assimilation, got {:?}",
                dir.display(),
                samples.shape
            )));
        }
        Ok(Self {
            summary,
            truth: f64s(read_npy(&dir.join("truth.npy"))?.data),
            y: f64s(read_npy(&dir.join("y.npy"))?.data),
            samples,
        })
    }

    fn text(&self, key: &str, i: usize) -> String {
        self.summary[key][i].as_str().unwrap_or("").to_string()
    }
}

fn f64s(v: Vec<f32>) -> Vec<f64> {
    v.into_iter().map(f64::from).collect()
}

/// `sda compare`: the Figure-4 rows of several assimilations of one observation.
fn compare_flow(dirs: &[String], out: &str) -> Result<()> {
    let runs = dirs
        .iter()
        .map(|d| FlowRun::load(d))
        .collect::<Result<Vec<_>>>()?;
    let first = &runs[0];
    let (len, grid) = (first.samples.shape[1], first.samples.shape[3]);
    for (dir, run) in dirs.iter().zip(&runs).skip(1) {
        if run.samples.shape[1..] != first.samples.shape[1..]
            || run.truth != first.truth
            || run.y != first.y
            || run.summary["observation"] != first.summary["observation"]
        {
            return Err(crate::Error::Invalid(format!(
                "{dir} and {} assimilate different truths, observations or shapes; compare \
                 needs runs of one observation",
                dirs[0]
            )));
        }
    }
    let shape = crate::TrajectoryShape::new(len, 2 * grid * grid);
    let plugin = registry::find::<ObservationPlugin>(&first.text("observation", 0))?;
    // assimilate.json keeps the parameters as the TOML text of an inline table
    let text = first.text("observation", 1);
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| {
            crate::Error::Invalid(format!(
                "{}: unreadable observation parameters '{text}'",
                dirs[0]
            ))
        })?;
    let params = registry::parse_params(inner)?;
    let observation = (plugin.build)(&params, shape)?;
    let every = len.div_ceil(8);
    let mut rows = vec![(
        "truth".to_string(),
        crate::flow::vorticity_strip(&first.truth, len, grid, every),
    )];
    if let Some(row) =
        crate::flow::observation_figure_row(observation.as_ref(), &first.y, len, every, grid)
    {
        rows.push(("observation".to_string(), row));
    }
    println!("| run | guidance | residual std | σ_y |\n|---|---|---:|---:|");
    for (dir, run) in dirs.iter().zip(&runs) {
        let sample = f64s(run.samples.data[..len * 2 * grid * grid].to_vec());
        // the guidance and its parameters, e.g. "SDA gamma = 0.0001", so that rows differ
        let params = run.text("guidance", 1);
        let params = params.trim().trim_start_matches('{').trim_end_matches('}');
        rows.push((
            format!(
                "{} {}",
                run.text("guidance", 0).to_uppercase(),
                params.trim()
            )
            .trim()
            .to_string(),
            crate::flow::vorticity_strip(&sample, len, grid, every),
        ));
        println!(
            "| {dir} | {} | {:.4} | {} |",
            run.text("guidance", 0),
            run.summary["residual_std"].as_f64().unwrap_or(f64::NAN),
            run.summary["sigma_y"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let path = std::path::Path::new(out);
    crate::plot::vorticity_rows_png(
        path,
        &rows,
        grid,
        &format!(
            "'{}' — vorticity of {} (observations under the states they observe)",
            first.text("observation", 0),
            crate::flow::every_nth_state(every)
        ),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

impl Command {
    /// Whether the command may build tensors on the backend: all but those that read, write
    /// and plot host data only, which also run where the backend cannot (a new command is
    /// checked unless it is added here).
    fn computes_on_tensors(&self) -> bool {
        !matches!(
            self,
            Command::List
                | Command::Generate { .. }
                | Command::Plot { .. }
                | Command::Resimulate { .. }
                | Command::Compare { .. }
        )
    }
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
    if cli.command.computes_on_tensors() {
        crate::backend::check_backend()?;
    }
    match cli.command {
        Command::List => print!("{}", list_text()?),
        Command::Quickstart {
            part,
            samples,
            steps,
            seed,
            corrections,
            train_steps,
            lorenz_samples,
            lorenz_steps,
            particles,
            out,
        } => {
            let (oracle_part, lorenz_part) = match part.as_str() {
                "all" => (true, true),
                "oracle" => (true, false),
                "lorenz" => (false, true),
                other => {
                    return Err(crate::Error::Invalid(format!(
                        "--part must be all, oracle or lorenz, got '{other}'"
                    )))
                }
            };
            // every count is checked before either part starts, so a typo in a Lorenz flag
            // does not surface only after the oracle part and a training have run
            let counts = [
                ("--samples", samples, 1, oracle_part),
                ("--steps", steps, 1, oracle_part),
                ("--train-steps", train_steps, 1, lorenz_part),
                ("--lorenz-samples", lorenz_samples, 1, lorenz_part),
                ("--lorenz-steps", lorenz_steps, 1, lorenz_part),
                ("--particles", particles, 2, lorenz_part),
            ];
            if let Some((flag, value, least, _)) = counts
                .iter()
                .find(|(_, value, least, used)| *used && value < least)
            {
                return Err(crate::Error::Invalid(format!(
                    "{flag} must be ≥ {least}, got {value}"
                )));
            }
            if oracle_part {
                quickstart_oracle(samples, steps, seed, &corrections, &out)?;
            }
            if lorenz_part {
                quickstart_lorenz(train_steps, lorenz_samples, lorenz_steps, particles, &out)?;
            }
        }
        Command::Assimilate {
            run,
            data,
            split,
            index,
            len,
            observation,
            observation_params,
            guidance,
            guidance_params,
            blanket,
            sampler,
            sampler_params,
            samples,
            steps,
            seed,
            out,
        } => assimilate(
            AssimilateArgs {
                run,
                data,
                split,
                index,
                len,
                observation: (observation, parse_params(&observation_params)?),
                guidance: plugin_params(guidance, guidance_params, ("sda", "gamma = 0.03"))?,
                sampler: plugin_params(
                    sampler,
                    sampler_params,
                    ("pc", "corrections = 2, tau = 0.25"),
                )?,
                samples,
                steps,
                seed,
                out,
            },
            blanket,
        )?,
        Command::Compare { runs, out } => compare_flow(&runs, &out)?,
        Command::Resimulate {
            samples,
            count,
            config,
            grid,
            coarsen,
        } => {
            let mut cfg = match &config {
                Some(path) => read_toml::<KolmogorovConfig>(path)?,
                None => KolmogorovConfig::default(),
            };
            cfg.grid = grid.unwrap_or(cfg.grid);
            cfg.coarsen = coarsen.unwrap_or(cfg.coarsen);
            let system = crate::systems::kolmogorov::Kolmogorov::new(cfg)?;
            let path = std::path::Path::new(&samples);
            let a = crate::data::read_npy(path)?;
            let [n, len, 2, g, g2] = a.shape[..] else {
                return Err(crate::Error::Shape(format!(
                    "{samples}: expected [samples, L, 2, n, n], got {:?}",
                    a.shape
                )));
            };
            if g != g2 || g != system.coarse_grid() {
                return Err(crate::Error::Shape(format!(
                    "{samples} holds {g}×{g2} fields; the solver configuration coarsens to {}²",
                    system.coarse_grid()
                )));
            }
            if count == 0 {
                return Err(crate::Error::Invalid(
                    "--count must be ≥ 1 (the number of samples to re-simulate)".into(),
                ));
            }
            let d = len * 2 * g * g;
            let mut results = Vec::new();
            println!(
                "| sample | state | RMS(sample − re-simulation) | RMS(sample − persistence) |"
            );
            println!("|---:|---:|---:|---:|");
            for i in 0..count.min(n) {
                let x: Vec<f64> = a.data[i * d..(i + 1) * d]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let r = crate::flow::resimulate(&x, len, &system)?;
                for (s, (dist, pers)) in r.distance.iter().zip(&r.persistence).enumerate() {
                    println!("| {i} | {} | {dist:.4} | {pers:.4} |", s + 1);
                }
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                println!(
                    "| {i} | mean | {:.4} | {:.4} |",
                    mean(&r.distance),
                    mean(&r.persistence)
                );
                results.push(serde_json::json!({
                    "sample": i, "distance": r.distance, "persistence": r.persistence,
                }));
            }
            let out = path.with_file_name("resimulate.json");
            crate::data::write_atomic(
                &out,
                serde_json::to_string_pretty(&results)
                    .expect("json")
                    .as_bytes(),
            )?;
            println!("wrote {}", out.display());
        }
        Command::Evaluate {
            run,
            data,
            observation,
            observation_params,
            observations,
            len,
            samples,
            steps,
            corrections,
            sampler,
            sampler_params,
            particles,
            filter_burn_in,
            blanket,
            guidance,
            guidance_params,
            gamma,
            tau,
            out,
        } => {
            let pick = match (observation.as_str(), crate::lorenz::preset(&observation)) {
                (_, Some(p)) if observation_params.trim().is_empty() => p,
                (_, Some(_)) => {
                    return Err(crate::Error::Invalid(format!(
                        "the preset '{observation}' takes no parameters (use `pick` to change them)"
                    )))
                }
                ("pick", None) => registry::params(&parse_params(&observation_params)?)?,
                (other, None) => {
                    return Err(crate::Error::Invalid(format!(
                        "evaluate needs a state-wise observation for the particle filter: \
                         lo, hi or pick (got '{other}')"
                    )))
                }
            };
            let settings = crate::evaluate::EvaluateSettings {
                observation: pick,
                len,
                samples,
                steps,
                particles,
                filter_burn_in,
                progress: true,
            };
            let (guidance, params) = plugin_params(
                guidance,
                guidance_params,
                ("sda", &format!("gamma = {gamma}")),
            )?;
            let guidance = (registry::find::<GuidancePlugin>(&guidance)?.build)(&params)?;
            let samplers = evaluated_samplers(corrections, tau, &sampler, &sampler_params)?;
            let sda = crate::evaluate::SdaMethods::new(guidance.as_ref(), samplers)?;
            let device = crate::backend::default_device();
            let k = train::trained_network(run.as_ref())?.k();
            let blanket = blanket.build(k)?;
            let prior =
                crate::vector::VectorPrior::load_with_blanket(run.as_ref(), blanket, &device)?;
            let trained_on = train::trained_config(run.as_ref())?.system;
            let system = dataset_of(&data, &trained_on, &run)?
                .map(|m| m.system())
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "evaluate runs particle filters of the dataset's system: {data} needs a \
                         manifest.json naming a system registered in this program (`sda list`)"
                    ))
                })?;
            let indices: Vec<usize> = (0..observations).collect();
            let out = std::path::PathBuf::from(out);
            let rows = crate::evaluate::evaluate(
                system.as_ref(),
                &prior,
                &sda,
                data.as_ref(),
                &indices,
                &settings,
                &out,
                &device,
            )?;
            let table = crate::evaluate::markdown_table(
                &format!(
                    "{observation}, {trained_on}, {}, {}, {samples} samples, {steps} steps",
                    prior.composed.blanket().describe(),
                    guidance.describe()
                ),
                &rows,
            );
            crate::data::write_atomic(&out.join("table.md"), table.as_bytes())?;
            println!("{table}");
            println!("rows: {}", out.join("rows.jsonl").display());
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
            system_params,
            max_new,
        } => {
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
            if c != 2 || h != w {
                return Err(crate::Error::Shape(format!(
                    "{data}: shape {:?} does not hold 2 velocity channels on a square grid",
                    a.shape
                )));
            }
            if trajectory >= n_traj {
                return Err(crate::Error::Invalid(format!(
                    "{data} holds {n_traj} trajectories; --trajectory {trajectory} is out of range"
                )));
            }
            if count == 0 || every == 0 {
                return Err(crate::Error::Invalid(format!(
                    "--count and --every must be ≥ 1, got {count} and {every}"
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
                &format!(
                    "{data}: trajectory {trajectory}, vorticity of {}",
                    crate::flow::every_nth_state(every)
                ),
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
            init,
            lr,
            max_steps,
            output,
            schedule,
            schedule_params,
        } => {
            let mut cfg = match &config {
                Some(path) => read_toml::<TrainConfig>(path)?,
                None => {
                    // the dataset's manifest names the system and its state shape
                    let dir = data.clone().unwrap_or_else(|| "data/lorenz63".into());
                    let (system, dim) = match crate::generate::Manifest::read(dir.as_ref())? {
                        Some(m) => (m.system, m.state_shape.iter().product()),
                        None => ("lorenz63".into(), 3),
                    };
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
                    }
                }
            };
            if let Some(d) = data {
                cfg.data = d.into();
            }
            if let Some(k) = k {
                cfg.network = match cfg.network {
                    crate::score::network::NetworkConfig::UNet(mut c) => {
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
            schedule,
            schedule_params,
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
        }
    }
    Ok(())
}
