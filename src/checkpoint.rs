//! A training folder's checkpoint, read once: the training configuration (network, data,
//! schedule by name), the training log, the units the network learned in, and the files of the
//! weights — safetensors for inference and interchange, burn's MessagePack records of the
//! parameters and of the optimizer for exact resumption. Written by
//! [`crate::score::train::train`] (Algorithm 1); read by every command that uses a trained
//! network through [`Checkpoint::read`], which also builds the composed prior
//! ([`Checkpoint::prior`], Algorithm 2 over the trained local score).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::backend::Backend;

use crate::blanket::{MarkovBlanket, TemporalWindow};
use crate::data::Standardisation;
use crate::schedule::NoiseSchedule;
use crate::score::mlp::{MlpScore, ResMlp};
use crate::score::network::{NetworkConfig, ScoreNetwork};
use crate::score::ring_conv::{RingConv, RingConvScore};
use crate::score::unet::{UNet, UNetScore};
use crate::score::{Composed, LocalScore};
use crate::{Error, Result};

/// A training run (TOML; unknown keys are rejected).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The system whose data is used, as its dataset's manifest names it (`lorenz63`: states
    /// of 3 in the paper's units; `kolmogorov`: velocity fields `[2, n, n]` as stored; any
    /// other: states of D standardised per coordinate, see [`crate::score::train::training_units`]).
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
    /// How each training window's diffusion time is drawn: `t = u^p`, `u ~ U(0, 1)`. The
    /// default p = 1 is Algorithm 1's `t ~ U(0, 1)`; p > 1 spends more of the training at low
    /// noise, which weights the loss of time t by the density `t^{1/p − 1} / p` — a positive
    /// weighting λ(t) of denoising score matching, whose minimiser is the same score (Song et
    /// al. 2021, eq. 7; Karras et al. 2022 tune the noise levels' density the same way). The
    /// validation loss stays on `t ~ U(0, 1)`, so it compares across values of p.
    #[serde(default = "default_time_power", skip_serializing_if = "is_one")]
    pub time_power: f64,
    /// Threads of one training step (default 1): the batch is split into this many equal
    /// shards, whose losses and gradients are computed side by side and averaged — the
    /// gradient of the whole batch's mean loss, to rounding. The flex CPU backend runs one
    /// step's small tensor operations on about one core, so 2 on 2 cores steps faster. A run is
    /// reproducible for a fixed value; `batch` must be a multiple of it.
    #[serde(default = "default_threads", skip_serializing_if = "is_one_thread")]
    pub threads: usize,
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
        let params = toml::Value::Table(self.params.clone());
        crate::registry::build::<crate::registry::SchedulePlugin>(&self.name, &params)
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
fn default_time_power() -> f64 {
    1.0
}
fn is_one(p: &f64) -> bool {
    *p == 1.0
}
fn default_threads() -> usize {
    1
}
fn is_one_thread(n: &usize) -> bool {
    *n == 1
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

impl TrainLog {
    /// The log as CSV (`loss.csv` beside the checkpoint): `step,train_loss,valid_loss`, one
    /// line per step from 1, the validation loss empty where it was not computed.
    pub fn csv(&self) -> String {
        let mut valid = self.valid.iter().peekable();
        let mut out = String::from("step,train_loss,valid_loss\n");
        for (i, loss) in self.loss.iter().enumerate() {
            let step = i + 1;
            let v = match valid.peek() {
                Some(&&(at, v)) if at == step => {
                    valid.next();
                    v.to_string()
                }
                _ => String::new(),
            };
            out.push_str(&format!("{step},{loss},{v}\n"));
        }
        out
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct State {
    pub(crate) config: TrainConfig,
    pub(crate) log: TrainLog,
    pub(crate) model_file: String,
    pub(crate) record_file: String,
    pub(crate) optimizer_file: String,
    /// The units of a ResMLP's states (absent for a U-Net, and in Lorenz-63 checkpoints
    /// written before units were stored, whose units are [`Standardisation::lorenz63`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) units: Option<Standardisation>,
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
    let bytes = store
        .get_bytes()
        .map_err(|e| Error::Numerical(format!("saving the model: {e}")))?;
    Ok(sorted_header(bytes))
}

/// The safetensors bytes with the keys of their JSON header in sorted order (the metadata map
/// is written in hash order otherwise), so the same model gives the same bytes on every run.
/// The header keeps its length (padded with spaces as the format allows); the tensor data is
/// untouched.
fn sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return bytes;
    };
    // serde_json's map is ordered by key: a parse and a write sort every level
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    let sorted = serde_json::to_vec(&value).expect("a JSON value serialises");
    if sorted.len() <= len {
        bytes[8..8 + len].fill(b' ');
        bytes[8..8 + sorted.len()].copy_from_slice(&sorted);
    }
    bytes
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

/// Reads a burn record written by training (MessagePack, full precision).
pub(crate) fn read_record<B: burn::tensor::backend::Backend, R: burn::record::Record<B>>(
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

/// A training folder's `state.json`, read once: what the folder's network is, how it was
/// trained, the units it learned in and where its weights are.
pub struct Checkpoint {
    dir: PathBuf,
    state: State,
}

impl Checkpoint {
    /// Reads the checkpoint of the training folder `dir`; a missing or corrupt `state.json` is
    /// an error naming it.
    pub fn read(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            state: crate::data::read_json(&dir.join("state.json"))?,
        })
    }

    /// The training folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What identifies the checkpointed weights: the model file's name and a 64-bit FNV-1a
    /// hash of its bytes, e.g. `model-00004000.safetensors:3b1f…`. Evaluations record it, so
    /// that a rerun into the same folder with another network is refused.
    pub fn fingerprint(&self) -> Result<String> {
        let path = self.dir.join(&self.state.model_file);
        let bytes = std::fs::read(&path).map_err(|source| Error::Io { path, source })?;
        let hash = crate::fnv1a(&bytes);
        Ok(format!("{}:{hash:016x}", self.state.model_file))
    }

    /// The configuration the network was trained with.
    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    /// The training log at the checkpoint.
    pub fn log(&self) -> &TrainLog {
        &self.state.log
    }

    /// The architecture (which kind of network the folder holds).
    pub fn network(&self) -> &NetworkConfig {
        &self.state.config.network
    }

    /// The units the network learns in ([`crate::score::train::training_units`]); `None` for
    /// a U-Net, which learns fields as stored. Lorenz-63 checkpoints written before the units
    /// were stored read as the paper's units.
    pub fn units(&self) -> Result<Option<Standardisation>> {
        let state = &self.state;
        Ok(match (&state.units, &state.config.network) {
            (Some(u), _) => Some(u.clone()),
            (None, NetworkConfig::Mlp(_)) if state.config.system == "lorenz63" => {
                Some(Standardisation::lorenz63())
            }
            (None, NetworkConfig::Mlp(_) | NetworkConfig::Ring(_)) => {
                return Err(Error::Corrupt {
                    path: self.dir.join("state.json"),
                    message: format!(
                        "a state-vector checkpoint of {} without the units it learned in",
                        state.config.system
                    ),
                })
            }
            (None, NetworkConfig::UNet(_)) => None,
        })
    }

    /// The diffusion schedule the network was trained with, built by its registered name.
    pub fn schedule(&self) -> Result<Arc<dyn NoiseSchedule>> {
        self.state.config.schedule.build()
    }

    /// The checkpointed network with its architecture; an error if the folder holds another
    /// kind of network than `N`.
    pub fn model<B: Backend, N: ScoreNetwork<B>>(
        &self,
        device: &B::Device,
    ) -> Result<(N, N::Config)> {
        let network = &self.state.config.network;
        let cfg: N::Config = serde_json::to_value(network)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{} holds a {network:?}, not the kind of network asked for",
                    self.dir.display()
                ))
            })?;
        let model = load_model(&self.dir.join(&self.state.model_file), &cfg, device)?;
        Ok((model, cfg))
    }

    /// The state dimension of the trajectories this network is used on with the dataset in
    /// `data`: the trained one, except for a ring network, which takes the dataset's ring
    /// (from its manifest; an error naming the folder without one).
    pub fn state_dim_for(&self, data: &Path) -> Result<usize> {
        match self.network() {
            NetworkConfig::Ring(_) => crate::data::Manifest::read(data)?
                .map(|m| m.state_shape.iter().product())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "a ring network runs on the ring of its dataset, and {} has no \
                         manifest.json to say its size",
                        data.display()
                    ))
                }),
            network => Ok(network.state_dim()),
        }
    }

    /// The trained prior over the temporal window of the network's k.
    pub fn prior<B: Backend>(&self, device: &B::Device) -> Result<TrainedPrior<B>> {
        self.prior_with_blanket(TemporalWindow::new(self.network().k())?, device)
    }

    /// The trained prior composed over `blanket`, whose windows must be the network's 2k+1
    /// states (an error otherwise): a ResMLP on standardised states with its units, or a
    /// U-Net on fields as stored. A ring network needs the ring's size: [`Self::prior_on`].
    pub fn prior_with_blanket<B: Backend, M: MarkovBlanket<B>>(
        &self,
        blanket: M,
        device: &B::Device,
    ) -> Result<TrainedPrior<B, M>> {
        self.prior_on(blanket, self.network().state_dim(), device)
    }

    /// [`Self::prior_with_blanket`] for trajectories of states of `dim` values: the trained
    /// dimension for a ResMLP or a U-Net (an error otherwise); any ring of `dim` sites the
    /// blanket can cut for a ring convolution, whose local score then sees the blanket's
    /// windows (a patch of P + 2r sites of a space–time window) and whose pooled units are
    /// carried to the `dim` sites.
    pub fn prior_on<B: Backend, M: MarkovBlanket<B>>(
        &self,
        blanket: M,
        dim: usize,
        device: &B::Device,
    ) -> Result<TrainedPrior<B, M>> {
        let schedule = self.schedule()?;
        let trained = self.network().state_dim();
        if dim != trained && !matches!(self.network(), NetworkConfig::Ring(_)) {
            return Err(Error::Shape(format!(
                "{} was trained on states of {trained} values, not {dim}",
                self.dir.display()
            )));
        }
        let (local, units, kind): (Box<dyn LocalScore<B>>, _, _) = match self.network() {
            NetworkConfig::Ring(_) => {
                let (net, cfg) = self.model::<B, RingConv<B>>(device)?;
                let units = self.units()?.ok_or_else(|| {
                    Error::Invalid(format!("{} holds no ring network", self.dir.display()))
                })?;
                // exact on a space–time window whose r is at least cfg.radius() (the
                // network's receptive half-width); a narrower r approximates
                let sites = blanket.window_dim(dim)?;
                (
                    Box::new(RingConvScore::new(net, cfg, sites, schedule)?),
                    units.tiled(dim)?,
                    PriorKind::Vector,
                )
            }
            NetworkConfig::Mlp(_) => {
                let (net, cfg) = self.model::<B, ResMlp<B>>(device)?;
                let units = self.units()?.ok_or_else(|| {
                    Error::Invalid(format!(
                        "{} holds no state-vector network",
                        self.dir.display()
                    ))
                })?;
                if units.dim() != cfg.state_dim {
                    return Err(Error::Corrupt {
                        path: self.dir.join("state.json"),
                        message: format!(
                            "units of {} coordinates for a network of state dimension {}",
                            units.dim(),
                            cfg.state_dim
                        ),
                    });
                }
                (
                    Box::new(MlpScore::new(net, cfg, schedule)),
                    units,
                    PriorKind::Vector,
                )
            }
            NetworkConfig::UNet(_) => {
                let (net, cfg) = self.model::<B, UNet<B>>(device)?;
                let units = Standardisation::identity(cfg.state_dim());
                (
                    Box::new(UNetScore::new(net, cfg, schedule)),
                    units,
                    PriorKind::Field,
                )
            }
        };
        Ok(TrainedPrior {
            composed: Composed::new::<B>(local, blanket)?,
            units,
            kind,
        })
    }
}

/// What a trained prior's states are, which sets how many trajectories are evaluated at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorKind {
    /// Short state vectors (a ResMLP): about 1 024 windows per evaluation.
    Vector,
    /// Fields (a U-Net): one trajectory per evaluation.
    Field,
}

/// A trained prior: the composed trajectory score (Algorithm 2 over the checkpoint's local
/// score and the blanket `M`) and the units it learned in — the per-coordinate
/// standardisation of a ResMLP's states, the identity for a U-Net's fields. Vector (Lorenz-63,
/// any registered state-vector system) and field (Kolmogorov) priors are this one type.
pub struct TrainedPrior<B: Backend, M = TemporalWindow> {
    /// The composed trajectory score, in the network's units.
    pub composed: Composed<Box<dyn LocalScore<B>>, M>,
    /// Physical ↔ network units.
    pub units: Standardisation,
    /// Vector or field states.
    pub kind: PriorKind,
}

impl<B: Backend, M: MarkovBlanket<B>> TrainedPrior<B, M> {
    /// Flattened state dimension D.
    pub fn dim(&self) -> usize {
        self.units.dim()
    }

    /// Blanket half-width k of the network's windows.
    pub fn k(&self) -> usize {
        self.composed.local().window() / 2
    }

    /// Trajectories of `len` states evaluated together when sampling (they are independent,
    /// so this sets memory and parallelism, not the result): about 1 024 windows of a vector
    /// prior — counting the patches of a blanket that cuts states, such as a space–time
    /// window on a large ring, so that memory stays bounded as the ring grows — and one
    /// trajectory of a field prior.
    pub fn samples_per_piece(&self, len: usize) -> usize {
        let dim = self.dim();
        let cuts_states = self.composed.blanket().window_dim(dim).ok() != Some(dim);
        match self.kind {
            PriorKind::Vector if cuts_states => {
                let rows = self
                    .composed
                    .blanket()
                    .num_windows(crate::TrajectoryShape::new(len, dim));
                (1024 / rows.max(1)).max(1)
            }
            PriorKind::Vector => (1024 / len.max(1)).max(1),
            PriorKind::Field => 1,
        }
    }
}
