//! The paper's Figure-2 evaluation of a trained state-vector prior (§4.1): on observations of
//! test trajectories, SDA (guided by any guidance, the paper's Algorithm 3 with γ by default,
//! and sampled by each of a list of samplers, the paper's Algorithm 4 with each C) against two
//! independent bootstrap particle filters of the dataset's system, with the medians of
//! `W1(SDA, BPF) / W1(BPF′, BPF)`,
//! `E[log p(y | x)]` and `E[log p(x_{2:L} | x_1)]`. Written for Lorenz-63; any registered
//! state-vector system with any observation that factorises over states
//! ([`ObservationModel::state_parts`]) runs the same way (`sda evaluate`).
//!
//! [`evaluate_observation`] is one observation; [`evaluate`] runs a list of test trajectories,
//! resumably, or one shard of them ([`Selection`]), and [`merge`] joins the shards' rows into
//! those of one run; [`markdown_table`] summarises the rows.

mod samples;
mod store;
mod table;

pub use store::Summary;
pub use store::{evaluate, merge, read_rows, Selection, Shard};
pub use table::{markdown_table, median, medians, method_label, MethodSummary};

use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::blanket::MarkovBlanket;
use crate::checkpoint::TrainedPrior;
use crate::dynamics::Dynamics;
use crate::experiments::classical::smoother_posterior;
use crate::experiments::filtering::filtering_posterior;
use crate::experiments::posterior::{expected_log_likelihood, observe, particle_posterior, Sda};
use crate::filter::ParticleFilter;
use crate::guidance::Guidance;
use crate::methods::window::WindowSmoother;
use crate::metrics::expected_log_prior;
use crate::observe::ObservationModel;
use crate::sampler::{PredictorCorrector, SampleOptions, Sampler};
use crate::transport::wasserstein1;
use crate::{Error, Result};

/// The paper's three statistics of a set of posterior trajectories. In `rows.jsonl` a
/// non-finite value (a diverged run's) is written `null`, as JSON has no NaN, and read back as
/// NaN — as NumPy and pandas read it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Statistics {
    /// `W1(method, BPF) / W1(BPF, BPF′)` (1 for the BPF′ itself).
    #[serde(deserialize_with = "nan_if_null")]
    pub w1_ratio: f64,
    /// `E[log p(y | x)]`.
    #[serde(deserialize_with = "nan_if_null")]
    pub log_likelihood: f64,
    /// `E[log p(x_{2:L} | x_1)]`.
    #[serde(deserialize_with = "nan_if_null")]
    pub log_prior: f64,
    /// RMSE of the sample mean to the true trajectory (physical units, over its L·D values);
    /// NaN in rows saved before it was recorded.
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub rmse: f64,
    /// Spread: the root of the mean sample variance over the L·D values.
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub spread: f64,
    /// CRPS of the samples against the truth, averaged over the L·D values.
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub crps: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// A number, or NaN for the `null` that JSON writes for a non-finite one.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What an evaluation observes: the system whose particle filters give the reference, and the
/// observation process.
pub struct Scenario<'a, B: Backend> {
    /// The system the particle filters run (the dataset's).
    pub system: &'a dyn Dynamics,
    /// The observation of standardised trajectories of the evaluation's length, factorising over
    /// states ([`ObservationModel::state_parts`]).
    pub observation: &'a dyn ObservationModel<B>,
    /// The scenario in a table's title, e.g. `lo, lorenz63`.
    pub name: String,
}

/// The filters' burn-in by default: the filter's prior of `x_1` is the system's initial prior
/// advanced 64 transitions (Lorenz-63 reaches its attractor in far fewer; the linear-Gaussian
/// chain starts stationary). A system that mixes slower needs a longer one.
pub const FILTER_BURN_IN: usize = 64;

/// Settings of [`evaluate_observation`].
#[derive(Debug, Clone)]
pub struct EvaluateSettings {
    /// Trajectory length L (65 in the paper); the observation is built for it.
    pub len: usize,
    /// SDA samples and particle-filter trajectories per observation (1024 in the paper).
    pub samples: usize,
    /// Reverse steps (256 in the paper).
    pub steps: usize,
    /// How the steps are spaced in t (uniform in the paper).
    pub grid: crate::sampler::TimeGrid,
    /// Particles of each particle filter; 0 runs no particle filter (a system too large for
    /// one): the methods are scored against the truth only, without W1 ratios or BPF′ row.
    pub particles: usize,
    /// Transitions of the system from its initial prior before the filter's first state
    /// ([`FILTER_BURN_IN`] by default).
    pub filter_burn_in: usize,
    /// Progress bars.
    pub progress: bool,
    /// What identifies the prior's weights ([`crate::checkpoint::Checkpoint::fingerprint`]),
    /// recorded with the rows so that resuming with another network is refused.
    pub prior: String,
    /// Base seed: observation `j`'s noise, filters and samplers draw from seeds derived from
    /// it and `j` (seed 0 gives the seeds this evaluation has always used).
    pub seed: u64,
    /// The first state scored (0: all of them): RMSE, spread, CRPS and the rank histogram are
    /// taken over the states `spin_up … L − 1`, so that filters are scored once spun up from
    /// their cold start (the data-assimilation convention of discarding a burn-in), and SDA as
    /// a filter ([`SdaMethods::filtering`]) estimates those states only. W1 and the expected
    /// log-densities stay over the whole trajectory, and read NaN for a filter that left the
    /// states before `spin_up` unestimated.
    pub spin_up: usize,
    /// Also keep each observation's samples as `.npy` under `out/samples/`
    /// (written by `samples::write`); not part of the settings a resumed run must match.
    pub save_samples: bool,
}

impl EvaluateSettings {
    /// The states scored, `spin_up … L − 1`; an error when none is left.
    pub fn scored_states(&self) -> Result<std::ops::Range<usize>> {
        if self.spin_up >= self.len {
            return Err(Error::Invalid(format!(
                "--spin-up {} leaves no state of L = {} to score",
                self.spin_up, self.len
            )));
        }
        Ok(self.spin_up..self.len)
    }

    /// Whether the particle filters give a reference posterior (particles > 0).
    pub fn has_reference(&self) -> bool {
        self.particles > 0
    }
}

/// The SDA side of an evaluation: one guidance and the samplers to compare, one row each per
/// observation, all from the same prior.
pub struct SdaMethods<'a, B: Backend> {
    /// The likelihood score (Algorithm 3 with γ in the paper).
    pub guidance: &'a dyn Guidance<B>,
    /// The samplers, in the order of the rows; their descriptions
    /// ([`Sampler::describe`]) name the rows and must differ.
    pub samplers: Vec<Box<dyn Sampler<B>>>,
    /// Classical window smoothers scored beside them (after the SDA rows), none by default;
    /// their descriptions ([`WindowSmoother::describe`]) name their rows and must differ.
    pub smoothers: Vec<Box<dyn WindowSmoother>>,
    /// SDA as a filter over sliding windows of this many states
    /// ([`crate::experiments::filtering`]: state i given the observations up to i), instead of
    /// the smoothing posterior of the whole trajectory; `None` by default.
    pub filtering: Option<usize>,
}

impl<'a, B: Backend> SdaMethods<'a, B> {
    /// `guidance` with any samplers (none: the evaluation scores only smoothers, added by
    /// [`with_smoothers`](Self::with_smoothers)); an error when two share a description.
    pub fn new(guidance: &'a dyn Guidance<B>, samplers: Vec<Box<dyn Sampler<B>>>) -> Result<Self> {
        unique_labels("sampler", samplers.iter().map(|s| s.describe()))?;
        Ok(Self {
            guidance,
            samplers,
            smoothers: Vec::new(),
            filtering: None,
        })
    }

    /// These methods with SDA run as a filter over sliding windows of `window` states
    /// ([`crate::experiments::filtering`]); its rows are named `…, filtering W=…`.
    pub fn with_filtering(mut self, window: usize) -> Self {
        self.filtering = Some(window);
        self
    }

    /// These methods with the classical `smoothers` scored beside them; an error when two share
    /// a description.
    pub fn with_smoothers(mut self, smoothers: Vec<Box<dyn WindowSmoother>>) -> Result<Self> {
        unique_labels("smoother", smoothers.iter().map(|s| s.describe()))?;
        self.smoothers = smoothers;
        Ok(self)
    }

    /// The row names of the smoothers, in order ([`WindowSmoother::describe`]).
    pub fn smoother_labels(&self) -> Vec<String> {
        self.smoothers.iter().map(|s| s.describe()).collect()
    }

    /// Rows per observation: the BPF′ (when the particle filters give the reference), each
    /// sampler, each smoother.
    pub fn rows_per_observation(&self, reference: bool) -> usize {
        usize::from(reference) + self.samplers.len() + self.smoothers.len()
    }

    /// An error when there is nothing to compare with the particle filter.
    pub fn check(&self) -> Result<()> {
        if self.samplers.is_empty() && self.smoothers.is_empty() {
            return Err(Error::Invalid(
                "an evaluation needs at least one sampler or smoother".into(),
            ));
        }
        Ok(())
    }

    /// The paper's Figure 2: `guidance` with the [`predictor_correctors`] of `corrections`.
    pub fn predictor_corrector(
        guidance: &'a dyn Guidance<B>,
        corrections: &[usize],
        tau: f64,
    ) -> Result<Self> {
        Self::new(guidance, predictor_correctors(corrections, tau)?)
    }

    /// The row names of the samplers, in order ([`Sampler::describe`], followed by
    /// `, filtering W=…` when SDA runs as a filter).
    pub fn labels(&self) -> Vec<String> {
        self.samplers
            .iter()
            .map(|s| match self.filtering {
                Some(w) => format!("{}, filtering W={w}", s.describe()),
                None => s.describe(),
            })
            .collect()
    }
}

/// An error when two of the `what`s' descriptions are the same: an evaluation names its rows
/// by them.
fn unique_labels(what: &str, labels: impl Iterator<Item = String>) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    for l in labels {
        if seen.contains(&l) {
            return Err(Error::Invalid(format!(
                "two {what}s describe themselves as '{l}'; an evaluation names its rows by the \
                 {what}'s description, so each {what} may appear once"
            )));
        }
        seen.push(l);
    }
    Ok(())
}

/// The paper's Figure-2 samplers: Algorithm 4 (predictor–corrector) with each number of
/// corrections C in `corrections`, of scale τ.
pub fn predictor_correctors<B: Backend>(
    corrections: &[usize],
    tau: f64,
) -> Result<Vec<Box<dyn Sampler<B>>>> {
    corrections
        .iter()
        .map(|&c| Ok(Box::new(PredictorCorrector::new(c, tau)?) as Box<dyn Sampler<B>>))
        .collect()
}

/// One line of an evaluation: a method on one observation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvaluateRow {
    /// Index of the test trajectory observed.
    pub observation: usize,
    /// The description of the SDA sampler ([`Sampler::describe`], e.g. `PC (C=1, tau=0.25)`,
    /// with `, filtering W=…` when SDA ran as a filter, [`SdaMethods::labels`]); `None` for the
    /// particle filter and a classical smoother.
    pub sampler: Option<String>,
    /// The description of the classical window smoother ([`WindowSmoother::describe`]) of its
    /// rows, else `None` (absent from the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoother: Option<String>,
    /// The statistics.
    pub stats: Statistics,
    /// The rank histogram of the truth among the method's samples over the L·D values
    /// (Anderson 1996): entry r counts the values with r samples below the truth, r = 0 … S;
    /// flat for a calibrated method. Empty in rows saved before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<usize>,
    /// Wall-clock seconds of the method.
    pub seconds: f64,
    /// ε evaluations per SDA sample (steps × the sampler's evaluations per step, the cost that
    /// compares samplers); 0 for the particle filter.
    #[serde(default)]
    pub evaluations: usize,
    /// Network forwards and VJPs per SDA sample ([`crate::sampler::SampleReport::passes`]);
    /// `(0, 0)` for the particle filter and in rows saved before passes were counted.
    #[serde(default)]
    pub passes: (f64, f64),
    /// Whether the method's trajectories diverged: their largest magnitude exceeds
    /// [`DIVERGENCE_FACTOR`](crate::metrics::DIVERGENCE_FACTOR) times the reference particle
    /// filter's ([`crate::metrics::diverged`]). Rows saved before this check read as `false`.
    #[serde(default)]
    pub diverged: bool,
}

/// Everything [`evaluate_observation`] produced for one observation.
pub struct Evaluation {
    /// The BPF′ row, then one row per sampler.
    pub rows: Vec<EvaluateRow>,
    /// The observation y (standardised units, as the observation model emits it).
    pub y: Vec<f64>,
    /// The reference particle-filter trajectories (physical, `[N·L·D]`).
    pub reference: Vec<f64>,
    /// The SDA trajectories of each sampler, in the order of [`SdaMethods::samplers`], then
    /// those of each smoother (physical).
    pub samples: Vec<Vec<f64>>,
}

/// Evaluates SDA (the prior guided by `sda.guidance` — Algorithm 3 with γ in the paper — and
/// sampled by each of `sda.samplers` — PC with each C in the paper) on one observation of the
/// physical trajectory `truth` against two independent particle filters of `system`, as in the
/// paper's Figure 2. Seeds derive from `settings.seed` and `index`, so every row is reproducible
/// on its own.
pub fn evaluate_observation<B: AutodiffBackend, M: MarkovBlanket<B>>(
    scenario: &Scenario<'_, B>,
    prior: &TrainedPrior<B, M>,
    sda: &SdaMethods<'_, B>,
    truth: &[f64],
    index: usize,
    settings: &EvaluateSettings,
    device: &B::Device,
) -> Result<Evaluation> {
    use crate::filter::Smoother;
    sda.check()?;
    let (system, observation) = (scenario.system, scenario.observation);
    let d = prior.dim();
    if system.state_dim() != d {
        return Err(Error::Shape(format!(
            "the system {} has states of {}, the prior's have {d}",
            system.name(),
            system.state_dim()
        )));
    }
    if settings.len == 0 || truth.len() != settings.len * d {
        return Err(Error::Shape(format!(
            "a truth of {} values is not {} states of {d}",
            truth.len(),
            settings.len
        )));
    }
    // E[log p(x_2:L | x_1)] needs the transition density; a deterministic model has none
    let has_density = system.log_transition(&truth[..d], &truth[..d]).is_some();
    let shape = observation.trajectory_shape();
    if (shape.len, shape.dim) != (settings.len, d) {
        return Err(Error::Shape(format!(
            "{} is built for {}×{} trajectories, the evaluation's are {}×{d}",
            observation.describe(),
            shape.len,
            shape.dim,
            settings.len
        )));
    }
    // the base seed spread over the 64-bit range, so that nearby base seeds share no stream
    let base = settings.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let y = observe::<B>(
        observation,
        &prior.units,
        truth,
        None,
        base.wrapping_add(1000 + index as u64),
        device,
    )?;
    let seed = base.wrapping_add(2 * index as u64);
    let filter = |seed: u64| ParticleFilter {
        particles: settings.particles,
        burn_in: settings.filter_burn_in,
        samples: settings.samples,
        seed,
        smoother: Smoother::Genealogy,
    };
    let scored_states = settings.scored_states()?;
    // the scored states of trajectories `[S·L·D]`
    let scored = |x: &[f64]| -> Vec<f64> {
        x.chunks(settings.len * d)
            .flat_map(|t| t[scored_states.start * d..].iter().copied())
            .collect()
    };
    let scored_truth = scored(truth);
    let stats = |x: &[f64], ratio: f64| -> Result<(Statistics, Vec<usize>)> {
        let scores = ensemble_scores(&scored(x), &scored_truth);
        // a filter that estimated only the scored states has no whole trajectory
        let whole = x.iter().all(|v| !v.is_nan());
        let stats = Statistics {
            w1_ratio: ratio,
            log_likelihood: if whole {
                expected_log_likelihood::<B>(observation, &prior.units, &y, x, device)
            } else {
                f64::NAN
            },
            log_prior: if has_density && whole {
                expected_log_prior(system, x, settings.len)?
            } else {
                f64::NAN
            },
            rmse: scores.rmse,
            spread: scores.spread,
            crps: scores.crps,
        };
        Ok((stats, scores.ranks))
    };
    // the particle filters' reference and the BPF′ row; without them (no particles: a system
    // too large for a particle filter) the truth is the only reference and W1 is not reported
    let mut rows = Vec::new();
    let (reference, floor) = if settings.has_reference() {
        let start = std::time::Instant::now();
        let reference =
            particle_posterior(system, &prior.units, observation, &y, &filter(seed), device)?;
        let bpf_seconds = start.elapsed().as_secs_f64();
        let second = particle_posterior(
            system,
            &prior.units,
            observation,
            &y,
            &filter(seed.wrapping_add(1)),
            device,
        )?;
        let floor = wasserstein1(&second, &reference, settings.len * d)?;
        let (stats, ranks) = stats(&second, 1.0)?;
        rows.push(EvaluateRow {
            observation: index,
            sampler: None,
            smoother: None,
            stats,
            ranks,
            seconds: bpf_seconds,
            evaluations: 0,
            passes: (0.0, 0.0),
            diverged: crate::metrics::diverged(&second, &reference),
        });
        (reference, floor)
    } else {
        (truth.to_vec(), f64::NAN)
    };
    let ratio = |x: &[f64]| -> Result<f64> {
        if settings.has_reference() && x.iter().all(|v| !v.is_nan()) {
            Ok(wasserstein1(x, &reference, settings.len * d)? / floor)
        } else {
            Ok(f64::NAN)
        }
    };
    let mut samples = Vec::new();
    for (sampler, label) in sda.samplers.iter().zip(sda.labels()) {
        let opts = SampleOptions {
            samples: settings.samples,
            steps: settings.steps,
            grid: settings.grid,
            seed: base.wrapping_add(7 + index as u64),
            progress: settings.progress,
        };
        let method = Sda {
            prior,
            guidance: sda.guidance,
            sampler: sampler.as_ref(),
            opts,
        };
        let (x, report) = match sda.filtering {
            Some(w) => {
                filtering_posterior(&method, observation, &y, w, scored_states.clone(), device)?
            }
            None => method.posterior(observation, &y, device)?,
        };
        let (stats, ranks) = stats(&x, ratio(&x)?)?;
        rows.push(EvaluateRow {
            observation: index,
            sampler: Some(label),
            smoother: None,
            stats,
            ranks,
            seconds: report.seconds,
            evaluations: report.evaluations,
            passes: report.passes_per_sample(),
            diverged: crate::metrics::diverged(&scored(&x), &reference),
        });
        samples.push(x);
    }
    for smoother in &sda.smoothers {
        let start = std::time::Instant::now();
        let result = smoother_posterior(
            system,
            &prior.units,
            observation,
            &y,
            smoother.as_ref(),
            settings.samples,
            settings.filter_burn_in,
            // from the method's name, not its place in the list: a method scores the same
            // beside any others
            base.wrapping_add(0x5EED_0000 + 64 * index as u64)
                .wrapping_add(crate::fnv1a(smoother.describe().as_bytes())),
            device,
        );
        let seconds = start.elapsed().as_secs_f64();
        let (x, (stats, ranks), diverged) = match result {
            Ok(x) => {
                let scored = stats(&x, ratio(&x)?)?;
                let diverged = crate::metrics::diverged(&x, &reference);
                (x, scored, diverged)
            }
            // a classical method that loses the truth on this window (a non-finite analysis)
            // scores NaN here, the worst value in the medians, instead of ending the evaluation
            Err(Error::Numerical(why)) => {
                eprintln!(
                    "warning: {} diverged on observation {index}: {why}; its row is NaN",
                    smoother.describe()
                );
                let nan = Statistics {
                    w1_ratio: f64::NAN,
                    log_likelihood: f64::NAN,
                    log_prior: f64::NAN,
                    rmse: f64::NAN,
                    spread: f64::NAN,
                    crps: f64::NAN,
                };
                let x = vec![f64::NAN; truth.len() * settings.samples];
                (x, (nan, Vec::new()), true)
            }
            Err(e) => return Err(e),
        };
        rows.push(EvaluateRow {
            observation: index,
            sampler: None,
            smoother: Some(smoother.describe()),
            stats,
            ranks,
            seconds,
            evaluations: 0,
            passes: (0.0, 0.0),
            diverged,
        });
        samples.push(x);
    }
    Ok(Evaluation {
        rows,
        y,
        reference,
        samples,
    })
}

/// RMSE, spread and CRPS of trajectory samples `x` (`[S·L·D]`) against the truth (`[L·D]`),
/// over the L·D values ([`crate::methods::scores::score`]).
pub fn ensemble_scores(x: &[f64], truth: &[f64]) -> crate::methods::Scores {
    let values = truth.len();
    let samples = x.len() / values.max(1);
    let e = nalgebra::DMatrix::from_column_slice(values, samples, x);
    crate::methods::scores::score(&crate::methods::Estimate::Ensemble(&e), truth)
}
