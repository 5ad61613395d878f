//! Bad input gets a clear error naming the problem, never a panic.

use std::sync::Arc;

use sda::experiments::oracle::{oracle_observation, NamedRun};
use sda::prelude::*;
use sda::registry::{self, parse_params, ObservationPlugin, SamplerPlugin};
use sda::systems::linear_gaussian::LinearGaussian;

type B = DefaultBackend;

fn schedule() -> Arc<dyn NoiseSchedule> {
    Arc::new(VpCosine::default())
}

fn composed(k: usize) -> impl EpsilonModel<B> {
    let sys = LinearGaussian::oracle();
    Composed::new::<B>(
        sys.window_epsilon(k, schedule()).unwrap(),
        TemporalWindow::new(k).unwrap(),
    )
    .unwrap()
}

/// An oracle run of `len` states with the exact posterior ε, DDIM and the `pick` observation
/// of `observation_params`.
fn oracle_run(observation_params: &str, len: usize) -> NamedRun {
    NamedRun {
        observation: ("pick".into(), parse_params(observation_params).unwrap()),
        guidance: None,
        blanket: ("temporal-window".into(), parse_params("k = 2").unwrap()),
        sampler: ("ddim".into(), parse_params("").unwrap()),
        schedule: ("vp-cosine".into(), parse_params("").unwrap()),
        len,
        options: SampleOptions::default(),
        problem_seed: 0,
    }
}

#[test]
fn trajectory_shorter_than_window_is_an_error() {
    let eps = composed(3);
    let err = sample::<B>(
        &eps,
        &PredictorCorrector::ddim(),
        TrajectoryShape::new(6, 2),
        &SampleOptions::default(),
        &default_device(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Shape(_)), "{msg}");
    assert!(msg.contains("L = 6") && msg.contains("2k+1 = 7"), "{msg}");
}

#[test]
fn zero_half_width_is_an_error() {
    let err = TemporalWindow::new(0).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
    assert!(LinearGaussian::oracle()
        .window_epsilon(0, schedule())
        .is_err());
    let err = (registry::find::<registry::BlanketPlugin>("temporal-window")
        .unwrap()
        .build)(&parse_params("k = 0").unwrap())
    .err()
    .unwrap();
    assert!(err.to_string().contains("k must be at least 1"), "{err}");
}

#[test]
fn observation_not_matching_trajectory_is_an_error() {
    let device = default_device();
    // observation built for L = 16, prior composed for any L ≥ 5, trajectories of L = 12
    let obs = oracle_observation();
    let y = vec![0.0; 4];
    let post = Guided::<B, _, _, _>::new(
        composed(2),
        &obs,
        &y,
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .unwrap();
    let err = sample::<B>(
        &post,
        &PredictorCorrector::ddim(),
        TrajectoryShape::new(12, 2),
        &SampleOptions::default(),
        &device,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("do not match the observation"),
        "{err}"
    );
    // wrong state dimension against the prior
    let obs3 = Pick::new(TrajectoryShape::new(16, 3), vec![0], vec![0], 0.1).unwrap();
    let err = Guided::<B, _, _, _>::new(
        composed(2),
        &obs3,
        &[0.0],
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("dimension 3"), "{err}");
    // y of the wrong length
    let err = Guided::<B, _, _, _>::new(
        composed(2),
        &obs,
        &[0.0; 3],
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("has 3 values"), "{err}");
    // indices outside the trajectory
    let err = Pick::new(TrajectoryShape::new(16, 2), vec![16], vec![0], 0.1).unwrap_err();
    assert!(err.to_string().contains("state 16 is outside"), "{err}");
    let err = Pick::new(TrajectoryShape::new(16, 2), vec![0], vec![2], 0.1).unwrap_err();
    assert!(err.to_string().contains("component 2 is outside"), "{err}");
}

#[test]
fn nan_in_observation_is_an_error() {
    let device = default_device();
    let obs = oracle_observation();
    let y = vec![0.1, f64::NAN, 0.2, 0.3];
    let err = Guided::<B, _, _, _>::new(
        composed(2),
        &obs,
        &y,
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::NonFinite(_)));
    assert!(err.to_string().contains("y[1]"), "{err}");
}

#[test]
fn unknown_plugin_names_list_the_known_ones() {
    let err = registry::find::<ObservationPlugin>("pik").err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("unknown observation 'pik'") && msg.contains("pick"),
        "{msg}"
    );
    let err = registry::find::<SamplerPlugin>("euler").err().unwrap();
    assert!(err.to_string().contains("ddim, pc"), "{err}");
}

#[test]
fn parameter_typos_are_rejected() {
    let plugin = registry::find::<SamplerPlugin>("pc").unwrap();
    let err = (plugin.build)(&parse_params("correction = 2").unwrap())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("unknown field `correction`"),
        "{err}"
    );
    assert!(parse_params("k = ").is_err());
    let run = oracle_run("states = [0], components = [0], sigma = -1", 16);
    let err = sda::experiments::oracle::run_named(&run).unwrap_err();
    assert!(err.to_string().contains("sigma must be positive"), "{err}");
}

#[test]
fn bad_sampling_options_are_errors() {
    let eps = composed(2);
    let opts = SampleOptions {
        steps: 0,
        ..SampleOptions::default()
    };
    let err = sample::<B>(
        &eps,
        &PredictorCorrector::ddim(),
        TrajectoryShape::new(16, 2),
        &opts,
        &default_device(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("steps ≥ 1"), "{err}");
    assert!(PredictorCorrector::new(1, -0.5).is_err());
    assert!(SdaGaussian::new(f64::NAN).is_err());
    assert!(Dps::new(f64::NAN).is_err());
    assert!(Dps::new(-1.0).is_err());
    // the registry builds DPS through the same check
    let plugin = registry::find::<registry::GuidancePlugin>("dps").unwrap();
    let err = (plugin.build)(&parse_params("zeta = nan").unwrap())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("DPS zeta must be ≥ 0, got NaN"),
        "{err}"
    );
}

#[test]
fn an_oracle_too_large_for_its_dense_posterior_is_refused() {
    use sda::experiments::oracle::ORACLE_MAX_DIM;
    // L = 100 000 would need a 200 000 × 200 000 dense covariance (320 GB): refused before
    // anything is allocated, naming the limit
    let len = 100_000;
    assert!(2 * len > ORACLE_MAX_DIM);
    let run = oracle_run("states = [0, 5], components = [0], sigma = 0.1", len);
    let err = sda::experiments::oracle::run_named(&run).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("L·D = 100000·2 = 200000"), "{msg}");
    assert!(
        msg.contains(&format!("L ≤ {}", ORACLE_MAX_DIM / 2)),
        "{msg}"
    );
}

#[test]
fn ddim_law_refuses_what_it_cannot_do() {
    use sda::experiments::oracle::{ddim_law, SAMPLER_LAW_MAX_DIM};
    let device = default_device();
    let system = LinearGaussian::oracle();
    let eps = system
        .prior_epsilon(16, Arc::new(VpCosine::default()))
        .unwrap();
    let shape = TrajectoryShape::new(16, 2);
    let err = ddim_law::<DefaultBackend>(&eps, shape, 0, &device).unwrap_err();
    assert!(err.to_string().contains("steps"), "{err}");
    let err = ddim_law::<DefaultBackend>(&eps, TrajectoryShape::new(8, 2), 4, &device).unwrap_err();
    assert!(err.to_string().contains("16×2"), "{err}");
    let big = TrajectoryShape::new(SAMPLER_LAW_MAX_DIM + 1, 1);
    let err = ddim_law::<DefaultBackend>(&eps, big, 4, &device).unwrap_err();
    assert!(err.to_string().contains("small problems"), "{err}");
}

#[test]
fn sampler_law_refuses_a_stochastic_step() {
    use sda::experiments::oracle::sampler_law;
    use sda::sampler::PredictorCorrector;
    let device = default_device();
    let eps = LinearGaussian::oracle()
        .prior_epsilon(16, Arc::new(VpCosine::default()))
        .unwrap();
    let shape = TrajectoryShape::new(16, 2);
    // Langevin corrections are neither deterministic nor affine (their step τ / mean(ε²) even
    // divides by zero at the probe x = 0): refused, naming the sampler
    let pc = PredictorCorrector::new(1, 0.25).unwrap();
    let err = sampler_law::<DefaultBackend>(&eps, &pc, shape, 256, &device).unwrap_err();
    assert!(
        err.to_string().contains("deterministic step affine"),
        "{err}"
    );
    assert!(err.to_string().contains("PC (C=1, tau=0.25)"), "{err}");
}

#[test]
fn non_finite_linear_gaussian_matrices_are_refused() {
    use nalgebra::{DMatrix, DVector};
    let mut f = DMatrix::identity(2, 2) * 0.5;
    f[(0, 1)] = f64::NAN;
    let q = DMatrix::identity(2, 2) * 0.1;
    let err = LinearGaussian::new(f.clone(), q.clone(), DVector::zeros(2), q.clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("F holds NaN"), "{err}");
    // the stationary prior is solved from F first; the NaN is still named, not propagated
    let err = LinearGaussian::stationary(f, q.clone()).err().unwrap();
    assert!(err.to_string().contains("NaN"), "{err}");
    let m0 = DVector::from_vec(vec![0.0, f64::INFINITY]);
    let err = LinearGaussian::new(DMatrix::identity(2, 2) * 0.5, q.clone(), m0, q)
        .err()
        .unwrap();
    assert!(err.to_string().contains("m0 holds inf"), "{err}");
}
