//! `sda evaluate`: the Figure-2 evaluation of a trained state-vector prior against particle filters.

use super::args::{dataset_of, plugin_params, TrainedBlanket};
use crate::backend::DefaultBackend;
use crate::checkpoint::Checkpoint;
use crate::registry::{self, parse_params};
use crate::registry::{GuidancePlugin, SamplerPlugin};
use crate::Result;

/// The paper's Figure-2 evaluation of one trained state-vector local score (Lorenz-63 or
/// any registered system): for test observations of `lo` / `hi` / `pick`, SDA with each C
/// (and any registered sampler) against two particle filters of the dataset's system;
/// medians of W1(SDA, BPF)/W1(BPF′, BPF), E[log p(y|x)] and E[log p(x_2:L|x_1)] as a table.
/// Resumable: rows are saved per observation in `--out`.
#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
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
    #[arg(long, default_value_t = crate::experiments::lorenz::EVAL_LEN)]
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
    #[arg(long, default_value_t = crate::experiments::evaluate::FILTER_BURN_IN)]
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
    #[arg(long, default_value_t = crate::experiments::lorenz::GAMMA)]
    gamma: f64,
    /// τ of the --corrections rows.
    #[arg(long, default_value_t = crate::experiments::lorenz::TAU)]
    tau: f64,
    /// Output folder (rows.jsonl, settings.json, table.md).
    #[arg(long, default_value = "runs/evaluate")]
    out: String,
}

impl EvaluateArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
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
        } = self;
        let pick = match (
            observation.as_str(),
            crate::experiments::lorenz::preset(&observation),
        ) {
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
        let settings = crate::experiments::evaluate::EvaluateSettings {
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
        let sda = crate::experiments::evaluate::SdaMethods::new(guidance.as_ref(), samplers)?;
        let device = crate::backend::default_device();
        let checkpoint = Checkpoint::read(run.as_ref())?;
        let blanket = blanket.build(checkpoint.network().k())?;
        let prior = checkpoint.prior_with_blanket(blanket, &device)?;
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
        let indices: Vec<usize> = (0..observations).collect();
        let out = std::path::PathBuf::from(out);
        let rows = crate::experiments::evaluate::evaluate(
            system.as_ref(),
            &prior,
            &sda,
            data.as_ref(),
            &indices,
            &settings,
            &out,
            &device,
        )?;
        let table = crate::experiments::evaluate::markdown_table(
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
        Ok(())
    }
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
    let mut samplers = crate::experiments::evaluate::predictor_correctors(&corrections, tau)?;
    for (i, name) in names.iter().enumerate() {
        let p = parse_params(params.get(i).map_or("", String::as_str))?;
        samplers.push((registry::find::<SamplerPlugin>(name)?.build)(&p)?);
    }
    Ok(samplers)
}
