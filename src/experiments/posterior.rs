//! Posteriors of a trained prior ([`TrainedPrior`], read from a checkpoint by
//! [`Checkpoint`](crate::checkpoint::Checkpoint)) in physical units, for state vectors
//! (Lorenz-63, the linear-Gaussian chain, any registered system learned by a ResMLP) and fields
//! (Kolmogorov, a U-Net) alike: a data trajectory, its observation, SDA posteriors
//! (Algorithms 3–4) and their summaries. `sda assimilate`, `sda evaluate` and the Lorenz and
//! Kolmogorov experiments are thin layers over it.
//!
//! Units: the network, the observation model and the guidance work in the prior's units
//! `x̃ = (x − mean) / scale` ([`Standardisation`], stored with a ResMLP checkpoint; the identity
//! for a U-Net's fields); data files, samples and metrics are physical. An observation `y` is in
//! the observation's units.

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;

use crate::backend::{from_host, to_host, NoiseSource};
use crate::blanket::MarkovBlanket;
use crate::checkpoint::TrainedPrior;
use crate::data::{load_states, Standardisation};
use crate::dynamics::Dynamics;
use crate::filter::{ParticleFilter, StateLikelihood};
use crate::guidance::Guidance;
use crate::methods::window::{Window, WindowSmoother};
use crate::methods::GaussianObservation;
use crate::observe::{checked_state_parts, ObservationModel};
use crate::sampler::{sample_posterior, SampleOptions, SampleReport, Sampler};
use crate::{Error, Result};

/// The first `len` states of trajectory `index` of a data split whose states have `dim`
/// values (a state shape like `[2, n, n]` reads as `2n²` values), in physical units
/// (`[len·dim]`).
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

/// A noisy observation `y = A(standardise(truth)) + η` of a physical trajectory, seeded; or,
/// for an observation that prescribes an event (`fixed`, e.g. the Kolmogorov circle's 0.6),
/// that value everywhere.
pub fn observe<B: Backend>(
    observation: &dyn ObservationModel<B>,
    units: &Standardisation,
    truth: &[f64],
    fixed: Option<f64>,
    seed: u64,
    device: &B::Device,
) -> Result<Vec<f64>> {
    if let Some(v) = fixed {
        return Ok(vec![v; observation.output_dim()]);
    }
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
/// `guidance` (Algorithm 3) and integrated by `sampler` (Algorithm 4), evaluated
/// [`TrainedPrior::samples_per_piece`] trajectories at a time.
#[allow(clippy::too_many_arguments)]
pub fn posterior<B: AutodiffBackend, M: MarkovBlanket<B>>(
    prior: &TrainedPrior<B, M>,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    guidance: &dyn Guidance<B>,
    sampler: &dyn Sampler<B>,
    opts: &SampleOptions,
    device: &B::Device,
) -> Result<(Vec<f64>, SampleReport)> {
    let shape = observation.trajectory_shape();
    if shape.dim != prior.dim() {
        return Err(Error::Shape(format!(
            "the observation is built for states of {}, the prior's have {}",
            shape.dim,
            prior.dim()
        )));
    }
    let (x, report) = sample_posterior::<B, _>(
        &prior.composed,
        observation,
        y,
        guidance,
        sampler,
        opts,
        prior.samples_per_piece(shape.len),
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
    let (d, std) = (units.dim(), observation.noise_std());
    // the coordinate a row of A reads alone with weight 1, if any
    let unit_column = |h: &DMatrix<f64>, r: usize| -> Option<usize> {
        single_entry(h, r, 1e-9).and_then(|(j, v)| ((v - 1.0).abs() < 1e-6).then_some(j))
    };
    let entry = |i: usize, state: usize, c: usize| {
        (
            state,
            c,
            y[i] * units.scale[c] + units.mean[c],
            std[i] * units.scale[c],
        )
    };
    // an observation that factorises over states: one block per state (D columns), not the
    // p × L·D matrix (gigabytes for a long window of a large ring)
    if let Some(parts) = observation.state_parts() {
        let Ok(blocks) = crate::observe::linear_state_blocks(observation, &parts, device) else {
            return Vec::new();
        };
        return parts
            .iter()
            .zip(&blocks)
            .enumerate()
            .filter_map(|(state, (part, h))| Some((state, part, h.as_ref()?)))
            .flat_map(|(state, part, h)| {
                (0..h.nrows())
                    .filter_map(move |r| unit_column(h, r).map(|c| entry(part.start + r, state, c)))
            })
            .collect();
    }
    let Ok(h) = crate::observe::linear_matrix(observation, device) else {
        return Vec::new();
    };
    (0..h.nrows())
        .filter_map(|i| {
            let j = unit_column(&h, i)?;
            Some(entry(i, j / d, j % d))
        })
        .collect()
}

/// The column and value of the only entry of row `r` of `h` larger than `tol` in magnitude, if
/// it has exactly one: the coordinate an observation row reads alone.
fn single_entry(h: &DMatrix<f64>, r: usize, tol: f64) -> Option<(usize, f64)> {
    let row = h.row(r);
    let mut nonzero = row
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.abs() > tol);
    match (nonzero.next(), nonzero.next()) {
        (Some(entry), None) => Some(entry),
        _ => None,
    }
}

/// Ground truth: bootstrap-particle-filter posterior trajectories of `system` (physical units)
/// for any observation of standardised states that factorises over states
/// ([`ObservationModel::state_parts`]), weighed with its per-state likelihood
/// ([`ObservationModel::state_log_likelihood`]).
pub fn particle_posterior<B: Backend>(
    system: &dyn Dynamics,
    units: &Standardisation,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    filter: &ParticleFilter,
    device: &B::Device,
) -> Result<Vec<f64>> {
    if system.state_dim() != units.dim() || observation.trajectory_shape().dim != units.dim() {
        return Err(Error::Shape(format!(
            "the system's states have {} values, the units {}, the observation's {}",
            system.state_dim(),
            units.dim(),
            observation.trajectory_shape().dim
        )));
    }
    crate::observe::check_observation(observation, y)?;
    let likelihood = PerState {
        observation,
        parts: checked_state_parts(observation)?,
        units,
        y,
        device,
    };
    filter.run(system, observation.trajectory_shape().len, &likelihood)
}

/// An observation's per-state likelihood of physical particles, for the particle filter.
struct PerState<'a, B: Backend> {
    observation: &'a dyn ObservationModel<B>,
    parts: Vec<std::ops::Range<usize>>,
    units: &'a Standardisation,
    y: &'a [f64],
    device: &'a B::Device,
}

impl<B: Backend> StateLikelihood for PerState<'_, B> {
    fn log_likelihoods(&self, state: usize, xs: &[f64], _dim: usize) -> Result<Option<Vec<f64>>> {
        if self.parts.get(state).is_none_or(|p| p.is_empty()) {
            return Ok(None);
        }
        let xs = self.units.standardise(xs);
        self.observation
            .state_log_likelihood(self.y, state, &xs, self.device)
            .map(Some)
    }
}

/// Draws of the classical smoothers' background (the law of a window's first state) by default.
pub const BACKGROUND_DRAWS: usize = 4096;

/// The part of a linear, state-factorising observation that one state feeds, in physical
/// units: `y_i = A_i ((x − mean) / scale) + η_i` — a [`GaussianObservation`] for the classical
/// methods.
struct StatePart {
    /// `A_i diag(1 / scale)` (p_i × D).
    h: DMatrix<f64>,
    /// `−A_i (mean / scale)`.
    offset: DVector<f64>,
    sigma: Vec<f64>,
    label: String,
}

impl GaussianObservation for StatePart {
    fn len(&self) -> usize {
        self.sigma.len()
    }
    fn observe(&self, x: &[f64]) -> Vec<f64> {
        (&self.h * DVector::from_column_slice(x) + &self.offset)
            .as_slice()
            .to_vec()
    }
    fn sigma(&self) -> &[f64] {
        &self.sigma
    }
    fn jacobian(&self, _x: &[f64]) -> DMatrix<f64> {
        self.h.clone()
    }
    /// The site of each value when every row of `A_i` reads one value of the state (a pick of
    /// sites, as the localised methods need), else `None`.
    fn sites(&self) -> Option<Vec<usize>> {
        (0..self.h.nrows())
            .map(|r| single_entry(&self.h, r, 0.0).map(|(j, _)| j))
            .collect()
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
}

/// A classical smoother's posterior (`[samples·L·D]`, physical) of the window that
/// `observation` observes as `y`: the registered observation, linear and factorising over
/// states, split into one Gaussian observation per state in physical units; the background is
/// [`BACKGROUND_DRAWS`] (at least `samples`) draws of the system's initial prior advanced
/// `burn_in` transitions — the particle filter's prior of the first state. An error names a
/// non-linear or non-factorising observation.
#[allow(clippy::too_many_arguments)]
pub fn smoother_posterior<B: Backend>(
    system: &dyn Dynamics,
    units: &Standardisation,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    smoother: &dyn WindowSmoother,
    samples: usize,
    burn_in: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Vec<f64>> {
    let dim = units.dim();
    if system.state_dim() != dim || observation.trajectory_shape().dim != dim {
        return Err(Error::Shape(format!(
            "the system's states have {} values, the units {dim}, the observation's {}",
            system.state_dim(),
            observation.trajectory_shape().dim
        )));
    }
    crate::observe::check_observation(observation, y)?;
    let parts = checked_state_parts(observation)?;
    let blocks = crate::observe::linear_state_blocks(observation, &parts, device).map_err(|e| {
        Error::Invalid(format!(
            "the classical smoothers take a linear observation with Gaussian noise ({}): {e}",
            smoother.describe()
        ))
    })?;
    let scale = DVector::from_iterator(dim, units.scale.iter().map(|s| 1.0 / s));
    let centre =
        DVector::from_iterator(dim, units.mean.iter().zip(&units.scale).map(|(m, s)| m / s));
    let noise = observation.noise_std();
    let states: Vec<Option<StatePart>> = blocks
        .into_iter()
        .zip(&parts)
        .enumerate()
        .map(|(i, (a_i, part))| {
            a_i.map(|a_i| StatePart {
                offset: -(&a_i * &centre),
                h: {
                    let mut h = a_i;
                    for (mut c, s) in h.column_iter_mut().zip(scale.iter()) {
                        c *= *s;
                    }
                    h
                },
                sigma: noise[part.clone()].to_vec(),
                label: format!("{} (state {i})", observation.describe()),
            })
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let draws = BACKGROUND_DRAWS.max(samples);
    let mut background = DMatrix::zeros(dim, draws);
    for j in 0..draws {
        let mut x = system.sample_initial(&mut rng);
        for _ in 0..burn_in {
            x = system.step(&x, &mut rng);
        }
        background.set_column(j, &DVector::from_vec(x));
    }
    let window = Window {
        model: system,
        observations: states
            .iter()
            .zip(&parts)
            .map(|(s, part)| {
                s.as_ref()
                    .map(|s| (s as &dyn GaussianObservation, y[part.clone()].to_vec()))
            })
            .collect(),
        background: &background,
    };
    smoother.smooth(&window, samples, &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DefaultBackend;
    use crate::observe::ops::Pick;
    use crate::TrajectoryShape;

    /// A pick of sites 1 and 3 at states 0 and 2 of 3 × 4 trajectories: the observed
    /// coordinates in physical units, read from the per-state blocks.
    #[test]
    fn observed_coordinates_of_a_pick_are_its_sites_in_physical_units() {
        let device = crate::backend::default_device();
        let pick = Pick::new(TrajectoryShape::new(3, 4), vec![0, 2], vec![1, 3], 0.5).unwrap();
        let units = Standardisation {
            mean: vec![1.0; 4],
            scale: vec![2.0; 4],
        };
        let y = [0.0, 1.0, -1.0, 0.5];
        let got = observed_coordinates::<DefaultBackend>(&pick, &units, &y, &device);
        let expect = vec![
            (0, 1, 1.0, 1.0),
            (0, 3, 3.0, 1.0),
            (2, 1, -1.0, 1.0),
            (2, 3, 2.0, 1.0),
        ];
        assert_eq!(got, expect);
    }
}
