//! The Lorenz-63 experiment of the paper (§4.1, Figure 2): its constants, its observation
//! presets, its trained prior and the small end-to-end quickstart. The pieces are generic:
//! the prior and its units are a [`TrainedPrior`], the Figure-2 evaluation against particle
//! filters is [`crate::experiments::evaluate`]'s.
//!
//! Units: networks, observations and guidance work on **standardised** states
//! (`ã = a/8`, …; [`Lorenz63::standardise`], stored with each checkpoint as
//! [`crate::data::Standardisation::lorenz63`]); samples, metrics and files are physical.
//! The paper's observation processes are registered presets (0-based states):
//! - `lo`: ã at every 8th state (states 0, 8, …, 64 of 65), σ_y = 0.05;
//! - `hi`: ã at every state, σ_y = 0.25.

use std::path::Path;

use burn::tensor::backend::Backend;

use crate::blanket::TemporalWindow;
use crate::checkpoint::{Checkpoint, TrainedPrior};
use crate::experiments::evaluate::{
    evaluate_observation, EvaluateRow, EvaluateSettings, Scenario, SdaMethods,
};
use crate::experiments::posterior::{observed_coordinates, trajectory};
use crate::observe::ops::{Pick, PickConfig};
use crate::systems::lorenz63::Lorenz63;
use crate::{Error, Result, TrajectoryShape};

/// Trajectory length of the paper's evaluation (the first 65 states of a test trajectory).
pub const EVAL_LEN: usize = 65;
/// γ of Algorithm 3 used for the Lorenz evaluation (reference setup).
pub const GAMMA: f64 = 3e-2;
/// τ of the Langevin corrector (Algorithm 4).
pub const TAU: f64 = 0.25;

/// The recommended k = 3 preset (width 256; 30 000 steps, then 60 000 more from them at
/// lr 5e-4, seed 1; validation loss 0.0699), shipped in `assets/lorenz63-k3` (with the commands
/// that reproduce it in its README) and embedded in the binary, so that `sda quickstart` can
/// assimilate with a well-trained prior on any machine, from any folder.
const PRESET_FILES: [(&str, &[u8]); 2] = [
    (
        "state.json",
        include_bytes!("../../assets/lorenz63-k3/state.json"),
    ),
    (
        "model-00060000.safetensors",
        include_bytes!("../../assets/lorenz63-k3/model-00060000.safetensors"),
    ),
];

/// Reverse steps of the preset's sampler.
pub const PRESET_STEPS: usize = 256;

/// Stride of the preset's windows ([`TemporalWindow::strided`]): windows of 7 states every 4.
pub const PRESET_STRIDE: usize = 4;

/// The preset's sampler: Algorithm 4's predictor with C = 4 corrections of the diagonal
/// (calibrated) corrector at τ = 1, [`PRESET_STEPS`] steps — 1 280 ε evaluations per sample,
/// a quarter of the paper's best protocol (5 120) — over [`preset_blanket`]'s windows. The
/// Lorenz chapter measures it against both on its 16 test observations.
pub fn preset_sampler() -> crate::sampler::PredictorCorrector {
    crate::sampler::PredictorCorrector {
        corrections: 4,
        tau: Some(1.0),
        corrector: crate::sampler::Corrector::Diagonal,
    }
}

/// The preset's blanket: the k = 3 temporal window every [`PRESET_STRIDE`] states (each ε
/// evaluation runs about a quarter of Algorithm 2's windows).
pub fn preset_blanket() -> Result<TemporalWindow> {
    TemporalWindow::strided(3, PRESET_STRIDE)
}

/// Writes the shipped preset's training folder into `dir` (files already there with the same
/// bytes are kept).
pub fn write_preset(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (name, bytes) in PRESET_FILES {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            crate::data::write_atomic(&path, bytes)?;
        }
    }
    Ok(())
}

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
        component_every: None,
        sigma,
        arctan: None,
    })
}

/// Loads a Lorenz-63 training folder as a composed prior with its units; an error if its
/// states are not Lorenz-63's 3.
pub fn load_prior<B: Backend>(run: &Path, device: &B::Device) -> Result<TrainedPrior<B>> {
    let prior = Checkpoint::read(run)?.prior::<B>(device)?;
    if prior.dim() != 3 {
        return Err(Error::Shape(format!(
            "the checkpoint in {} has state dimension {}, Lorenz-63 states have 3",
            run.display(),
            prior.dim()
        )));
    }
    Ok(prior)
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
    use crate::experiments::generate::{generate_lorenz63, GenerateOptions};
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
            force: false,
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
        schedule: Default::default(),
        time_power: 1.0,
        threads: 1,
    };
    let run = settings.out.join("train-k2");
    // a rerun continues (or reuses) the run this folder holds
    let resume = run.join("state.json").exists();
    let log = train::<B>(&cfg, &run, resume, None, settings.progress, &device)?;
    let tail = &log.loss[log.loss.len().saturating_sub(100)..];
    let training = (
        log.step,
        tail.iter().sum::<f32>() / tail.len().max(1) as f32,
        log.seconds,
    );
    let prior = load_prior::<B>(&run, &device)?;
    let truth = trajectory(&data, "test", 0, EVAL_LEN, 3)?;
    let eval = lo_settings(
        &run,
        settings.samples,
        settings.steps,
        settings.particles,
        settings.progress,
    )?;
    let system = Lorenz63::default();
    let guidance = crate::guidance::SdaGaussian::new(GAMMA)?;
    let sda = SdaMethods::predictor_corrector(&guidance, &[settings.corrections], TAU)?;
    let pick = lo_pick()?;
    let scenario = Scenario {
        system: &system,
        observation: &pick,
        name: "lo, lorenz63".into(),
    };
    let evaluation = evaluate_observation(&scenario, &prior, &sda, &truth, 0, &eval, &device)?;
    let figure = settings.out.join("lorenz.png");
    crate::plot::trajectories_png(
        &figure,
        &crate::plot::TrajectoriesFigure {
            title: format!(
                "Lorenz-63 'lo', SDA k = 2 ({} training steps), C = {}",
                log.step, settings.corrections
            ),
            len: EVAL_LEN,
            components: &["x", "y", "z"],
            draws: &evaluation.samples[0],
            truth: Some(&truth),
            reference: Some(("particle filter", &evaluation.reference)),
            dt: crate::dynamics::Dynamics::state_info(&system).dt,
            observations: observed_coordinates::<B>(&pick, &prior.units, &evaluation.y, &device),
        },
    )?;
    Ok(QuickstartReport {
        training,
        rows: evaluation.rows,
        figure,
    })
}

/// The shipped preset ([`write_preset`], written into `out/preset-k3`) assimilating the `lo`
/// observations of test trajectories `0..observations` of `data` with [`preset_sampler`]
/// over [`preset_blanket`],
/// each against two particle filters: the evaluation rows.
pub fn quickstart_preset(
    data: &Path,
    out: &Path,
    observations: usize,
    samples: usize,
    particles: usize,
    progress: bool,
) -> Result<Vec<EvaluateRow>> {
    type B = crate::backend::DefaultBackend;
    let device = crate::backend::default_device();
    let run = out.join("preset-k3");
    write_preset(&run)?;
    let prior = Checkpoint::read(&run)?.prior_with_blanket::<B, _>(preset_blanket()?, &device)?;
    let eval = lo_settings(&run, samples, PRESET_STEPS, particles, progress)?;
    let system = Lorenz63::default();
    let guidance = crate::guidance::SdaGaussian::new(GAMMA)?;
    let sda = SdaMethods::new(&guidance, vec![Box::new(preset_sampler())])?;
    let pick = lo_pick()?;
    let scenario = Scenario {
        system: &system,
        observation: &pick,
        name: "lo, lorenz63".into(),
    };
    let mut rows = Vec::new();
    for index in 0..observations {
        let truth = trajectory(data, "test", index, EVAL_LEN, 3)?;
        let evaluation =
            evaluate_observation(&scenario, &prior, &sda, &truth, index, &eval, &device)?;
        rows.extend(evaluation.rows);
    }
    Ok(rows)
}

/// The `lo` observation of the paper's 65-state evaluation window.
fn lo_pick() -> Result<Pick> {
    Pick::from_config(
        TrajectoryShape::new(EVAL_LEN, 3),
        preset("lo").expect("preset"),
    )
}

/// The evaluation settings of the quickstart's runs of the prior in `run` (seed 0, uniform grid).
fn lo_settings(
    run: &Path,
    samples: usize,
    steps: usize,
    particles: usize,
    progress: bool,
) -> Result<EvaluateSettings> {
    Ok(EvaluateSettings {
        len: EVAL_LEN,
        samples,
        steps,
        grid: Default::default(),
        particles,
        filter_burn_in: crate::experiments::evaluate::FILTER_BURN_IN,
        progress,
        prior: Checkpoint::read(run)?.fingerprint()?,
        seed: 0,
        spin_up: 0,
        save_samples: false,
    })
}

inventory::submit! {
    crate::registry::ObservationPlugin {
        name: "lo",
        description: "Lorenz-63 'lo' (paper Fig. 2): standardised a at every 8th state, sigma 0.05",
        build: |p, shape| {
            let crate::registry::NoParams {} = crate::registry::params(p)?;
            Ok(Box::new(Pick::from_config(shape, preset("lo").expect("preset"))?))
        },
    }
}

inventory::submit! {
    crate::registry::ObservationPlugin {
        name: "hi",
        description: "Lorenz-63 'hi' (paper Fig. 2): standardised a at every state, sigma 0.25",
        build: |p, shape| {
            let crate::registry::NoParams {} = crate::registry::params(p)?;
            Ok(Box::new(Pick::from_config(shape, preset("hi").expect("preset"))?))
        },
    }
}
