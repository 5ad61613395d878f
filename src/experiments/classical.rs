//! The classical window smoothers (and filters run through a window) on SDA's observations:
//! the registered observation of standardised states, factorising over states and linear (or
//! linear under a pointwise link such as arctan), read per state in physical units as the
//! Gaussian observation the Kalman and variational methods take, with their background drawn
//! as the particle filter's prior of the first state — so that `sda evaluate --smoother` and
//! `sda assimilate --smoother` score them on the very observation SDA assimilates.

use burn::tensor::backend::Backend;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;

use super::posterior::single_entry;
use crate::data::Standardisation;
use crate::dynamics::Dynamics;
use crate::methods::window::{Window, WindowSmoother};
use crate::methods::GaussianObservation;
use crate::observe::{checked_state_parts, Link, ObservationModel};
use crate::{Error, Result};

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
/// state in physical units (`state_observations`); the background is
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{from_host, to_host, DefaultBackend};
    use crate::observe::ops::Pick;
    use crate::TrajectoryShape;

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
