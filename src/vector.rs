//! State-vector systems learned by a ResMLP — Lorenz-63, the linear-Gaussian chain, or any
//! registered [`Dynamics`] whose flattened state is a short vector: the trained prior
//! (Algorithm 2 over a [`MlpScore`]) together with the units it learned in, observations of a
//! data trajectory, SDA posteriors (Algorithms 3–4) back in physical units, and their
//! summaries. `sda assimilate` and the Lorenz experiment ([`crate::lorenz`]) are thin layers
//! over it.
//!
//! Units: the network, the observation model and the guidance work on **standardised**
//! states `x̃ = (x − mean) / scale` ([`Standardisation`], stored with the checkpoint); data
//! files, samples and metrics are physical. An observation `y` is in the observation's
//! (standardised) units.

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::backend::{from_host, to_host, NoiseSource};
use crate::blanket::{MarkovBlanket, TemporalWindow};
use crate::data::{load_states, Standardisation};
use crate::filter::ParticleFilter;
use crate::guidance::{sample_posterior, Guidance};
use crate::observe::{ops::Pick, ObservationModel};
use crate::sampler::{SampleOptions, SampleReport, Sampler};
use crate::score::mlp::{MlpScore, ResMlp};
use crate::score::train::{load_trained, trained_units};
use crate::score::Composed;
use crate::systems::Dynamics;
use crate::{Error, Result};

/// A trained state-vector prior: the composed score `Composed<MlpScore, M>` (Algorithm 2 with
/// the blanket `M`, by default the temporal window of the checkpoint's k) on standardised
/// states, and the units it learned in.
pub struct VectorPrior<B: Backend, M = TemporalWindow> {
    /// The composed trajectory score on standardised states.
    pub composed: Composed<MlpScore<B>, M>,
    /// Physical ↔ standardised.
    pub units: Standardisation,
}

impl<B: Backend> VectorPrior<B> {
    /// Loads the ResMLP checkpoint of a training folder as a composed prior over the temporal
    /// window of its k, with the schedule it was trained with and its units.
    pub fn load(run: &Path, device: &B::Device) -> Result<Self> {
        let k = crate::score::train::trained_network(run)?.k();
        Self::load_with_blanket(run, TemporalWindow::new(k)?, device)
    }
}

impl<B: Backend, M: MarkovBlanket<B>> VectorPrior<B, M> {
    /// Loads the ResMLP checkpoint of a training folder composed over `blanket`, whose windows
    /// must be the network's 2k+1 states (an error otherwise).
    pub fn load_with_blanket(run: &Path, blanket: M, device: &B::Device) -> Result<Self> {
        let (net, cfg) = load_trained::<B, ResMlp<B>>(run, device)?;
        let units = trained_units(run)?.ok_or_else(|| {
            Error::Invalid(format!("{} holds no state-vector network", run.display()))
        })?;
        if units.dim() != cfg.state_dim {
            return Err(Error::Corrupt {
                path: run.join("state.json"),
                message: format!(
                    "units of {} coordinates for a network of state dimension {}",
                    units.dim(),
                    cfg.state_dim
                ),
            });
        }
        let schedule = crate::score::train::trained_schedule(run)?;
        Ok(Self {
            composed: Composed::new::<B>(MlpScore::new(net, cfg, schedule), blanket)?,
            units,
        })
    }

    /// Flattened state dimension D.
    pub fn dim(&self) -> usize {
        self.units.dim()
    }

    /// Blanket half-width k.
    pub fn k(&self) -> usize {
        self.composed.local().config().k
    }
}

/// The first `len` states of trajectory `index` of a data split whose states have `dim`
/// values, in physical units (`[len·dim]`).
pub fn trajectory(
    data: &Path,
    split: &str,
    index: usize,
    len: usize,
    dim: usize,
) -> Result<Vec<f64>> {
    let a = load_states(data, split, dim)?;
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
    let off = index * t * dim;
    Ok(a.data[off..off + len * dim]
        .iter()
        .map(|&v| v as f64)
        .collect())
}

/// A noisy observation `y = A(standardise(truth)) + η` of a physical trajectory, seeded.
pub fn observe<B: Backend>(
    observation: &dyn ObservationModel<B>,
    units: &Standardisation,
    truth: &[f64],
    seed: u64,
    device: &B::Device,
) -> Result<Vec<f64>> {
    let shape = observation.trajectory_shape();
    if truth.len() != shape.len * shape.dim || shape.dim != units.dim() {
        return Err(Error::Shape(format!(
            "a truth of {} values in states of {} does not fit the observation's {}×{} \
             trajectories",
            truth.len(),
            units.dim(),
            shape.len,
            shape.dim
        )));
    }
    let x = from_host::<B, 3>(&units.standardise(truth), [1, shape.len, shape.dim], device);
    Ok(to_host(observation.sample(x, &mut NoiseSource::new(seed))))
}

/// SDA posterior trajectories (physical units, `[N·L·D]`): the composed prior guided by
/// `guidance` (Algorithm 3) and integrated by `sampler` (Algorithm 4).
#[allow(clippy::too_many_arguments)]
pub fn posterior<B: AutodiffBackend, M: MarkovBlanket<B>>(
    prior: &VectorPrior<B, M>,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    guidance: &dyn Guidance<B>,
    sampler: &dyn Sampler<B>,
    opts: &SampleOptions,
    device: &B::Device,
) -> Result<(Vec<f64>, SampleReport)> {
    if observation.trajectory_shape().dim != prior.dim() {
        return Err(Error::Shape(format!(
            "the observation is built for states of {}, the prior's have {}",
            observation.trajectory_shape().dim,
            prior.dim()
        )));
    }
    // about 1024 windows per piece
    let per_piece = (1024 / observation.trajectory_shape().len).max(1);
    let (x, report) = sample_posterior::<B, _>(
        &prior.composed,
        observation,
        y,
        guidance,
        sampler,
        opts,
        per_piece,
        device,
    )?;
    Ok((prior.units.physical(&to_host(x)), report))
}

/// `E[log p(y | x)]` over physical trajectories (`[N·L·D]`), with the normalising constant.
pub fn expected_log_likelihood<B: Backend>(
    observation: &dyn ObservationModel<B>,
    units: &Standardisation,
    y: &[f64],
    x: &[f64],
    device: &B::Device,
) -> f64 {
    let shape = observation.trajectory_shape();
    let n = x.len() / (shape.len * shape.dim);
    let v = to_host(observation.log_likelihood(
        y,
        from_host::<B, 3>(&units.standardise(x), [n, shape.len, shape.dim], device),
    ));
    v.iter().sum::<f64>() / v.len() as f64
}

/// The coordinates a linear observation reads directly (rows of A with a single unit entry),
/// as `(state, component, y in physical units, σ_y in physical units)` — what a figure can
/// draw over the trajectories. Non-linear or mixing observations give an empty list.
pub fn observed_coordinates<B: Backend>(
    observation: &dyn ObservationModel<B>,
    units: &Standardisation,
    y: &[f64],
    device: &B::Device,
) -> Vec<(usize, usize, f64, f64)> {
    let Ok(h) = crate::observe::linear_matrix(observation, device) else {
        return Vec::new();
    };
    let (d, std) = (units.dim(), observation.noise_std());
    (0..h.nrows())
        .filter_map(|i| {
            let nz: Vec<usize> = (0..h.ncols()).filter(|&j| h[(i, j)].abs() > 1e-9).collect();
            match nz[..] {
                [j] if (h[(i, j)] - 1.0).abs() < 1e-6 => {
                    let c = j % d;
                    Some((
                        j / d,
                        c,
                        y[i] * units.scale[c] + units.mean[c],
                        std[i] * units.scale[c],
                    ))
                }
                _ => None,
            }
        })
        .collect()
}

/// Ground truth: bootstrap-particle-filter posterior trajectories of `system` (physical units)
/// for a [`Pick`] observation of standardised states.
pub fn particle_posterior(
    system: &dyn Dynamics,
    units: &Standardisation,
    pick: &Pick,
    y: &[f64],
    filter: &ParticleFilter,
) -> Result<Vec<f64>> {
    if system.state_dim() != units.dim() {
        return Err(Error::Shape(format!(
            "the system's states have {} values, the units {}",
            system.state_dim(),
            units.dim()
        )));
    }
    let len = pick.shape().len;
    let lik = |i: usize, x: &[f64]| pick.state_log_likelihood(y, i, &units.standardise(x));
    filter.run(system, len, &lik)
}
