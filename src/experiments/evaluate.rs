//! The paper's Figure-2 evaluation of a trained state-vector prior (§4.1): on observations of
//! test trajectories, SDA (guided by any guidance, the paper's Algorithm 3 with γ by default,
//! and sampled by each of a list of samplers, the paper's Algorithm 4 with each C) against two
//! independent bootstrap particle filters of the dataset's system, with the medians of
//! `W1(SDA, BPF) / W1(BPF′, BPF)`,
//! `E[log p(y | x)]` and `E[log p(x_{2:L} | x_1)]`. Written for Lorenz-63; any registered
//! state-vector system with a state-wise ([`Pick`]) observation runs the same way
//! (`sda evaluate`).

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::blanket::MarkovBlanket;
use crate::checkpoint::TrainedPrior;
use crate::data::load_states;
use crate::dynamics::Dynamics;
use crate::experiments::posterior::{
    expected_log_likelihood, observe, particle_posterior, posterior,
};
use crate::filter::ParticleFilter;
use crate::guidance::Guidance;
use crate::metrics::expected_log_prior;
use crate::observe::ops::{Pick, PickConfig};
use crate::sampler::{PredictorCorrector, SampleOptions, Sampler};
use crate::transport::wasserstein1;
use crate::{Error, Result, TrajectoryShape};

/// The paper's three statistics of a set of posterior trajectories.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Statistics {
    /// `W1(method, BPF) / W1(BPF, BPF′)` (1 for the BPF′ itself).
    pub w1_ratio: f64,
    /// `E[log p(y | x)]`.
    pub log_likelihood: f64,
    /// `E[log p(x_{2:L} | x_1)]`.
    pub log_prior: f64,
}

/// The filters' burn-in by default: the filter's prior of `x_1` is the system's initial prior
/// advanced 64 transitions (Lorenz-63 reaches its attractor in far fewer; the linear-Gaussian
/// chain starts stationary). A system that mixes slower needs a longer one.
pub const FILTER_BURN_IN: usize = 64;

/// Settings of [`evaluate_observation`].
#[derive(Debug, Clone)]
pub struct EvaluateSettings {
    /// Observation process (e.g. [`crate::experiments::lorenz::preset`]`("lo")`).
    pub observation: PickConfig,
    /// Trajectory length L (65 in the paper).
    pub len: usize,
    /// SDA samples and particle-filter trajectories per observation (1024 in the paper).
    pub samples: usize,
    /// Reverse steps (256 in the paper).
    pub steps: usize,
    /// Particles of each particle filter.
    pub particles: usize,
    /// Transitions of the system from its initial prior before the filter's first state
    /// ([`FILTER_BURN_IN`] by default).
    pub filter_burn_in: usize,
    /// Progress bars.
    pub progress: bool,
}

/// The SDA side of an evaluation: one guidance and the samplers to compare, one row each per
/// observation, all from the same prior.
pub struct SdaMethods<'a, B: Backend> {
    /// The likelihood score (Algorithm 3 with γ in the paper).
    pub guidance: &'a dyn Guidance<B>,
    /// The samplers, in the order of the rows; their descriptions
    /// ([`Sampler::describe`]) name the rows and must differ.
    pub samplers: Vec<Box<dyn Sampler<B>>>,
}

impl<'a, B: Backend> SdaMethods<'a, B> {
    /// `guidance` with any samplers; an error when there are none or two share a description.
    pub fn new(guidance: &'a dyn Guidance<B>, samplers: Vec<Box<dyn Sampler<B>>>) -> Result<Self> {
        if samplers.is_empty() {
            return Err(Error::Invalid(
                "an evaluation needs at least one sampler".into(),
            ));
        }
        let labels = samplers.iter().map(|s| s.describe()).collect::<Vec<_>>();
        if let Some(twice) = labels
            .iter()
            .enumerate()
            .find_map(|(i, l)| labels[..i].contains(l).then_some(l))
        {
            return Err(Error::Invalid(format!(
                "two samplers describe themselves as '{twice}'; an evaluation names its rows by \
                 the sampler's description, so each sampler may appear once"
            )));
        }
        Ok(Self { guidance, samplers })
    }

    /// The paper's Figure 2: `guidance` with the [`predictor_correctors`] of `corrections`.
    pub fn predictor_corrector(
        guidance: &'a dyn Guidance<B>,
        corrections: &[usize],
        tau: f64,
    ) -> Result<Self> {
        Self::new(guidance, predictor_correctors(corrections, tau)?)
    }

    /// The row names of the samplers, in order ([`Sampler::describe`]).
    pub fn labels(&self) -> Vec<String> {
        self.samplers.iter().map(|s| s.describe()).collect()
    }
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
    /// `None` for the particle filter, else the description of the SDA sampler
    /// ([`Sampler::describe`], e.g. `PC (C=1, tau=0.25)`).
    pub sampler: Option<String>,
    /// The statistics.
    pub stats: Statistics,
    /// Wall-clock seconds of the method.
    pub seconds: f64,
    /// ε evaluations per SDA sample (steps × the sampler's evaluations per step, the cost that
    /// compares samplers); 0 for the particle filter.
    #[serde(default)]
    pub evaluations: usize,
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
    /// The SDA trajectories of each sampler, in the order of [`SdaMethods::samplers`]
    /// (physical).
    pub samples: Vec<Vec<f64>>,
}

/// Evaluates SDA (the prior guided by `sda.guidance` — Algorithm 3 with γ in the paper — and
/// sampled by each of `sda.samplers` — PC with each C in the paper) on one observation of the
/// physical trajectory `truth` against two independent particle filters of `system`, as in the
/// paper's Figure 2. Seeds derive from `index`, so every row is reproducible on its own.
pub fn evaluate_observation<B: AutodiffBackend, M: MarkovBlanket<B>>(
    system: &dyn Dynamics,
    prior: &TrainedPrior<B, M>,
    sda: &SdaMethods<'_, B>,
    truth: &[f64],
    index: usize,
    settings: &EvaluateSettings,
    device: &B::Device,
) -> Result<Evaluation> {
    use crate::filter::Smoother;
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
    if system.log_transition(&truth[..d], &truth[..d]).is_none() {
        return Err(Error::Invalid(format!(
            "the evaluation reports E[log p(x_2:L | x_1)], which needs the transition density of \
             {}; it has none",
            system.name()
        )));
    }
    let shape = TrajectoryShape::new(settings.len, d);
    let pick = Pick::from_config(shape, settings.observation.clone())?;
    let y = observe::<B>(
        &pick,
        &prior.units,
        truth,
        None,
        1000 + index as u64,
        device,
    )?;
    let seed = 2 * index as u64;
    let filter = |seed: u64| ParticleFilter {
        particles: settings.particles,
        burn_in: settings.filter_burn_in,
        samples: settings.samples,
        seed,
        smoother: Smoother::Genealogy,
    };
    let start = std::time::Instant::now();
    let reference = particle_posterior(system, &prior.units, &pick, &y, &filter(seed))?;
    let bpf_seconds = start.elapsed().as_secs_f64();
    let second = particle_posterior(system, &prior.units, &pick, &y, &filter(seed + 1))?;
    let floor = wasserstein1(&second, &reference, settings.len * d)?;
    let stats = |x: &[f64], ratio: f64| -> Result<Statistics> {
        Ok(Statistics {
            w1_ratio: ratio,
            log_likelihood: expected_log_likelihood::<B>(&pick, &prior.units, &y, x, device),
            log_prior: expected_log_prior(system, x, settings.len)?,
        })
    };
    let mut rows = vec![EvaluateRow {
        observation: index,
        sampler: None,
        stats: stats(&second, 1.0)?,
        seconds: bpf_seconds,
        evaluations: 0,
        diverged: crate::metrics::diverged(&second, &reference),
    }];
    let mut samples = Vec::new();
    for sampler in &sda.samplers {
        let (x, report) = posterior::<B, M>(
            prior,
            &pick,
            &y,
            sda.guidance,
            sampler.as_ref(),
            &SampleOptions {
                samples: settings.samples,
                steps: settings.steps,
                seed: 7 + index as u64,
                progress: settings.progress,
            },
            device,
        )?;
        let ratio = wasserstein1(&x, &reference, settings.len * d)? / floor;
        rows.push(EvaluateRow {
            observation: index,
            sampler: Some(sampler.describe()),
            stats: stats(&x, ratio)?,
            seconds: report.seconds,
            evaluations: report.evaluations,
            diverged: crate::metrics::diverged(&x, &reference),
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

/// Median of a non-empty list (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// One method of an evaluation, summarised over its observations by [`medians`].
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSummary {
    /// `None` for the BPF′, else the SDA sampler's description.
    pub sampler: Option<String>,
    /// The medians of the three statistics.
    pub medians: Statistics,
    /// Mean wall-clock seconds per run.
    pub seconds: f64,
    /// ε evaluations per SDA sample (0 for the BPF′).
    pub evaluations: usize,
}

/// Per method (BPF′ first, then the SDA samplers in the order their rows first appear) the
/// medians over observations of the three statistics, the mean seconds and the ε evaluations.
pub fn medians(rows: &[EvaluateRow]) -> Vec<MethodSummary> {
    let mut methods: Vec<Option<String>> = vec![None];
    for r in rows {
        if !methods.contains(&r.sampler) {
            methods.push(r.sampler.clone());
        }
    }
    methods
        .into_iter()
        .filter(|m| rows.iter().any(|r| &r.sampler == m))
        .map(|sampler| {
            let sel: Vec<&EvaluateRow> = rows.iter().filter(|r| r.sampler == sampler).collect();
            let med = |f: fn(&Statistics) -> f64| median(sel.iter().map(|r| f(&r.stats)).collect());
            MethodSummary {
                sampler,
                medians: Statistics {
                    w1_ratio: med(|s| s.w1_ratio),
                    log_likelihood: med(|s| s.log_likelihood),
                    log_prior: med(|s| s.log_prior),
                },
                seconds: sel.iter().map(|r| r.seconds).sum::<f64>() / sel.len() as f64,
                evaluations: sel.iter().map(|r| r.evaluations).max().unwrap_or(0),
            }
        })
        .collect()
}

/// `v` with `decimals` decimals, or in scientific notation beyond 10⁶ in magnitude (where a
/// diverged run's statistics would otherwise print hundreds of digits).
fn fixed_or_scientific(v: f64, decimals: usize) -> String {
    if v.is_finite() && v.abs() >= 1e6 {
        format!("{v:.3e}")
    } else {
        format!("{v:.decimals$}")
    }
}

/// The name of a method in a table: `filter` for the BPF′ (`sampler` is `None`), else `SDA, `
/// and the sampler's description.
fn method_label(sampler: Option<&str>, filter: &str) -> String {
    sampler.map_or(filter.to_string(), |s| format!("SDA, {s}"))
}

/// The medians of [`medians`] as a markdown table.
pub fn markdown_table(title: &str, rows: &[EvaluateRow]) -> String {
    let count = {
        let mut o: Vec<usize> = rows.iter().map(|r| r.observation).collect();
        o.sort_unstable();
        o.dedup();
        o.len()
    };
    let mut s = format!(
        "| {title} ({count} observations, medians) | W1(·, BPF) / W1(BPF′, BPF) | E[log p(y|x)] | E[log p(x_2:L|x_1)] | ε evals | s per run |\n|---|---:|---:|---:|---:|---:|\n"
    );
    for m in medians(rows) {
        let label = method_label(m.sampler.as_deref(), "BPF′ (second filter)");
        let evaluations = match m.sampler {
            None => "–".to_string(),
            Some(_) => m.evaluations.to_string(),
        };
        s.push_str(&format!(
            "| {label} | {} | {} | {} | {evaluations} | {:.1} |\n",
            fixed_or_scientific(m.medians.w1_ratio, 2),
            fixed_or_scientific(m.medians.log_likelihood, 2),
            fixed_or_scientific(m.medians.log_prior, 1),
            m.seconds
        ));
    }
    let diverged: Vec<String> = rows
        .iter()
        .filter(|r| r.diverged)
        .map(|r| {
            let method = method_label(r.sampler.as_deref(), "BPF′");
            format!("{method} on observation {}", r.observation)
        })
        .collect();
    if !diverged.is_empty() {
        s.push_str(&format!(
            "\n**Diverged** ({} of {} runs; largest |x| over {}× the reference filter's, their \
             statistics are meaningless): {}.\n",
            diverged.len(),
            rows.len(),
            crate::metrics::DIVERGENCE_FACTOR,
            diverged.join(", ")
        ));
    }
    s
}

/// Evaluates `prior` on observations of the test trajectories `indices` of `data` (first
/// `settings.len` states), appending each observation's rows to `out/rows.jsonl` as soon as
/// it is done. Observations already in that file are not recomputed (a killed evaluation
/// resumes), provided it was written with the same settings (`out/settings.json`).
/// Returns all rows, in the order of `indices`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: AutodiffBackend, M: MarkovBlanket<B>>(
    system: &dyn Dynamics,
    prior: &TrainedPrior<B, M>,
    sda: &SdaMethods<'_, B>,
    data: &Path,
    indices: &[usize],
    settings: &EvaluateSettings,
    out: &Path,
    device: &B::Device,
) -> Result<Vec<EvaluateRow>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    // bad settings are refused before anything is written to `out`
    if indices.is_empty() {
        return Err(Error::Invalid(
            "no test observation to evaluate (ask for at least one)".into(),
        ));
    }
    let d = prior.dim();
    crate::score::EpsilonModel::<B>::check_shape(&prior.composed, settings.len, d)?;
    let all = load_states(data, "test", d)?;
    let (n, t) = (all.shape[0], all.shape[1]);
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        return Err(Error::Invalid(format!(
            "test trajectory {bad} does not exist: {} has {n} test trajectories (0–{})",
            data.display(),
            n.saturating_sub(1)
        )));
    }
    if settings.len > t {
        return Err(Error::Shape(format!(
            "L = {} is longer than the test trajectories ({t} states)",
            settings.len
        )));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let fingerprint = serde_json::json!({
        "observation": settings.observation,
        "len": settings.len,
        "samples": settings.samples,
        "steps": settings.steps,
        "samplers": sda.labels(),
        "particles": settings.particles,
        "filter_burn_in": settings.filter_burn_in,
        "blanket": prior.composed.blanket().describe(),
        "guidance": sda.guidance.describe(),
        "data": data.display().to_string(),
    });
    let settings_path = out.join("settings.json");
    let rows_path = out.join("rows.jsonl");
    if settings_path.exists() {
        let old: serde_json::Value = crate::data::read_json(&settings_path)?;
        if old != fingerprint {
            return Err(Error::Invalid(format!(
                "{} holds an evaluation with other settings ({old}); choose another --out",
                out.display()
            )));
        }
    } else {
        crate::data::write_atomic(
            &settings_path,
            serde_json::to_string_pretty(&fingerprint)
                .expect("json")
                .as_bytes(),
        )?;
        let _ = std::fs::remove_file(&rows_path);
    }
    let mut done: Vec<EvaluateRow> = Vec::new();
    if rows_path.exists() {
        let text = std::fs::read_to_string(&rows_path).map_err(io(&rows_path))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            done.push(serde_json::from_str(line).map_err(|e| Error::Corrupt {
                path: rows_path.clone(),
                message: e.to_string(),
            })?);
        }
    }
    let bar = if settings.progress {
        let bar = indicatif::ProgressBar::new(indices.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "observations [{bar:30}] {pos}/{len}, {msg} ETA {eta}",
            )
            .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut rows = Vec::new();
    for &j in indices {
        let previous: Vec<EvaluateRow> = done
            .iter()
            .filter(|r| r.observation == j)
            .cloned()
            .collect();
        if previous.len() == 1 + sda.samplers.len() {
            rows.extend(previous);
            bar.inc(1);
            continue;
        }
        let off = j * t * d;
        let truth: Vec<f64> = all.data[off..off + settings.len * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let quiet = EvaluateSettings {
            progress: false,
            ..settings.clone()
        };
        let e = evaluate_observation(system, prior, sda, &truth, j, &quiet, device)?;
        done.retain(|r| r.observation != j);
        done.extend(e.rows.iter().cloned());
        let text: String = done
            .iter()
            .map(|r| serde_json::to_string(r).expect("json") + "\n")
            .collect();
        crate::data::write_atomic(&rows_path, text.as_bytes())?;
        for r in e.rows.iter().filter(|r| r.diverged) {
            bar.suspend(|| {
                eprintln!(
                    "warning: observation {j}, {}: the trajectories diverged (largest |x| over \
                     {}× the reference filter's)",
                    method_label(r.sampler.as_deref(), "BPF′"),
                    crate::metrics::DIVERGENCE_FACTOR
                )
            });
        }
        if let Some(r) = e.rows.get(1) {
            bar.set_message(format!("last W1 ratio {:.2},", r.stats.w1_ratio));
        }
        rows.extend(e.rows);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}
