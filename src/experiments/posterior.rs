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
use crate::observe::{checked_state_parts, Link, ObservationModel};
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

/// The part of a state-factorising observation, linear or a linear one under a pointwise link
/// g ([`ObservationModel::link`]), that one state feeds, in physical units:
/// `y_i = g(A_i ((x − mean) / scale)) + η_i` — a [`GaussianObservation`] for the classical
/// methods.
struct StatePart {
    /// `A_i diag(1 / scale)` (p_i × D).
    h: DMatrix<f64>,
    /// `−A_i (mean / scale)`.
    offset: DVector<f64>,
    /// g (the identity when `None`).
    link: Option<Link>,
    sigma: Vec<f64>,
    label: String,
}

impl StatePart {
    /// `u = A_i ((x − mean) / scale)`, the argument of the link.
    fn linear(&self, x: &[f64]) -> DVector<f64> {
        &self.h * DVector::from_column_slice(x) + &self.offset
    }
}

impl GaussianObservation for StatePart {
    fn len(&self) -> usize {
        self.sigma.len()
    }
    fn observe(&self, x: &[f64]) -> Vec<f64> {
        let u = self.linear(x);
        match &self.link {
            Some(g) => u.iter().map(|&u| g.value(u)).collect(),
            None => u.as_slice().to_vec(),
        }
    }
    fn sigma(&self) -> &[f64] {
        &self.sigma
    }
    /// `diag(g′(u)) A_i diag(1 / scale)`.
    fn jacobian(&self, x: &[f64]) -> DMatrix<f64> {
        let mut h = self.h.clone();
        if let Some(g) = &self.link {
            for (mut row, u) in h.row_iter_mut().zip(self.linear(x).iter()) {
                row *= g.derivative(*u);
            }
        }
        h
    }
    /// `(A_i diag(1 / scale))ᵀ (g′(u) ⊙ v)`, without the dense Jacobian.
    fn vjp(&self, x: &[f64], v: &[f64]) -> Vec<f64> {
        let mut w = DVector::from_column_slice(v);
        if let Some(g) = &self.link {
            for (wj, u) in w.iter_mut().zip(self.linear(x).iter()) {
                *wj *= g.derivative(*u);
            }
        }
        self.h.tr_mul(&w).as_slice().to_vec()
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

/// The observation of each state of a state-factorising `observation` (its `parts`) in
/// physical units, for the classical methods: `A_i` from the per-state blocks of the linear
/// observation (of `A_lin` when the model is `g ∘ A_lin`, [`ObservationModel::link`], g then
/// applied on the host); `None` where a state is not observed. An error when the observation
/// (or `A_lin`) is not linear.
fn state_observations<B: Backend>(
    observation: &dyn ObservationModel<B>,
    parts: &[std::ops::Range<usize>],
    units: &Standardisation,
    device: &B::Device,
) -> Result<Vec<Option<StatePart>>> {
    let (link, linear): (Option<Link>, Box<dyn ObservationModel<B> + '_>) = match observation.link()
    {
        Some((g, linear)) => (Some(g), linear),
        None => (None, Box::new(observation)),
    };
    let blocks = crate::observe::linear_state_blocks(&*linear, parts, device)?;
    let dim = units.dim();
    let scale = DVector::from_iterator(dim, units.scale.iter().map(|s| 1.0 / s));
    let centre =
        DVector::from_iterator(dim, units.mean.iter().zip(&units.scale).map(|(m, s)| m / s));
    let noise = observation.noise_std();
    Ok(blocks
        .into_iter()
        .zip(parts)
        .enumerate()
        .map(|(i, (a_i, part))| {
            a_i.map(|a_i| StatePart {
                offset: -(&a_i * &centre),
                link,
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
        .collect())
}

/// A classical smoother's posterior (`[samples·L·D]`, physical) of the window that
/// `observation` observes as `y`: the registered observation, factorising over states and linear
/// (or linear under a pointwise link such as arctan), split into one Gaussian observation per
/// state in physical units ([`state_observations`]); the background is
/// [`BACKGROUND_DRAWS`] (at least `samples`) draws of the system's initial prior advanced
/// `burn_in` transitions — the particle filter's prior of the first state. An error names a
/// non-linear (without a link) or non-factorising observation.
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
    let states = state_observations(observation, &parts, units, device).map_err(|e| {
        Error::Invalid(format!(
            "the classical smoothers take a linear observation, or a linear one under a \
             pointwise link, with Gaussian noise ({}): {e}",
            smoother.describe()
        ))
    })?;
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

    /// An arctan of sites 1 and 3 at states 0 and 2, on trajectories standardised with mean 2 and
    /// scale 3 (`arctan(2 + 3 z)`: arctan of the physical value): each state's observation in
    /// physical units is arctan of the sites, equals the model's own A on the standardised
    /// trajectory, and its Jacobian and vector–Jacobian product agree with central differences.
    #[test]
    fn a_linked_pick_is_read_in_physical_units_with_its_exact_jacobian() {
        use crate::observe::{ArctanLink, Link};
        let device = crate::backend::default_device();
        let units = Standardisation {
            mean: vec![2.0; 4],
            scale: vec![3.0; 4],
        };
        let link = Link::arctan(ArctanLink {
            offset: 2.0,
            scale: 3.0,
        })
        .unwrap();
        let pick = Pick::new(TrajectoryShape::new(3, 4), vec![0, 2], vec![1, 3], 0.5)
            .unwrap()
            .with_link(link);
        let model: &dyn ObservationModel<DefaultBackend> = &pick;
        let parts = checked_state_parts(model).unwrap();
        let states = state_observations(model, &parts, &units, &device).unwrap();
        assert!(states[1].is_none());
        let part = states[2].as_ref().unwrap();
        let x = [0.5, -4.0, 1.0, 7.0];
        let got = part.observe(&x);
        let mut z = vec![0.0; 12];
        for (c, v) in x.iter().enumerate() {
            z[8 + c] = (v - 2.0) / 3.0;
        }
        let a = to_host(model.apply(from_host::<DefaultBackend, 3>(&z, [1, 3, 4], &device)));
        for (j, expect) in [(-4.0f64).atan(), 7.0f64.atan()].into_iter().enumerate() {
            assert!((got[j] - expect).abs() < 1e-12, "{got:?}");
            assert!((a[2 + j] - expect).abs() < 1e-5, "{a:?}");
        }
        let jac = part.jacobian(&x);
        let h = 1e-6;
        for c in 0..4 {
            let (mut up, mut down) = (x, x);
            up[c] += h;
            down[c] -= h;
            let (fu, fd) = (part.observe(&up), part.observe(&down));
            for j in 0..2 {
                let diff = (fu[j] - fd[j]) / (2.0 * h);
                assert!(
                    (diff - jac[(j, c)]).abs() < 1e-8,
                    "∂y{j}/∂x{c}: {diff} vs {}",
                    jac[(j, c)]
                );
            }
        }
        let v = [0.3, -1.2];
        let vjp = part.vjp(&x, &v);
        let dense = jac.transpose() * DVector::from_column_slice(&v);
        for c in 0..4 {
            assert!((vjp[c] - dense[c]).abs() < 1e-12, "{vjp:?} vs {dense:?}");
        }
        assert_eq!(part.sites(), Some(vec![1, 3]));
    }
}
