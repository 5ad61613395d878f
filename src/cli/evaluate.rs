//! `sda evaluate`: the Figure-2 evaluation of a trained state-vector prior against particle filters.

use super::args::{dataset_of, Defaults, GuidanceArgs, ObservationArgs, RunArgs, SamplingArgs};
use crate::backend::DefaultBackend;
use crate::checkpoint::Checkpoint;
use crate::experiments::evaluate::{Scenario, Selection};
use crate::registry::{self, parse_params};
use crate::registry::{GuidancePlugin, SamplerPlugin};
use crate::{Result, TrajectoryShape};

/// The paper's Figure-2 evaluation of one trained state-vector local score (Lorenz-63 or
/// any registered system): for test observations by any registered observation that
/// factorises over states, SDA with each C (and any registered sampler) against two particle
/// filters of the dataset's system; medians of W1(SDA, BPF)/W1(BPF′, BPF), E[log p(y|x)] and
/// E[log p(x_2:L|x_1)] as a table. Resumable: rows are saved per observation in `--out`;
/// `--shard i/n` computes every n-th observation, and `sda merge` joins the shards.
#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    trained: RunArgs,
    // `lo`, `hi`, `pick` or any registered observation that factorises over states, which the
    // particle filter needs
    #[command(flatten)]
    observation: ObservationArgs<Self>,
    /// Number of test observations (trajectories --first, --first + 1, …).
    #[arg(long, default_value_t = 16)]
    observations: usize,
    /// The first test trajectory observed.
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Comma-separated test trajectories to observe, instead of --first/--observations.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["first", "observations"])]
    indices: Option<Vec<usize>>,
    /// Compute only shard i of n (`i/n`, 0 ≤ i < n: the observations at positions i, i + n, …
    /// of the selection), one job each; `sda merge` joins the shards' folders.
    #[arg(long, default_value = "0/1")]
    shard: crate::experiments::evaluate::Shard,
    /// Trajectory length L.
    #[arg(long, default_value_t = crate::experiments::lorenz::EVAL_LEN)]
    len: usize,
    // SDA samples (and particle-filter trajectories) per observation, reverse steps
    #[command(flatten)]
    sampling: SamplingArgs<Self>,
    /// A registered sampler to evaluate besides (after) the --corrections rows; repeat the
    /// flag for several (`sda list`).
    #[arg(long)]
    sampler: Vec<String>,
    /// Parameters of each --sampler, in the same order: give it once per --sampler, or
    /// never (each sampler then takes its own defaults).
    #[arg(long)]
    sampler_params: Vec<String>,
    /// A registered classical window smoother to score beside SDA on the same observations,
    /// with as many samples (`enks`, `letks`, `var4d-weak`; `sda list`), or a registered
    /// ensemble filter run through the window (`letkf`, `ensf`: state i given the observations
    /// up to i); repeat the flag for several.
    #[arg(long)]
    smoother: Vec<String>,
    /// Parameters of each --smoother, in the same order: once per --smoother, or never.
    #[arg(long)]
    smoother_params: Vec<String>,
    /// Run SDA as a filter over sliding windows of W states: state i given the observations up
    /// to i, scored on every state beside `--smoother letkf` or `ensf` (one SDA posterior per
    /// observed state; the window remembers its W states only).
    #[arg(long, value_name = "W")]
    filtering: Option<usize>,
    /// Score the states from this one on (RMSE, spread, CRPS, ranks over states
    /// `spin_up … L − 1`): filters are scored once spun up from their cold start, and SDA as a
    /// filter (--filtering) estimates those states only.
    #[arg(long, default_value_t = 0)]
    spin_up: usize,
    /// Particles per filter; 0 runs no particle filter (systems too large for one, e.g.
    /// Lorenz-96 rings): methods are scored against the truth only (RMSE, spread, CRPS), without
    /// W1 ratios.
    #[arg(long, default_value_t = 1 << 14)]
    particles: usize,
    /// Transitions of the system from its initial prior before the filters' first state.
    #[arg(long, default_value_t = crate::experiments::evaluate::FILTER_BURN_IN)]
    filter_burn_in: usize,
    #[command(flatten)]
    guidance: GuidanceArgs<Self>,
    /// Also keep each observation's samples for analysis: `samples/observation-J/` in --out
    /// holds `truth.npy` [L, D], `y.npy`, `reference.npy` (the particle filter's, [N, L, D]) and
    /// one `K-METHOD.npy` [N, L, D] per row's method, in physical units (`np.load` reads them).
    /// Observations finished by an earlier run without the flag are not redone.
    #[arg(long)]
    save_samples: bool,
    /// Output folder (rows.jsonl, settings.json, table.md).
    #[arg(long, default_value = "runs/evaluate")]
    out: String,
}

impl Defaults for EvaluateArgs {
    const OBSERVATION: (&'static str, &'static str) = ("lo", "");
    const GUIDANCE: (&'static str, &'static str) = ("sda", "gamma = 0.03");
    /// Unused: `evaluate` takes --corrections and a list of --sampler.
    const SAMPLER: (&'static str, &'static str) = ("pc", "");
    const SAMPLES: &'static str = "128";
    const STEPS: &'static str = "256";
}

impl EvaluateArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
            trained: RunArgs { run, data, blanket },
            observation,
            observations,
            first,
            indices,
            shard,
            len,
            sampling,
            sampler,
            sampler_params,
            smoother,
            smoother_params,
            filtering,
            spin_up,
            particles,
            filter_burn_in,
            guidance,
            save_samples,
            out,
        } = self;
        observation.plugin()?;
        let (samples, steps) = (sampling.samples, sampling.steps);
        let mut settings = crate::experiments::evaluate::EvaluateSettings {
            len,
            samples,
            steps,
            grid: sampling.time_grid,
            particles,
            filter_burn_in,
            progress: true,
            prior: String::new(),
            seed: sampling.seed,
            spin_up,
            save_samples,
        };
        let (name, params) = sampling.guidance(&guidance)?;
        let guidance = registry::build::<GuidancePlugin>(&name, &params)?;
        let tau = sampling.tau()?.unwrap_or(crate::experiments::lorenz::TAU);
        let corrections = sampling.corrections().map(<[usize]>::to_vec);
        let samplers = evaluated_samplers(
            corrections,
            tau,
            (&sampler, &sampler_params),
            !smoother.is_empty(),
        )?;
        let smoothers = named(
            "smoother",
            &smoother,
            &smoother_params,
            registry::window_method,
        )?;
        let mut sda = crate::experiments::evaluate::SdaMethods::new(guidance.as_ref(), samplers)?
            .with_smoothers(smoothers)?;
        if let Some(w) = filtering {
            sda = sda.with_filtering(w);
        }
        let device = crate::backend::default_device();
        let checkpoint = Checkpoint::read(run.as_ref())?;
        settings.prior = checkpoint.fingerprint()?;
        let blanket = blanket.build(checkpoint.network().k())?;
        let dim = checkpoint.state_dim_for(data.as_ref())?;
        let prior = checkpoint.prior_on(blanket, dim, &device)?;
        let trained_on = &checkpoint.config().system;
        let system = dataset_of(&data, trained_on, &run)?
            .map(|m| m.system())
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "evaluate runs particle filters of the dataset's system: {data} needs a \
                     manifest.json naming a system registered in this program (`sda list`)"
                ))
            })?;
        let selection = Selection {
            indices: indices.unwrap_or_else(|| Selection::range(first, observations).indices),
            shard,
        };
        let shape = TrajectoryShape::new(len, prior.dim());
        let model = observation.build(shape)?;
        let scenario = Scenario {
            system: system.as_ref(),
            observation: model.as_ref(),
            name: format!("{}, {trained_on}", observation.name()),
        };
        let out = std::path::PathBuf::from(out);
        let summary = crate::experiments::evaluate::evaluate(
            &scenario,
            &prior,
            &sda,
            data.as_ref(),
            &selection,
            &settings,
            &out,
            &device,
        )?;
        println!("{}", summary.table);
        println!("rows: {}", out.join("rows.jsonl").display());
        Ok(())
    }
}

/// Joins the folders of `sda evaluate --shard 0/n … n−1/n` (each finished) into the folder one
/// unsharded evaluation writes: settings.json, rows.jsonl in the order of the selection, and
/// table.md.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' output folders, all n of them, in any order.
    #[arg(required = true)]
    shards: Vec<std::path::PathBuf>,
    /// Output folder (new, or holding this same evaluation).
    #[arg(long)]
    out: std::path::PathBuf,
}

impl MergeArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let summary = crate::experiments::evaluate::merge(&self.shards, &self.out)?;
        println!("{}", summary.table);
        println!("rows: {}", self.out.join("rows.jsonl").display());
        Ok(())
    }
}

/// The samplers of `sda evaluate`: predictor–corrector with each of `corrections` (0, 1, 2, 4
/// when no --corrections, --sampler or --smoother is given) and scale `tau`, then each
/// registered sampler named, with the parameters at the same position of `params` (all or none
/// of them given).
fn evaluated_samplers(
    corrections: Option<Vec<usize>>,
    tau: f64,
    (names, params): (&[String], &[String]),
    smoothers: bool,
) -> Result<Vec<Box<dyn crate::sampler::Sampler<DefaultBackend>>>> {
    let corrections = match corrections {
        Some(c) => c,
        None if names.is_empty() && !smoothers => vec![0, 1, 2, 4],
        None => Vec::new(),
    };
    let mut samplers = crate::experiments::evaluate::predictor_correctors(&corrections, tau)?;
    samplers.extend(named(
        "sampler",
        names,
        params,
        registry::build::<SamplerPlugin>,
    )?);
    Ok(samplers)
}

/// The plugins named by the repeated flag `--{flag}`, each built by `build` with the
/// parameters at the same position of `--{flag}-params` (given once per name, or never).
fn named<T>(
    flag: &str,
    names: &[String],
    params: &[String],
    build: impl Fn(&str, &toml::Value) -> Result<T>,
) -> Result<Vec<T>> {
    if !params.is_empty() && params.len() != names.len() {
        return Err(crate::Error::Invalid(format!(
            "--{flag}-params is given {} times for {} --{flag}; give it once per {flag}, in \
             the same order, or not at all",
            params.len(),
            names.len()
        )));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let p = parse_params(params.get(i).map_or("", String::as_str))?;
            build(name, &p)
        })
        .collect()
}
