//! `sda assimilate`: one observation of a data trajectory assimilated with a trained local
//! score — a ResMLP on state vectors or a U-Net on Kolmogorov fields, both read once as a
//! [`TrainedPrior`](crate::checkpoint::TrainedPrior).

use super::args::{
    dataset_of, Defaults, GuidanceArgs, ObservationArgs, RunArgs, SamplerArgs, SamplingArgs,
};
use crate::backend::DefaultBackend;
use crate::checkpoint::{Checkpoint, PriorKind};
use crate::data::{write_atomic, Standardisation};
use crate::experiments::{flow, posterior};
use crate::registry::{self, GuidancePlugin, ObservationPlugin, SamplerPlugin};
use crate::sampler::SampleOptions;
use crate::score::network::NetworkConfig;
use crate::{Result, TrajectoryShape};

/// Assimilate one observation of a test trajectory with a trained local score: samples
/// (`samples.npy`, physical units), the truth and y, a summary JSON and a PNG of the
/// trajectories with the observations and the truth.
#[derive(clap::Args, Debug)]
pub struct AssimilateArgs {
    #[command(flatten)]
    trained: RunArgs,
    /// Split of the observed trajectory.
    #[arg(long, default_value = "test", value_parser = ["train", "valid", "test"])]
    split: String,
    /// Index of the observed trajectory in the split.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Trajectory length L (its first L states).
    #[arg(long, default_value_t = crate::experiments::lorenz::EVAL_LEN)]
    len: usize,
    #[command(flatten)]
    observation: ObservationArgs<Self>,
    #[command(flatten)]
    guidance: GuidanceArgs<Self>,
    #[command(flatten)]
    sampler: SamplerArgs<Self>,
    #[command(flatten)]
    sampling: SamplingArgs<Self>,
    /// A classical window smoother, or an ensemble filter run through the window, given the same
    /// observation (`letks`, `enks`, `letkf`; `sda list`): as many samples, saved as
    /// `smoother.npy`, its RMSE printed beside SDA's and its mean drawn in `hovmoller.png`.
    #[arg(long)]
    smoother: Option<String>,
    /// Parameters of --smoother.
    #[arg(long, requires = "smoother")]
    smoother_params: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "runs/assimilate")]
    out: String,
}

impl Defaults for AssimilateArgs {
    const OBSERVATION: (&'static str, &'static str) = ("lo", "");
    const GUIDANCE: (&'static str, &'static str) = ("sda", "gamma = 0.03");
    const SAMPLER: (&'static str, &'static str) = ("pc", "corrections = 2");
    const SAMPLES: &'static str = "128";
    const STEPS: &'static str = "256";
}

impl AssimilateArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let RunArgs { run, data, blanket } = self.trained;
        // the settings are checked before anything is read
        let observation = self.observation.named()?;
        let guidance = self.sampling.guidance(&self.guidance)?;
        let sampler = (self.sampling).sampler(&self.sampler, self.sampling.one_correction()?)?;
        let smoother = match &self.smoother {
            Some(name) => Some(registry::window_method(
                name,
                &registry::parse_params(self.smoother_params.as_deref().unwrap_or(""))?,
            )?),
            None => None,
        };
        let checkpoint = Checkpoint::read(run.as_ref())?;
        let blanket = blanket.build(checkpoint.network().k())?;
        let a = Assimilation {
            observation,
            guidance,
            sampler,
            run,
            data,
            split: self.split,
            index: self.index,
            len: self.len,
            samples: self.sampling.samples,
            steps: self.sampling.steps,
            grid: self.sampling.time_grid,
            seed: self.sampling.seed,
            smoother,
            out: self.out,
        };
        let device = crate::backend::default_device();
        let dim = checkpoint.state_dim_for(a.data.as_ref())?;
        let prior = checkpoint.prior_on(blanket, dim, &device)?;
        let d = prior.dim();
        let (observation, guidance, sampler) = a.components(TrajectoryShape::new(a.len, d))?;
        let trained_on = &checkpoint.config().system;
        // a field observation may prescribe y (an event, e.g. the circle's vorticity 0.6)
        let fixed = match prior.kind {
            PriorKind::Vector => None,
            PriorKind::Field => crate::observe::field::FieldScenario::fixed_y_of(&a.observation.0),
        };
        let manifest = match prior.kind {
            PriorKind::Vector => dataset_of(&a.data, trained_on, &a.run)?,
            PriorKind::Field => None,
        };
        let system = match &manifest {
            Some(m) => m.system()?,
            None => None,
        };
        if let (Some(m), None) = (&a.smoother, &system) {
            return Err(crate::Error::Invalid(format!(
                "--smoother ({}) runs the dataset's system, and {} names no registered one",
                m.describe(),
                a.data
            )));
        }
        let truth = posterior::trajectory(a.data.as_ref(), &a.split, a.index, a.len, d)?;
        let y = posterior::observe::<DefaultBackend>(
            observation.as_ref(),
            &prior.units,
            &truth,
            fixed,
            a.seed,
            &device,
        )?;
        let sda = posterior::Sda {
            prior: &prior,
            guidance: guidance.as_ref(),
            sampler: sampler.as_ref(),
            opts: a.sample_options(),
        };
        let (x, report) = sda.posterior(observation.as_ref(), &y, &device)?;
        let result = Posterior {
            components: (observation, guidance, sampler),
            blanket: prior.composed.blanket().describe(),
            truth,
            y,
            x,
            report,
        };
        match checkpoint.network() {
            NetworkConfig::Mlp(_) | NetworkConfig::Ring(_) => {
                a.vector_outputs(&result, &prior.units, trained_on, system, &device)
            }
            NetworkConfig::UNet(net) => a.field_outputs(&result, net.grid, &device),
        }
    }
}

/// What an assimilation produced, with the components that produced it.
struct Posterior {
    components: Components,
    blanket: String,
    truth: Vec<f64>,
    y: Vec<f64>,
    x: Vec<f64>,
    report: crate::sampler::SampleReport,
}

/// An assimilation's settings with its plugins' parameters parsed.
struct Assimilation {
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
    grid: crate::sampler::TimeGrid,
    seed: u64,
    smoother: Option<Box<dyn crate::methods::window::WindowSmoother>>,
    out: String,
}

/// The registered observation (built for `shape`), guidance and sampler of an assimilation.
type Components = (
    Box<dyn crate::observe::ObservationModel<DefaultBackend>>,
    Box<dyn crate::guidance::Guidance<DefaultBackend>>,
    Box<dyn crate::sampler::Sampler<DefaultBackend>>,
);

impl Assimilation {
    fn components(&self, shape: crate::TrajectoryShape) -> Result<Components> {
        let (o, g, s) = (&self.observation, &self.guidance, &self.sampler);
        Ok((
            registry::build_for::<ObservationPlugin>(&o.0, &o.1, shape)?,
            registry::build::<GuidancePlugin>(&g.0, &g.1)?,
            registry::build::<SamplerPlugin>(&s.0, &s.1)?,
        ))
    }

    fn sample_options(&self) -> SampleOptions {
        SampleOptions {
            samples: self.samples,
            steps: self.steps,
            grid: self.grid,
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

/// The end of an assimilation whose outputs are written: an error (a non-zero exit) when the
/// samples diverged — their largest |x| over [`DIVERGENCE_FACTOR`](crate::metrics::DIVERGENCE_FACTOR)
/// times the truth's — naming the ratio and the folder, whose files are kept for inspection.
/// The guidance's [`divergence_hint`](crate::guidance::Guidance::divergence_hint) ends the message.
fn refuse_divergence(ratio: f64, out: &std::path::Path, hint: Option<String>) -> Result<()> {
    if ratio > crate::metrics::DIVERGENCE_FACTOR {
        return Err(crate::Error::Numerical(format!(
            "the samples diverged: their largest |x| is {ratio:.3e}× the truth's (more than \
             {}×), so their statistics are meaningless; the outputs are kept in {} for \
             inspection{}",
            crate::metrics::DIVERGENCE_FACTOR,
            out.display(),
            hint.map_or(String::new(), |h| format!("; {h}"))
        )));
    }
    Ok(())
}

/// Panel names of a trajectories figure: Lorenz-63's `a, b, c`, else `x0, x1, …`.
fn component_names(system: Option<&dyn crate::dynamics::Dynamics>, dim: usize) -> Vec<String> {
    match system.map(|s| s.state_info().variables) {
        Some(names) if names.len() == dim => names,
        _ => (0..dim).map(|c| format!("x[{c}]")).collect(),
    }
}

/// What `assimilate.json` records of y (`y.npy`): the observation, σ_y of each value and, when
/// y factorises over states, the state each value observes (0-based).
fn y_record(model: &dyn crate::observe::ObservationModel<DefaultBackend>) -> serde_json::Value {
    let state_of_each_value = model.state_parts().map(|parts| {
        let mut states = vec![0; model.output_dim()];
        for (i, part) in parts.iter().enumerate() {
            part.clone().for_each(|j| states[j] = i);
        }
        states
    });
    serde_json::json!({
        "observation": model.describe(),
        "sigma_y": model.noise_std(),
        "state_of_each_value": state_of_each_value,
        "observed_states": model.observed_states(),
    })
}

/// Components drawn in a trajectories figure at most (the first ones).
const FIGURE_COMPONENTS: usize = 6;

impl Assimilation {
    /// The outputs of a ResMLP assimilation of any state-vector system: the units stored with
    /// the checkpoint, the log-prior from the dataset's system (rebuilt from its manifest, when
    /// registered and with a transition density), and a figure of the first components.
    fn vector_outputs(
        &self,
        p: &Posterior,
        units: &Standardisation,
        trained_on: &str,
        system: Option<Box<dyn crate::dynamics::Dynamics>>,
        device: &<DefaultBackend as burn::tensor::backend::BackendTypes>::Device,
    ) -> Result<()> {
        let a = self;
        let (observation, guidance, sampler) = &p.components;
        let (truth, y, x, report, blanket) = (&p.truth, &p.y, &p.x, &p.report, &p.blanket);
        let d = units.dim();
        let out = a.write_arrays(&[d], x, truth, y)?;
        let loglik = posterior::expected_log_likelihood::<DefaultBackend>(
            observation.as_ref(),
            units,
            y,
            x,
            device,
        );
        // the log-prior needs the system's transition density (probed on the first true state)
        let has_density = |s: &dyn crate::dynamics::Dynamics| {
            s.state_dim() == d
                && truth
                    .chunks_exact(d)
                    .next()
                    .is_some_and(|x1| s.log_transition(x1, x1).is_some())
        };
        let logprior = match &system {
            Some(s) if has_density(s.as_ref()) => {
                Some(crate::metrics::expected_log_prior(s.as_ref(), x, a.len)?)
            }
            _ => None,
        };
        let magnitude = crate::metrics::magnitude_ratio(x, truth);
        let rmse = |xs: &[f64]| crate::experiments::evaluate::ensemble_scores(xs, truth).rmse;
        // the classical method on the same observation (its system checked before sampling)
        let classical = match (&a.smoother, &system) {
            (Some(m), Some(s)) => {
                let start = std::time::Instant::now();
                let xs = crate::experiments::classical::smoother_posterior(
                    s.as_ref(),
                    units,
                    observation.as_ref(),
                    y,
                    m.as_ref(),
                    a.samples,
                    crate::experiments::evaluate::FILTER_BURN_IN,
                    a.seed.wrapping_add(crate::fnv1a(m.describe().as_bytes())),
                    device,
                )?;
                let f32s: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
                crate::data::write_npy(
                    &out.join("smoother.npy"),
                    &crate::data::Array::new(vec![a.samples, a.len, d], f32s)?,
                )?;
                Some((m.describe(), start.elapsed().as_secs_f64(), xs))
            }
            _ => None,
        };
        let summary = serde_json::json!({
            "run": a.run, "data": a.data, "split": a.split, "index": a.index, "len": a.len,
            "system": trained_on,
            "observation": [a.observation.0, a.observation.1.to_string()],
            "y": y_record(observation.as_ref()),
            "guidance": [a.guidance.0, a.guidance.1.to_string()],
            "blanket": blanket,
            "sampler": sampler.describe(),
            "samples": a.samples, "steps": a.steps, "seed": a.seed,
            "evaluations": report.evaluations, "seconds": report.seconds,
            "forwards_per_sample": report.passes_per_sample().0,
            "vjps_per_sample": report.passes_per_sample().1,
            "expected_log_likelihood": loglik, "expected_log_prior": logprior,
            "magnitude_ratio": magnitude,
            "diverged": magnitude > crate::metrics::DIVERGENCE_FACTOR,
            "rmse": rmse(x),
            "smoother": classical.as_ref().map(|(name, seconds, xs)| serde_json::json!({
                "method": name, "rmse": rmse(xs), "seconds": seconds,
                "samples": "smoother.npy (physical)",
            })),
            "units": "samples.npy and truth.npy physical; y.npy in the observation's (standardised) units",
            "standardisation": units,
        });
        write_atomic(
            &out.join("assimilate.json"),
            serde_json::to_string_pretty(&summary)
                .expect("json")
                .as_bytes(),
        )?;
        let observed = posterior::observed_coordinates::<DefaultBackend>(
            observation.as_ref(),
            units,
            y,
            device,
        );
        let figure = out.join("trajectories.png");
        let shown = d.min(FIGURE_COMPONENTS);
        let first = |v: &[f64]| -> Vec<f64> {
            v.chunks_exact(d)
                .flat_map(|s| s[..shown].iter().copied())
                .collect()
        };
        let names = component_names(system.as_deref(), d);
        let names: Vec<&str> = names.iter().take(shown).map(String::as_str).collect();
        let truth_shown = first(truth);
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
                draws: &first(x),
                truth: Some(&truth_shown),
                reference: None,
                dt: system.as_deref().and_then(|s| s.state_info().dt),
                observations: observed.iter().copied().filter(|o| o.1 < shown).collect(),
            },
        )?;
        // states of more values than the trajectory figure shows (a ring's sites): site × time
        if d > FIGURE_COMPONENTS {
            posterior::hovmoller(
                &out.join("hovmoller.png"),
                truth,
                x,
                &observed,
                (a.len, d),
                &format!(
                    "'{}' on {} trajectory {}: {}, {}, {} samples",
                    a.observation.0,
                    a.split,
                    a.index,
                    guidance.describe(),
                    sampler.describe(),
                    a.samples
                ),
                system.as_deref().and_then(|s| s.state_info().dt),
                classical
                    .as_ref()
                    .map(|(name, _, xs)| (name.as_str(), xs.as_slice())),
            )?;
        }
        let logprior_text = logprior.map_or(
            "n/a (no registered system with a transition density)".into(),
            |v| format!("{v:.1}"),
        );
        let classical_text = classical
            .as_ref()
            .map_or(String::new(), |(name, seconds, xs)| {
                format!(
                    "\n{name}: RMSE {:.3} in {seconds:.1} s (SDA: {:.3}), smoother.npy",
                    rmse(xs),
                    rmse(x)
                )
            });
        println!(
            "{} samples in {:.1} s ({} ε evaluations: {}); E[log p(y|x)] = {loglik:.2}, \
             E[log p(x_2:L|x_1)] = {logprior_text}{classical_text}\nwrote {}/{{samples,truth,y}}.npy, \
             assimilate.json, trajectories.png{}",
            a.samples,
            report.seconds,
            report.evaluations,
            passes_text(report),
            out.display(),
            if d > FIGURE_COMPONENTS {
                ", hovmoller.png"
            } else {
                ""
            }
        );
        refuse_divergence(magnitude, &out, guidance.divergence_hint())
    }

    /// The outputs of a U-Net (Kolmogorov) assimilation: velocity fields, no
    /// standardisation, the residual check and a vorticity figure.
    fn field_outputs(
        &self,
        p: &Posterior,
        grid: usize,
        device: &<DefaultBackend as burn::tensor::backend::BackendTypes>::Device,
    ) -> Result<()> {
        let a = self;
        let (observation, guidance, sampler) = &p.components;
        let (truth, y, x, report, blanket) = (&p.truth, &p.y, &p.x, &p.report, &p.blanket);
        let d = 2 * grid * grid;
        let residual = flow::residual_std::<DefaultBackend>(observation.as_ref(), y, x, device);
        let sigma = observation.noise_std().first().copied().unwrap_or(f64::NAN);
        let out = a.write_arrays(&[2, grid, grid], x, truth, y)?;
        let magnitude = crate::metrics::magnitude_ratio(x, truth);
        let summary = serde_json::json!({
            "run": a.run, "data": a.data, "split": a.split, "index": a.index, "len": a.len,
            "observation": [a.observation.0, a.observation.1.to_string()],
            "y": y_record(observation.as_ref()),
            "guidance": [a.guidance.0, a.guidance.1.to_string()],
            "blanket": blanket,
            "sampler": sampler.describe(),
            "samples": a.samples, "steps": a.steps, "seed": a.seed,
            "evaluations": report.evaluations, "seconds": report.seconds,
            "forwards_per_sample": report.passes_per_sample().0,
            "vjps_per_sample": report.passes_per_sample().1,
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
            flow::vorticity_strip(truth, a.len, grid, every),
        )];
        if let Some(row) = flow::observation_figure_row(observation.as_ref(), y, a.len, every, grid)
        {
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
            "{} samples in {:.1} s ({} ε evaluations: {}); residual std of A(x) − y {residual:.4} \
             (σ_y = {sigma})\nwrote {}/{{samples,truth,y}}.npy, assimilate.json, vorticity.png",
            a.samples,
            report.seconds,
            report.evaluations,
            passes_text(report),
            out.display()
        );
        refuse_divergence(magnitude, &out, guidance.divergence_hint())
    }
}

/// The network passes of a run, per sample, for its summary line.
fn passes_text(report: &crate::sampler::SampleReport) -> String {
    let (forwards, vjps) = report.passes_per_sample();
    format!("{forwards:.0} forwards + {vjps:.0} VJPs per sample")
}
