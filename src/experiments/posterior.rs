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
use nalgebra::DMatrix;

use crate::backend::{from_host, to_host, NoiseSource};
use crate::blanket::MarkovBlanket;
use crate::checkpoint::TrainedPrior;
use crate::data::{load_states, Standardisation};
use crate::dynamics::Dynamics;
use crate::filter::{ParticleFilter, StateLikelihood};
use crate::guidance::Guidance;
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

/// SDA with its choices: a trained prior (composed by its blanket, Algorithm 2), the guidance
/// of the likelihood score (Algorithm 3) and the sampler that integrates the reverse diffusion
/// (Algorithm 4) with its options — what draws a posterior of any observation of the prior's
/// states ([`Sda::posterior`]; as a filter, [`crate::experiments::filtering`]).
pub struct Sda<'a, B: AutodiffBackend, M> {
    /// The trained prior.
    pub prior: &'a TrainedPrior<B, M>,
    /// The likelihood score (Algorithm 3 with γ in the paper).
    pub guidance: &'a dyn Guidance<B>,
    /// The sampler (Algorithm 4 in the paper).
    pub sampler: &'a dyn Sampler<B>,
    /// Samples, steps, time grid, seed.
    pub opts: SampleOptions,
}

impl<B: AutodiffBackend, M: MarkovBlanket<B>> Sda<'_, B, M> {
    /// Posterior trajectories (physical units, `[N·L·D]`) given the observation `y` of
    /// `observation`: the composed prior guided by the guidance and integrated by the sampler,
    /// evaluated [`TrainedPrior::samples_per_piece`] trajectories at a time.
    pub fn posterior(
        &self,
        observation: &dyn ObservationModel<B>,
        y: &[f64],
        device: &B::Device,
    ) -> Result<(Vec<f64>, SampleReport)> {
        let prior = self.prior;
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
            self.guidance,
            self.sampler,
            &self.opts,
            prior.samples_per_piece(shape.len),
            device,
        )?;
        Ok((prior.units.physical(&to_host(x)), report))
    }

    /// Unguided trajectories of the prior (physical units, `[N·L·D]`) of `shape`, by the
    /// sampler: the prior's climatology, e.g. of a window that sees no observation.
    pub fn prior_samples(
        &self,
        shape: crate::TrajectoryShape,
        device: &B::Device,
    ) -> Result<(Vec<f64>, SampleReport)> {
        let prior = self.prior;
        let per_piece = prior.samples_per_piece(shape.len);
        let unguided = crate::score::chunked::Chunked::new(&prior.composed, per_piece);
        let (x, report) =
            crate::sampler::sample::<B>(&unguided, self.sampler, shape, &self.opts, device)?;
        Ok((prior.units.physical(&to_host(x)), report))
    }
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
pub(crate) fn single_entry(h: &DMatrix<f64>, r: usize, tol: f64) -> Option<(usize, f64)> {
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

/// The Hovmöller figure of an assimilation (site × time): the truth, the observed values (grey
/// where none), the posterior mean, its standard deviation and its error `|mean − truth|`, and
/// a classical method's mean and error when one was run (`(name, samples)`).
#[allow(clippy::too_many_arguments)]
pub fn hovmoller(
    path: &std::path::Path,
    truth: &[f64],
    x: &[f64],
    observed: &[(usize, usize, f64, f64)],
    (len, d): (usize, usize),
    title: &str,
    dt: Option<f64>,
    classical: Option<(&str, &[f64])>,
) -> Result<()> {
    use crate::plot::{Colouring, Panel};
    let values = len * d;
    let (mean, var) = crate::metrics::sample_moments(x, values);
    let mut obs = vec![f64::NAN; values];
    for &(state, c, value, _) in observed {
        obs[state * d + c] = value;
    }
    let panel = |label: &str, values: Vec<f64>, colouring| Panel {
        label: label.to_string(),
        values,
        colouring,
    };
    let error = |mean: &[f64]| mean.iter().zip(truth).map(|(m, t)| (m - t).abs()).collect();
    let mut panels = vec![
        panel("truth", truth.to_vec(), Colouring::Signed),
        panel("observations", obs, Colouring::Signed),
        panel("posterior mean", mean.clone(), Colouring::Signed),
        panel(
            "posterior standard deviation",
            var.iter().map(|v| v.sqrt()).collect(),
            Colouring::Magnitude,
        ),
        panel("|mean − truth|", error(&mean), Colouring::Magnitude),
    ];
    if let Some((name, xs)) = classical {
        let (mean, _) = crate::metrics::sample_moments(xs, values);
        panels.push(panel(
            &format!("{name}: mean"),
            mean.clone(),
            Colouring::Signed,
        ));
        panels.push(panel(
            &format!("{name}: |mean − truth|"),
            error(&mean),
            Colouring::Magnitude,
        ));
    }
    crate::plot::hovmoller_png(path, &panels, len, d, dt, title)
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
