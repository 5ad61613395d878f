//! The Lorenz-63 experiment of the paper (§4.1, Figure 2) as library calls: the trained prior
//! (Algorithm 2 over a [`MlpScore`]), observations of test trajectories, SDA posteriors
//! (Algorithms 3–4), the particle-filter ground truth and the three metrics. `sda assimilate`,
//! `sda evaluate`, `sda quickstart` and `examples/lorenz_figure2.rs` are thin layers over it.
//!
//! Units: networks, observations and guidance work on **standardised** states
//! (`ã = a/8`, …; [`Lorenz63::standardise`]); samples, metrics and files are in physical units.
//! The paper's observation processes are registered presets (0-based states):
//! - `lo`: ã at every 8th state (states 0, 8, …, 64 of 65), σ_y = 0.05;
//! - `hi`: ã at every state, σ_y = 0.25.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::backend::{from_host, to_host, NoiseSource};
use crate::blanket::TemporalWindow;
use crate::data::load_split;
use crate::filter::ParticleFilter;
use crate::guidance::{sample_posterior, Guidance};
use crate::metrics::expected_log_prior;
use crate::observe::{
    ops::{Pick, PickConfig},
    ObservationModel,
};
use crate::sampler::{PredictorCorrector, SampleOptions, SampleReport, Sampler};
use crate::schedule::{NoiseSchedule, VpCosine};
use crate::score::mlp::MlpScore;
use crate::score::train::load_trained;
use crate::score::Composed;
use crate::systems::lorenz63::Lorenz63;
use crate::transport::wasserstein1;
use crate::{Error, Result, TrajectoryShape};

/// Trajectory length of the paper's evaluation (the first 65 states of a test trajectory).
pub const EVAL_LEN: usize = 65;
/// γ of Algorithm 3 used for the Lorenz evaluation (reference setup).
pub const GAMMA: f64 = 3e-2;
/// τ of the Langevin corrector (Algorithm 4).
pub const TAU: f64 = 0.25;

/// The paper's observation processes by name: `lo` (ã every 8th state, σ_y = 0.05) and `hi`
/// (ã every state, σ_y = 0.25).
pub fn preset(name: &str) -> Option<PickConfig> {
    let (every, sigma) = match name {
        "lo" => (8, 0.05),
        "hi" => (1, 0.25),
        _ => return None,
    };
    Some(PickConfig {
        states: None,
        every: Some(every),
        components: vec![0],
        sigma,
    })
}

/// Physical → standardised, for a flat array of states.
pub fn standardise_all(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(3)
        .flat_map(|s| Lorenz63::standardise([s[0], s[1], s[2]]))
        .collect()
}

/// Standardised → physical, for a flat array of states.
pub fn physical_all(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(3)
        .flat_map(|s| Lorenz63::unstandardise([s[0], s[1], s[2]]))
        .collect()
}

/// The composed prior of a trained run: `Composed<MlpScore, TemporalWindow{k}>` (Algorithm 2).
pub type LorenzPrior<B> = Composed<MlpScore<B>, TemporalWindow>;

/// Loads the checkpoint of a training folder as a composed prior (VP cosine schedule, the
/// one every training uses).
pub fn load_prior<B: Backend>(run: &Path, device: &B::Device) -> Result<LorenzPrior<B>> {
    let (net, cfg) = load_trained::<B, crate::score::mlp::ResMlp<B>>(run, device)?;
    if cfg.state_dim != 3 {
        return Err(Error::Shape(format!(
            "the checkpoint in {} has state dimension {}, Lorenz-63 states have 3",
            run.display(),
            cfg.state_dim
        )));
    }
    let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
    Composed::new::<B>(
        MlpScore::new(net, cfg, schedule),
        TemporalWindow::new(cfg.k)?,
    )
}

/// The first `len` states of trajectory `index` of a data split, in physical units
/// (`[len·3]`).
pub fn trajectory(data: &Path, split: &str, index: usize, len: usize) -> Result<Vec<f64>> {
    let a = load_split(data, split, &[3])?;
    let (n, t) = (a.shape[0], a.shape[1]);
    if index >= n {
        return Err(Error::Invalid(format!(
            "the {split} split of {} has {n} trajectories; index {index} is out of range",
            data.display()
        )));
    }
    if len > t {
        return Err(Error::Shape(format!(
            "asked for {len} states but trajectories in {} have {t}",
            data.display()
        )));
    }
    let off = index * t * 3;
    Ok(a.data[off..off + len * 3]
        .iter()
        .map(|&v| v as f64)
        .collect())
}

/// A noisy observation `y = A(standardise(truth)) + η` of a physical trajectory, seeded.
pub fn observe<B: Backend>(
    observation: &dyn ObservationModel<B>,
    truth: &[f64],
    seed: u64,
    device: &B::Device,
) -> Result<Vec<f64>> {
    let shape = observation.trajectory_shape();
    if truth.len() != shape.len * shape.dim || shape.dim != 3 {
        return Err(Error::Shape(format!(
            "a truth of {} values does not fit the observation's {}×{} trajectories",
            truth.len(),
            shape.len,
            shape.dim
        )));
    }
    let x = from_host::<B, 3>(&standardise_all(truth), [1, shape.len, 3], device);
    Ok(to_host(observation.sample(x, &mut NoiseSource::new(seed))))
}

/// SDA posterior trajectories (physical units, `[N·L·3]`): the composed prior guided by
/// `guidance` (Algorithm 3) and integrated by `sampler` (Algorithm 4).
#[allow(clippy::too_many_arguments)]
pub fn posterior<B: AutodiffBackend>(
    prior: &LorenzPrior<B>,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    guidance: &dyn Guidance<B>,
    sampler: &dyn Sampler<B>,
    opts: &SampleOptions,
    device: &B::Device,
) -> Result<(Vec<f64>, SampleReport)> {
    // about 1024 windows per piece
    let per_piece = (1024 / observation.trajectory_shape().len).max(1);
    let (x, report) = sample_posterior::<B, _>(
        prior,
        observation,
        y,
        guidance,
        sampler,
        opts,
        per_piece,
        device,
    )?;
    Ok((physical_all(&to_host(x)), report))
}

/// Ground truth: bootstrap-particle-filter posterior trajectories (physical units) for a
/// [`Pick`] observation of standardised states.
pub fn particle_posterior(pick: &Pick, y: &[f64], filter: &ParticleFilter) -> Result<Vec<f64>> {
    let len = pick.shape().len;
    let lik = |i: usize, x: &[f64]| {
        let s = Lorenz63::standardise([x[0], x[1], x[2]]);
        pick.state_log_likelihood(y, i, &s)
    };
    filter.run(&Lorenz63::default(), len, &lik)
}

/// `E[log p(y | x)]` over physical trajectories (`[N·L·3]`), with the normalising constant.
pub fn expected_log_likelihood<B: Backend>(
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    x: &[f64],
    device: &B::Device,
) -> f64 {
    let shape = observation.trajectory_shape();
    let n = x.len() / (shape.len * 3);
    let v = to_host(observation.log_likelihood(
        y,
        from_host::<B, 3>(&standardise_all(x), [n, shape.len, 3], device),
    ));
    v.iter().sum::<f64>() / v.len() as f64
}

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

/// Settings of [`evaluate_observation`].
#[derive(Debug, Clone)]
pub struct EvaluateSettings {
    /// Observation process (e.g. [`preset`]`("lo")`).
    pub observation: PickConfig,
    /// Trajectory length L (65 in the paper).
    pub len: usize,
    /// SDA samples and particle-filter trajectories per observation (1024 in the paper).
    pub samples: usize,
    /// Reverse steps (256 in the paper).
    pub steps: usize,
    /// The corrector counts C to evaluate.
    pub corrections: Vec<usize>,
    /// Particles of each particle filter.
    pub particles: usize,
    /// γ of Algorithm 3.
    pub gamma: f64,
    /// τ of the corrector.
    pub tau: f64,
    /// Progress bars.
    pub progress: bool,
}

/// One line of an evaluation: a method on one observation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvaluateRow {
    /// Index of the test trajectory observed.
    pub observation: usize,
    /// `None` for the particle filter, `Some(C)` for SDA with C corrections.
    pub corrections: Option<usize>,
    /// The statistics.
    pub stats: Statistics,
    /// Wall-clock seconds of the method.
    pub seconds: f64,
    /// Whether the method's trajectories diverged: their largest magnitude exceeds
    /// [`DIVERGENCE_FACTOR`](crate::metrics::DIVERGENCE_FACTOR) times the reference particle
    /// filter's ([`crate::metrics::diverged`]). Rows saved before this check read as `false`.
    #[serde(default)]
    pub diverged: bool,
}

/// Everything [`evaluate_observation`] produced for one observation.
pub struct Evaluation {
    /// The BPF′ row, then one row per C.
    pub rows: Vec<EvaluateRow>,
    /// The observation y (standardised units, as the observation model emits it).
    pub y: Vec<f64>,
    /// The reference particle-filter trajectories (physical, `[N·L·3]`).
    pub reference: Vec<f64>,
    /// The SDA trajectories for each C, in the order of the settings (physical).
    pub samples: Vec<Vec<f64>>,
}

/// Evaluates SDA (SDA guidance with γ, PC with each C) on one observation of the physical
/// trajectory `truth` against two independent particle filters, as in the paper's Figure 2.
/// Seeds derive from `index`, so every row is reproducible on its own.
pub fn evaluate_observation<B: AutodiffBackend>(
    prior: &LorenzPrior<B>,
    truth: &[f64],
    index: usize,
    settings: &EvaluateSettings,
    device: &B::Device,
) -> Result<Evaluation> {
    use crate::filter::Smoother;
    use crate::guidance::SdaGaussian;
    let shape = TrajectoryShape::new(settings.len, 3);
    let pick = Pick::from_config(shape, settings.observation.clone())?;
    let y = observe::<B>(&pick, truth, 1000 + index as u64, device)?;
    let seed = 2 * index as u64;
    let filter = |seed: u64| ParticleFilter {
        particles: settings.particles,
        burn_in: 64,
        samples: settings.samples,
        seed,
        smoother: Smoother::Genealogy,
    };
    let start = std::time::Instant::now();
    let reference = particle_posterior(&pick, &y, &filter(seed))?;
    let bpf_seconds = start.elapsed().as_secs_f64();
    let second = particle_posterior(&pick, &y, &filter(seed + 1))?;
    let floor = wasserstein1(&second, &reference, settings.len * 3)?;
    let sys = Lorenz63::default();
    let stats = |x: &[f64], ratio: f64| -> Result<Statistics> {
        Ok(Statistics {
            w1_ratio: ratio,
            log_likelihood: expected_log_likelihood::<B>(&pick, &y, x, device),
            log_prior: expected_log_prior(&sys, x, settings.len)?,
        })
    };
    let mut rows = vec![EvaluateRow {
        observation: index,
        corrections: None,
        stats: stats(&second, 1.0)?,
        seconds: bpf_seconds,
        diverged: crate::metrics::diverged(&second, &reference),
    }];
    let guidance = SdaGaussian::new(settings.gamma)?;
    let mut samples = Vec::new();
    for &c in &settings.corrections {
        let (x, report) = posterior::<B>(
            prior,
            &pick,
            &y,
            &guidance,
            &PredictorCorrector::new(c, settings.tau)?,
            &SampleOptions {
                samples: settings.samples,
                steps: settings.steps,
                seed: 7 + index as u64,
                progress: settings.progress,
            },
            device,
        )?;
        let ratio = wasserstein1(&x, &reference, settings.len * 3)? / floor;
        rows.push(EvaluateRow {
            observation: index,
            corrections: Some(c),
            stats: stats(&x, ratio)?,
            seconds: report.seconds,
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

/// Per method (BPF′ first, then SDA by increasing C) the medians over observations of the
/// three statistics and the mean seconds: `(corrections, medians, seconds)`, where
/// `corrections` is `None` for the BPF′.
pub fn medians(rows: &[EvaluateRow]) -> Vec<(Option<usize>, Statistics, f64)> {
    let mut methods: Vec<Option<usize>> = Vec::new();
    for r in rows {
        if !methods.contains(&r.corrections) {
            methods.push(r.corrections);
        }
    }
    methods.sort_by_key(|m| m.map_or(-1, |c| c as i64));
    methods
        .into_iter()
        .map(|m| {
            let sel: Vec<&EvaluateRow> = rows.iter().filter(|r| r.corrections == m).collect();
            let med = |f: fn(&Statistics) -> f64| median(sel.iter().map(|r| f(&r.stats)).collect());
            (
                m,
                Statistics {
                    w1_ratio: med(|s| s.w1_ratio),
                    log_likelihood: med(|s| s.log_likelihood),
                    log_prior: med(|s| s.log_prior),
                },
                sel.iter().map(|r| r.seconds).sum::<f64>() / sel.len() as f64,
            )
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

/// The name of a method in a table: `filter` for the BPF′ (`corrections` is `None`), else
/// `sda_prefix` followed by the number of corrections C.
fn method_label(corrections: Option<usize>, filter: &str, sda_prefix: &str) -> String {
    corrections.map_or(filter.to_string(), |c| format!("{sda_prefix}{c}"))
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
        "| {title} ({count} observations, medians) | W1(·, BPF) / W1(BPF′, BPF) | E[log p(y|x)] | E[log p(x_2:L|x_1)] | s per run |\n|---|---:|---:|---:|---:|\n"
    );
    for (m, st, sec) in medians(rows) {
        let label = method_label(m, "BPF′ (second filter)", "SDA C = ");
        s.push_str(&format!(
            "| {label} | {} | {} | {} | {sec:.1} |\n",
            fixed_or_scientific(st.w1_ratio, 2),
            fixed_or_scientific(st.log_likelihood, 2),
            fixed_or_scientific(st.log_prior, 1)
        ));
    }
    let diverged: Vec<String> = rows
        .iter()
        .filter(|r| r.diverged)
        .map(|r| {
            let method = method_label(r.corrections, "BPF′", "C = ");
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

/// The coordinates a linear observation reads directly (rows of A with a single unit entry),
/// as `(state, component, y in physical units, σ_y in physical units)` — what a figure can
/// draw over the trajectories. Non-linear or mixing observations give an empty list.
pub fn observed_coordinates<B: Backend>(
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    device: &B::Device,
) -> Vec<(usize, usize, f64, f64)> {
    use crate::systems::lorenz63::{STANDARD_MEAN, STANDARD_SCALE};
    let Ok(h) = crate::observe::linear_matrix(observation, device) else {
        return Vec::new();
    };
    let std = observation.noise_std();
    (0..h.nrows())
        .filter_map(|i| {
            let nz: Vec<usize> = (0..h.ncols()).filter(|&j| h[(i, j)].abs() > 1e-9).collect();
            match nz[..] {
                [j] if (h[(i, j)] - 1.0).abs() < 1e-6 => {
                    let c = j % 3;
                    Some((
                        j / 3,
                        c,
                        y[i] * STANDARD_SCALE[c] + STANDARD_MEAN[c],
                        std[i] * STANDARD_SCALE[c],
                    ))
                }
                _ => None,
            }
        })
        .collect()
}

/// Results of [`quickstart`].
pub struct QuickstartReport {
    /// Training steps, final mean training loss (last 100 steps), seconds of training.
    pub training: (usize, f32, f64),
    /// The BPF′ and SDA rows on the observation.
    pub rows: Vec<EvaluateRow>,
    /// The figure written.
    pub figure: std::path::PathBuf,
}

/// Settings of [`quickstart`].
#[derive(Debug, Clone)]
pub struct QuickstartSettings {
    /// Output folder (data, checkpoint, figure); reused when rerun.
    pub out: std::path::PathBuf,
    /// Training steps of the k = 2 model.
    pub train_steps: usize,
    /// SDA samples and particle-filter trajectories.
    pub samples: usize,
    /// Reverse steps.
    pub steps: usize,
    /// Corrections C.
    pub corrections: usize,
    /// Particles per filter.
    pub particles: usize,
    /// Progress bars.
    pub progress: bool,
}

/// The Lorenz pipeline at small scale: generate a small dataset (64 trajectories × 256 states),
/// train the paper's k = 2 ResMLP briefly, assimilate one `lo` observation of test
/// trajectory 0 with SDA, compare with two particle filters, draw the trajectories.
/// Every stage is resumable: a rerun reuses the data and the checkpoint.
pub fn quickstart(settings: &QuickstartSettings) -> Result<QuickstartReport> {
    use crate::generate::{generate_lorenz63, GenerateOptions};
    use crate::score::mlp::MlpConfig;
    use crate::score::train::{train, TrainConfig};
    type B = crate::backend::DefaultBackend;
    let device = crate::backend::default_device();
    let data = settings.out.join("data");
    generate_lorenz63(
        &Lorenz63::default(),
        &GenerateOptions {
            out: data.clone(),
            trajectories: 64,
            seed: 0,
            burn_in: 1024,
            keep: 256,
            max_new: None,
            progress: settings.progress,
        },
    )?;
    let cfg = TrainConfig {
        system: "lorenz63".into(),
        data: data.clone(),
        network: MlpConfig::paper(2).into(),
        steps: settings.train_steps,
        batch: 256,
        lr: 1e-3,
        weight_decay: 1e-3,
        validate_every: settings.train_steps.div_ceil(10).max(1),
        checkpoint_every: settings.train_steps.div_ceil(4).max(1),
        seed: 0,
        init: None,
    };
    let run = settings.out.join("train-k2");
    let log = train::<B>(&cfg, &run, true, None, settings.progress, &device)?;
    let tail = &log.loss[log.loss.len().saturating_sub(100)..];
    let training = (
        log.step,
        tail.iter().sum::<f32>() / tail.len().max(1) as f32,
        log.seconds,
    );
    let prior = load_prior::<B>(&run, &device)?;
    let truth = trajectory(&data, "test", 0, EVAL_LEN)?;
    let eval = EvaluateSettings {
        observation: preset("lo").expect("preset"),
        len: EVAL_LEN,
        samples: settings.samples,
        steps: settings.steps,
        corrections: vec![settings.corrections],
        particles: settings.particles,
        gamma: GAMMA,
        tau: TAU,
        progress: settings.progress,
    };
    let evaluation = evaluate_observation::<B>(&prior, &truth, 0, &eval, &device)?;
    let pick = Pick::from_config(TrajectoryShape::new(EVAL_LEN, 3), eval.observation.clone())?;
    let figure = settings.out.join("lorenz.png");
    crate::plot::trajectories_png(
        &figure,
        &crate::plot::TrajectoriesFigure {
            title: format!(
                "Lorenz-63 'lo', SDA k = 2 ({} training steps), C = {}",
                log.step, settings.corrections
            ),
            len: EVAL_LEN,
            components: &["a", "b", "c"],
            draws: &evaluation.samples[0],
            truth: Some(&truth),
            reference: Some(("particle filter", &evaluation.reference)),
            observations: observed_coordinates::<B>(&pick, &evaluation.y, &device),
        },
    )?;
    Ok(QuickstartReport {
        training,
        rows: evaluation.rows,
        figure,
    })
}

/// Evaluates `prior` on observations of the test trajectories `indices` of `data` (first
/// `settings.len` states), appending each observation's rows to `out/rows.jsonl` as soon as
/// it is done. Observations already in that file are not recomputed (a killed evaluation
/// resumes), provided it was written with the same settings (`out/settings.json`).
/// Returns all rows, in the order of `indices`.
pub fn evaluate<B: AutodiffBackend>(
    prior: &LorenzPrior<B>,
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
    std::fs::create_dir_all(out).map_err(io(out))?;
    let fingerprint = serde_json::json!({
        "observation": settings.observation,
        "len": settings.len,
        "samples": settings.samples,
        "steps": settings.steps,
        "corrections": settings.corrections,
        "particles": settings.particles,
        "gamma": settings.gamma,
        "tau": settings.tau,
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
    let all = load_split(data, "test", &[3])?;
    let (n, t) = (all.shape[0], all.shape[1]);
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        return Err(Error::Invalid(format!(
            "test trajectory {bad} does not exist ({n} in {})",
            data.display()
        )));
    }
    if settings.len > t {
        return Err(Error::Shape(format!(
            "L = {} is longer than the test trajectories ({t} states)",
            settings.len
        )));
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
        if previous.len() == 1 + settings.corrections.len() {
            rows.extend(previous);
            bar.inc(1);
            continue;
        }
        let off = j * t * 3;
        let truth: Vec<f64> = all.data[off..off + settings.len * 3]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let quiet = EvaluateSettings {
            progress: false,
            ..settings.clone()
        };
        let e = evaluate_observation::<B>(prior, &truth, j, &quiet, device)?;
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
                    r.corrections
                        .map_or("BPF′".to_string(), |c| format!("SDA C = {c}")),
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
