//! **Algorithm 1**: training a local score on random windows of 2k+1 states by denoising score
//! matching in ε-space, `loss = mean((ε_φ(μ(t) x + σ(t) ε, t) − ε)²)`, `t ~ U(0, 1)`,
//! with AdamW and a learning rate decaying linearly to 0.
//!
//! Checkpoints (model as safetensors for inference and interchange; the parameter record and
//! the optimizer state in burn's MessagePack records for exact resumption; the training log)
//! are written atomically
//! every `checkpoint_every` steps; a killed run continues with `resume`. Batches are drawn from
//! seeds derived from `(seed, step)`, so a resumed run sees exactly the batches an uninterrupted
//! run would have seen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{backend::AutodiffBackend, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::mlp::ResMlp;
use super::network::{NetworkConfig, ScoreNetwork};
use super::unet::UNet;
use crate::data::{load_split, load_states, write_atomic, Standardisation};
use crate::generate::Manifest;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// A training run (TOML; unknown keys are rejected).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The system whose data is used, as its dataset's manifest names it (`lorenz63`: states
    /// of 3 in the paper's units; `kolmogorov`: velocity fields `[2, n, n]` as stored; any
    /// other: states of D standardised per coordinate, see [`training_units`]).
    pub system: String,
    /// Dataset folder with `train.npy` and `valid.npy`.
    pub data: PathBuf,
    /// The network (a ResMLP or a U-Net).
    pub network: NetworkConfig,
    /// Total optimisation steps.
    pub steps: usize,
    /// Windows per batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Initial learning rate (decays linearly to 0).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// AdamW weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Steps between validation losses.
    #[serde(default = "default_every")]
    pub validate_every: usize,
    /// Steps between checkpoints.
    #[serde(default = "default_every")]
    pub checkpoint_every: usize,
    /// Seed of initialisation and batches.
    #[serde(default)]
    pub seed: u64,
    /// Warm start: a training folder whose last checkpointed parameters initialise this run
    /// instead of a random draw. The network must be the same; the step count, the
    /// learning-rate decay and the AdamW moments start afresh (a second linear-decay cycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// The diffusion schedule μ(t), σ(t) of the training and of every later use of the
    /// network, by registered name (default: the paper's `vp-cosine`).
    #[serde(default, skip_serializing_if = "ScheduleChoice::is_paper")]
    pub schedule: ScheduleChoice,
}

/// A diffusion schedule by registered name with its parameters; in a training config,
/// `schedule = { name = "vp-linear", params = { eta = 1e-3 } }`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChoice {
    /// Registered name (`sda list`).
    pub name: String,
    /// The schedule's parameters (its defaults when empty).
    #[serde(default)]
    pub params: toml::Table,
}

impl Default for ScheduleChoice {
    /// The paper's VP cosine schedule with η = 1e-3.
    fn default() -> Self {
        Self {
            name: "vp-cosine".into(),
            params: toml::Table::new(),
        }
    }
}

impl ScheduleChoice {
    /// Whether this is the default (the paper's schedule, no parameters).
    pub fn is_paper(&self) -> bool {
        *self == Self::default()
    }

    /// The schedule, built by its registered constructor; an unknown name or a bad parameter
    /// is an error.
    pub fn build(&self) -> Result<Arc<dyn NoiseSchedule>> {
        let plugin = crate::registry::find::<crate::registry::SchedulePlugin>(&self.name)?;
        (plugin.build)(&toml::Value::Table(self.params.clone()))
    }
}

fn default_batch() -> usize {
    256
}
fn default_lr() -> f64 {
    1e-3
}
fn default_weight_decay() -> f64 {
    1e-3
}
fn default_every() -> usize {
    500
}

/// The training log kept beside the checkpoint.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainLog {
    /// Steps done.
    pub step: usize,
    /// Training loss of every step.
    pub loss: Vec<f32>,
    /// `(step, validation loss)`.
    pub valid: Vec<(usize, f32)>,
    /// Training seconds spent so far (over all runs).
    pub seconds: f64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    config: TrainConfig,
    log: TrainLog,
    model_file: String,
    record_file: String,
    optimizer_file: String,
    /// The units of a ResMLP's states (absent for a U-Net, and in Lorenz-63 checkpoints
    /// written before units were stored, whose units are [`Standardisation::lorenz63`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    units: Option<Standardisation>,
}

/// The units the network of `cfg` learns in: none for a U-Net on `kolmogorov` fields; for a
/// ResMLP the paper's fixed units on `lorenz63`, and on any other system the per-coordinate
/// mean and standard deviation of the training split ([`Standardisation::of_split`]). The
/// dataset's manifest, when it has one, must name `cfg.system`.
pub fn training_units(cfg: &TrainConfig) -> Result<Option<Standardisation>> {
    if let Some(m) = Manifest::read(&cfg.data)? {
        if m.system != cfg.system {
            return Err(Error::Invalid(format!(
                "the dataset in {} was generated by the system '{}', but the training config \
                 names '{}'",
                cfg.data.display(),
                m.system,
                cfg.system
            )));
        }
    }
    match (&cfg.network, cfg.system.as_str()) {
        (NetworkConfig::UNet(_), "kolmogorov") => Ok(None),
        (NetworkConfig::Mlp(_), "lorenz63") => Ok(Some(Standardisation::lorenz63())),
        (NetworkConfig::UNet(_), other) => Err(Error::Invalid(format!(
            "a U-Net learns kolmogorov velocity fields; {other} data take a ResMLP \
             (a [network] table with width and state_dim)"
        ))),
        (NetworkConfig::Mlp(_), "kolmogorov") => Err(Error::Invalid(
            "kolmogorov data take a U-Net (a [network] table with channels and grid)".into(),
        )),
        (NetworkConfig::Mlp(c), _) => {
            Standardisation::of_split(&load_states(&cfg.data, "train", c.state_dim)?).map(Some)
        }
    }
}

/// Windows of a dataset, standardised, as `f32` rows of `(2k+1)·D` values.
struct Windows {
    data: Vec<f32>,
    trajectories: usize,
    len: usize,
    dim: usize,
}

impl Windows {
    /// The split of a dataset as training windows, in the units the network learns in:
    /// `units` standardises a state-vector dataset (ResMLP); a U-Net learns Kolmogorov fields
    /// as stored.
    fn load(
        dir: &Path,
        split: &str,
        network: &NetworkConfig,
        units: Option<&Standardisation>,
    ) -> Result<Self> {
        let (a, dim) = match (network, units) {
            (NetworkConfig::Mlp(c), Some(units)) => {
                let mut a = load_states(dir, split, c.state_dim)?;
                let x: Vec<f64> = a.data.iter().map(|&v| v as f64).collect();
                for (v, s) in a.data.iter_mut().zip(units.standardise(&x)) {
                    *v = s as f32;
                }
                (a, c.state_dim)
            }
            (NetworkConfig::UNet(c), None) => {
                (load_split(dir, split, &[2, c.grid, c.grid])?, c.state_dim())
            }
            _ => {
                return Err(Error::Invalid(
                    "a ResMLP learns standardised states, a U-Net unstandardised fields".into(),
                ))
            }
        };
        Ok(Self {
            trajectories: a.shape[0],
            len: a.shape[1],
            data: a.data,
            dim,
        })
    }

    /// A batch `(x_t, t, ε)` of `n` random windows of `w` states.
    fn batch(
        &self,
        n: usize,
        w: usize,
        schedule: &dyn NoiseSchedule,
        rng: &mut StdRng,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let row = w * self.dim;
        let (mut xt, mut ts, mut eps) = (
            Vec::with_capacity(n * row),
            Vec::with_capacity(n),
            Vec::with_capacity(n * row),
        );
        for _ in 0..n {
            let tr = rng.random_range(0..self.trajectories);
            let start = rng.random_range(0..=self.len - w);
            let t: f64 = rng.random();
            let (mu, sigma) = (schedule.mu(t) as f32, schedule.sigma(t) as f32);
            let off = (tr * self.len + start) * self.dim;
            for &x in &self.data[off..off + row] {
                let e: f32 = StandardNormal.sample(&mut *rng);
                xt.push(mu * x + sigma * e);
                eps.push(e);
            }
            ts.push(t as f32);
        }
        (xt, ts, eps)
    }
}

/// Touches every float parameter, which runs burn's lazy initialisers now.
struct Materialise;

impl<B: burn::tensor::backend::Backend> burn::module::ModuleVisitor<B> for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Serialises "seed the backend RNG, initialise a network" across threads.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn step_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The denoising score-matching loss of Algorithm 1 on one batch `(x(t), t, ε)` of flattened
/// windows (`[n·(2k+1)·D]`, `[n]`, `[n·(2k+1)·D]`): `mean((ε_φ(x(t), t) − ε)²)`, with ε_φ the
/// network's raw output mapped to ε by its [`ScoreNetwork::output`] under `schedule`.
pub fn denoising_loss<B: burn::tensor::backend::Backend, N: ScoreNetwork<B>>(
    model: &N,
    cfg: &N::Config,
    (xt, ts, eps): &(Vec<f32>, Vec<f32>, Vec<f32>),
    row: usize,
    schedule: &dyn NoiseSchedule,
    device: &B::Device,
) -> Tensor<B, 1> {
    let n = ts.len();
    let x = Tensor::<B, 2>::from_data(TensorData::new(xt.clone(), [n, row]), device);
    let t = Tensor::<B, 1>::from_data(TensorData::new(ts.clone(), [n]), device);
    let e = Tensor::<B, 2>::from_data(TensorData::new(eps.clone(), [n, row]), device);
    let f = model.forward_train(cfg, x.clone(), t);
    let eps_hat = N::output(cfg).epsilon_per_item(f, x, ts, schedule);
    (eps_hat - e).powi_scalar(2).mean()
}

fn scalar<B: burn::tensor::backend::Backend>(x: Tensor<B, 1>) -> f32 {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float")[0]
}

/// Saves a model as safetensors bytes with its architecture in the metadata.
pub fn model_bytes<B: burn::tensor::backend::Backend, N: ScoreNetwork<B>>(
    model: &N,
    cfg: &N::Config,
) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None).metadata(
        "sda.network",
        serde_json::to_string(cfg).expect("config serialises"),
    );
    model
        .save_into(&mut store)
        .map_err(|e| Error::Numerical(format!("saving the model: {e}")))?;
    store
        .get_bytes()
        .map_err(|e| Error::Numerical(format!("saving the model: {e}")))
}

/// Loads a model saved by [`model_bytes`] into a network of architecture `cfg`; a file of
/// another architecture or a corrupt file is an error naming the path.
pub fn load_model<B: burn::tensor::backend::Backend, N: ScoreNetwork<B>>(
    path: &Path,
    cfg: &N::Config,
    device: &B::Device,
) -> Result<N> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| corrupt(format!("not a safetensors file: {e}")))?;
    let saved: N::Config = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("sda.network"))
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| corrupt("no sda.network metadata".into()))?;
    if saved != *cfg {
        return Err(corrupt(format!(
            "checkpoint is for {saved:?}, but the configuration asks for {cfg:?}"
        )));
    }
    let mut model = N::init(cfg, device)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model
        .load_from(&mut store)
        .map_err(|e| corrupt(format!("{e}")))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(corrupt(format!(
            "{} tensors failed to load, {} missing",
            result.errors.len(),
            result.missing.len()
        )));
    }
    Ok(model)
}

/// Runs (or resumes) a training. `stop_after` ends the call after that many steps of this call
/// (training in chunks; also how tests simulate a kill). Returns the log.
pub fn train<B: AutodiffBackend>(
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    stop_after: Option<usize>,
    progress: bool,
    device: &B::Device,
) -> Result<TrainLog> {
    match &cfg.network {
        NetworkConfig::Mlp(net) => {
            train_with::<B, ResMlp<B>>(cfg, net, out, resume, stop_after, progress, device)
        }
        NetworkConfig::UNet(net) => {
            train_with::<B, UNet<B>>(cfg, net, out, resume, stop_after, progress, device)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn train_with<B: AutodiffBackend, N>(
    cfg: &TrainConfig,
    net: &N::Config,
    out: &Path,
    resume: bool,
    stop_after: Option<usize>,
    progress: bool,
    device: &B::Device,
) -> Result<TrainLog>
where
    N: ScoreNetwork<B> + AutodiffModule<B>,
    N::InnerModule: ScoreNetwork<B::InnerBackend, Config = N::Config>,
{
    cfg.network.validate()?;
    if cfg.steps == 0 || cfg.batch == 0 || cfg.validate_every == 0 || cfg.checkpoint_every == 0 {
        return Err(Error::Invalid(
            "steps, batch, validate_every and checkpoint_every must be ≥ 1".into(),
        ));
    }
    // lr = 0 is allowed: the parameters stay as loaded (it measures a warm start's loss)
    if !(cfg.lr.is_finite() && cfg.lr >= 0.0) {
        return Err(Error::Invalid(format!(
            "the learning rate lr must be ≥ 0 and finite, got {}",
            cfg.lr
        )));
    }
    if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
        return Err(Error::Invalid(format!(
            "the weight decay must be ≥ 0 and finite, got {}",
            cfg.weight_decay
        )));
    }
    let schedule = cfg.schedule.build()?;
    let units = training_units(cfg)?;
    let train_set = Windows::load(&cfg.data, "train", &cfg.network, units.as_ref())?;
    let valid_set = Windows::load(&cfg.data, "valid", &cfg.network, units.as_ref())?;
    for (split, set) in [("train", &train_set), ("valid", &valid_set)] {
        if set.trajectories == 0 {
            return Err(Error::Shape(format!(
                "the {split} split of {} holds no trajectory (a dataset of n trajectories \
                 splits 80/10/10: generate at least 10)",
                cfg.data.display()
            )));
        }
    }
    let w = cfg.network.window();
    if train_set.len < w || valid_set.len < w {
        return Err(Error::Shape(format!(
            "trajectories of {} states are shorter than the window 2k+1 = {w}",
            train_set.len.min(valid_set.len)
        )));
    }
    let row = w * cfg.network.state_dim();
    let state_path = out.join("state.json");
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init::<B, N>();
    let (mut model, mut log) = if state_path.exists() {
        if !resume {
            return Err(Error::Invalid(format!(
                "{} already holds a training run; pass --resume to continue it or choose another --out",
                out.display()
            )));
        }
        let bytes = std::fs::read(&state_path).map_err(|source| Error::Io {
            path: state_path.clone(),
            source,
        })?;
        let state: State = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: state_path.clone(),
            message: e.to_string(),
        })?;
        if state.config != *cfg {
            return Err(Error::Invalid(format!(
                "the checkpoint in {} was trained with {:?}; resuming needs the same settings, got {:?}",
                out.display(),
                state.config,
                cfg
            )));
        }
        let model = checkpointed_parameters::<B, N>(out, &state, net, device)?;
        optim = optim.load_record(read_record::<B, _>(
            &out.join(&state.optimizer_file),
            device,
        )?);
        (model, state.log)
    } else if let Some(init) = &cfg.init {
        (
            warm_start::<B, N>(init, cfg, net, device)?,
            TrainLog::default(),
        )
    } else {
        // parameter initialisation draws from the backend's global RNG: seed and draw under
        // one lock, so trainings started concurrently in one process stay reproducible
        // (burn initialises parameters lazily: materialise them all inside the lock)
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        B::seed(device, cfg.seed);
        let model = N::init(net, device)?;
        model.visit(&mut Materialise);
        (model, TrainLog::default())
    };
    // a fixed validation set
    let mut vrng = StdRng::seed_from_u64(cfg.seed ^ 0x5EED);
    let valid_batch = valid_set.batch(1024, w, schedule.as_ref(), &mut vrng);
    let end = stop_after.map_or(cfg.steps, |n| (log.step + n).min(cfg.steps));
    let bar = if progress {
        let bar = ProgressBar::new(cfg.steps as u64);
        bar.set_style(
            ProgressStyle::with_template("train [{bar:30}] {pos}/{len} steps, {msg}, ETA {eta}")
                .expect("valid template"),
        );
        bar.set_position(log.step as u64);
        bar
    } else {
        ProgressBar::hidden()
    };
    let start = Instant::now();
    let seconds_before = log.seconds;
    while log.step < end {
        let s = log.step;
        let batch = train_set.batch(cfg.batch, w, schedule.as_ref(), &mut step_rng(cfg.seed, s));
        let l = denoising_loss(&model, net, &batch, row, schedule.as_ref(), device);
        let value = scalar(l.clone());
        if !value.is_finite() {
            return Err(Error::Numerical(format!(
                "training loss became {value} at step {s}"
            )));
        }
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let lr = cfg.lr * (1.0 - s as f64 / cfg.steps as f64);
        model = optim.step(lr, model, grads);
        log.loss.push(value);
        log.step += 1;
        bar.set_message(format!("loss {value:.4}"));
        bar.inc(1);
        let at = log.step;
        if at % cfg.validate_every == 0 || at == cfg.steps {
            let v = scalar(denoising_loss(
                &model.valid(),
                net,
                &valid_batch,
                row,
                schedule.as_ref(),
                device,
            ));
            log.valid.push((at, v));
        }
        if at % cfg.checkpoint_every == 0 || at == end {
            log.seconds = seconds_before + start.elapsed().as_secs_f64();
            save_checkpoint(out, cfg, units.as_ref(), net, &model, &optim, &log)?;
        }
    }
    bar.finish_and_clear();
    Ok(log)
}

/// The network of the training folder `init`, as the starting point of the run `cfg` (its
/// `init`): same system and network, else an error naming both.
fn warm_start<B: AutodiffBackend, N>(
    init: &Path,
    cfg: &TrainConfig,
    net: &N::Config,
    device: &B::Device,
) -> Result<N>
where
    N: ScoreNetwork<B> + AutodiffModule<B>,
{
    let state = read_state(init)?;
    if state.config.system != cfg.system || state.config.network != cfg.network {
        return Err(Error::Invalid(format!(
            "init = {} holds a {} {:?}, but this run trains a {} {:?}",
            init.display(),
            state.config.system,
            state.config.network,
            cfg.system,
            cfg.network
        )));
    }
    checkpointed_parameters::<B, N>(init, &state, net, device)
}

/// The network checkpointed in the training folder `dir` (described by its `state`): the
/// safetensors file is validated against `net`, then the parameter record (which keeps the
/// parameter ids the optimizer state is keyed by) is loaded into a fresh network.
fn checkpointed_parameters<B: AutodiffBackend, N>(
    dir: &Path,
    state: &State,
    net: &N::Config,
    device: &B::Device,
) -> Result<N>
where
    N: ScoreNetwork<B> + AutodiffModule<B>,
{
    load_model::<B, N>(&dir.join(&state.model_file), net, device)?;
    Ok(N::init(net, device)?
        .load_record(read_record::<B, _>(&dir.join(&state.record_file), device)?))
}

/// Reads a burn record written by [`save_checkpoint`] (MessagePack, full precision).
fn read_record<B: burn::tensor::backend::Backend, R: burn::record::Record<B>>(
    path: &Path,
    device: &B::Device,
) -> Result<R> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
        .load(bytes, device)
        .map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn save_checkpoint<
    B: AutodiffBackend,
    N: ScoreNetwork<B> + AutodiffModule<B>,
    O: Optimizer<N, B>,
>(
    out: &Path,
    cfg: &TrainConfig,
    units: Option<&Standardisation>,
    net: &N::Config,
    model: &N,
    optim: &O,
    log: &TrainLog,
) -> Result<()> {
    let model_file = format!("model-{:08}.safetensors", log.step);
    let optimizer_file = format!("optimizer-{:08}.mpk", log.step);
    let record_file = format!("params-{:08}.mpk", log.step);
    write_atomic(&out.join(&model_file), &model_bytes(model, net)?)?;
    let bytes = NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
        .record(model.clone().into_record(), ())
        .map_err(|e| Error::Numerical(format!("saving the parameters: {e}")))?;
    write_atomic(&out.join(&record_file), &bytes)?;
    let bytes = NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
        .record(optim.to_record(), ())
        .map_err(|e| Error::Numerical(format!("saving the optimizer: {e}")))?;
    write_atomic(&out.join(&optimizer_file), &bytes)?;
    let state = State {
        config: cfg.clone(),
        log: log.clone(),
        model_file: model_file.clone(),
        record_file: record_file.clone(),
        optimizer_file: optimizer_file.clone(),
        units: units.cloned(),
    };
    write_atomic(
        &out.join("state.json"),
        &serde_json::to_vec(&state).expect("state serialises"),
    )?;
    // the state now points at the new files: older checkpoints can go
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = (name.starts_with("model-") && name != model_file)
            || (name.starts_with("params-") && name != record_file)
            || (name.starts_with("optimizer-") && name != optimizer_file);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The architecture checkpointed in a training folder (which kind of network it holds).
pub fn trained_network(out: &Path) -> Result<NetworkConfig> {
    Ok(read_state(out)?.config.network)
}

/// The units a training folder's ResMLP learns in ([`training_units`]); `None` for a U-Net.
/// Lorenz-63 checkpoints written before the units were stored read as the paper's units.
pub fn trained_units(out: &Path) -> Result<Option<Standardisation>> {
    let state = read_state(out)?;
    Ok(match (state.units, &state.config.network) {
        (Some(u), _) => Some(u),
        (None, NetworkConfig::Mlp(_)) if state.config.system == "lorenz63" => {
            Some(Standardisation::lorenz63())
        }
        (None, NetworkConfig::Mlp(_)) => {
            return Err(Error::Corrupt {
                path: out.join("state.json"),
                message: format!(
                    "a ResMLP checkpoint of {} without the units it learned in",
                    state.config.system
                ),
            })
        }
        (None, NetworkConfig::UNet(_)) => None,
    })
}

/// The diffusion schedule a training folder's network was trained with.
pub fn trained_schedule(out: &Path) -> Result<Arc<dyn NoiseSchedule>> {
    read_state(out)?.config.schedule.build()
}

/// The configuration a training folder was trained with.
pub fn trained_config(out: &Path) -> Result<TrainConfig> {
    Ok(read_state(out)?.config)
}

/// The `state.json` of a training folder.
fn read_state(out: &Path) -> Result<State> {
    crate::data::read_json(&out.join("state.json"))
}

/// The checkpointed model of a training folder, with its architecture; an error if the folder
/// holds another kind of network than `N`.
pub fn load_trained<B: burn::tensor::backend::Backend, N: ScoreNetwork<B>>(
    out: &Path,
    device: &B::Device,
) -> Result<(N, N::Config)> {
    let state = read_state(out)?;
    let network = state.config.network;
    let cfg: N::Config = serde_json::to_value(&network)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{} holds a {network:?}, not the kind of network asked for",
                out.display()
            ))
        })?;
    Ok((load_model(&out.join(state.model_file), &cfg, device)?, cfg))
}

/// Where `sda train` writes by default.
pub fn default_out(cfg: &TrainConfig) -> PathBuf {
    PathBuf::from(format!("runs/train-{}-k{}", cfg.system, cfg.network.k()))
}
