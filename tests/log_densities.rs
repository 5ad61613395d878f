//! The Gaussian log-densities the evaluation reports, checked against statrs's univariate
//! normal as an independent oracle: the observation likelihood `log N(y | A(x), Σ_y)` of the
//! default `ObservationModel::log_likelihood` (tensors) and of `Pick`'s host per-state
//! likelihood, and Lorenz-63's transition density `log N(x' | RK4(x), Δt I)`.

use rand::{rngs::StdRng, SeedableRng};
use sda::backend::{default_device, from_host, to_host, DefaultBackend};
use sda::dynamics::Dynamics;
use sda::observe::ops::Pick;
use sda::observe::ObservationModel;
use sda::systems::lorenz63::Lorenz63;
use sda::TrajectoryShape;
use statrs::distribution::{Continuous, Normal};

type B = DefaultBackend;

/// `Σ_j log N(v_j | m_j, s_j²)` by statrs.
fn statrs_log_density(v: &[f64], mean: &[f64], std: &[f64]) -> f64 {
    v.iter()
        .zip(mean)
        .zip(std)
        .map(|((&v, &m), &s)| Normal::new(m, s).unwrap().ln_pdf(v))
        .sum()
}

#[test]
fn observation_log_likelihood_is_the_gaussian_density() {
    let (len, dim) = (9, 3);
    let pick = Pick::new(
        TrajectoryShape::new(len, dim),
        vec![0, 4, 8],
        vec![0, 2],
        0.3,
    )
    .unwrap();
    let x: Vec<f64> = (0..2 * len * dim)
        .map(|i| (i as f64 * 0.71).sin() * 3.0)
        .collect();
    let y: Vec<f64> = (0..6).map(|i| (i as f64 * 1.3).cos()).collect();
    let device = default_device();
    let model: &dyn ObservationModel<B> = &pick;
    let got = to_host(model.log_likelihood(&y, from_host::<B, 3>(&x, [2, len, dim], &device)));
    let mean = to_host(model.apply(from_host::<B, 3>(&x, [2, len, dim], &device)));
    let std = model.noise_std();
    for n in 0..2 {
        let want = statrs_log_density(&y, &mean[n * 6..(n + 1) * 6], &std);
        // single-precision tensors: a relative error of a few 1e-6 on terms of order 10
        assert!(
            (got[n] as f64 - want).abs() < 1e-4 * want.abs().max(1.0),
            "{} vs {want}",
            got[n]
        );
    }
    // the per-state likelihood of state 4 (host, f64) is the density of its two components up
    // to a constant in x (what a particle filter's weights need): compare two values of it
    let states: Vec<f64> = vec![0.4, -1.0, 2.5, -0.7, 3.0, 0.1];
    let per_state = model.state_log_likelihood(&y, 4, &states, &device).unwrap();
    let density = |v: &[f64]| statrs_log_density(&y[2..4], &[v[0], v[2]], &std[2..4]);
    let want = density(&states[..3]) - density(&states[3..]);
    let got = per_state[0] - per_state[1];
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}

#[test]
fn lorenz63_transition_is_the_gaussian_density_around_the_rk4_step() {
    let system = Lorenz63::default();
    let mut rng = StdRng::seed_from_u64(3);
    let x = system.sample_initial(&mut rng);
    let next = system.step(&x, &mut rng);
    let mean = system.rk4([x[0], x[1], x[2]]);
    let want = statrs_log_density(&next, &mean, &[system.dt.sqrt(); 3]);
    let got = system.log_transition(&x, &next).unwrap();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}
