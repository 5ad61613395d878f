//! The classical window smoothers against the exact posterior of the linear-Gaussian oracle
//! (its Kalman–RTS smoother): 16 states of `x' = 0.95 R(0.3) x + N(0, 0.1 I)` from the
//! stationary prior, component 0 observed at states 0, 5, 10, 15 with σ = 0.3 (y drawn from a
//! seeded trajectory). The background is 20 000 draws of the initial prior, so B's estimate is
//! off by about √(2/20 000) = 1%; each smoother returns 4 096 samples, whose means are off by
//! 1/64 = 0.016 posterior standard deviations and whose variances by √(2/4 096) = 2.2% (one
//! standard error). Bounds: every mean within 0.1 posterior std (6 standard errors), every
//! variance ratio in [0.9, 1.1] (4.5 standard errors); the ensemble smoother's are below.
//! Weak-constraint 4D-Var's minimiser is the posterior mean when the model is linear,
//! within B's 1%: within 0.03 std.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use sda::dynamics::Dynamics;
use sda::methods::enks::{AnalysisName, WindowEnks, WindowEnksSettings};
use sda::methods::letks::{WindowLetks, WindowLetksSettings};
use sda::methods::var4d_weak::{WeakVar4d, WeakVar4dSettings};
use sda::methods::window::{Window, WindowSmoother};
use sda::methods::{GaussianObservation, PartialIdentity};
use sda::systems::linear_gaussian::LinearGaussian;

const LEN: usize = 16;
const SAMPLES: usize = 4096;

struct Case {
    system: LinearGaussian,
    obs: PartialIdentity,
    ys: Vec<(usize, f64)>,
    background: DMatrix<f64>,
    exact: (Vec<DVector<f64>>, Vec<DMatrix<f64>>),
}

fn case() -> Case {
    let system = LinearGaussian::oracle();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let truth = system.trajectory(LEN, 0, &mut rng);
    let sigma = 0.3;
    let ys: Vec<(usize, f64)> = [0usize, 5, 10, 15]
        .iter()
        .map(|&i| {
            let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
            (i, truth[i * 2] + sigma * z)
        })
        .collect();
    let observations: Vec<_> = ys
        .iter()
        .map(|&(i, y)| sda::systems::linear_gaussian::StateObservation {
            state: i,
            h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
            noise_var: DVector::from_element(1, sigma * sigma),
            y: DVector::from_element(1, y),
        })
        .collect();
    let exact = system.kalman_smoother(LEN, &observations).unwrap();
    let draws = 20_000;
    let mut background = DMatrix::zeros(2, draws);
    for j in 0..draws {
        background.set_column(j, &DVector::from_vec(system.sample_initial(&mut rng)));
    }
    Case {
        system,
        obs: PartialIdentity::new(2, vec![0], sigma).unwrap(),
        ys,
        background,
        exact,
    }
}

impl Case {
    fn window(&self) -> Window<'_> {
        let mut observations: Vec<Option<(&dyn GaussianObservation, Vec<f64>)>> =
            (0..LEN).map(|_| None).collect();
        for &(i, y) in &self.ys {
            observations[i] = Some((&self.obs as &dyn GaussianObservation, vec![y]));
        }
        Window {
            model: &self.system,
            observations,
            background: &self.background,
        }
    }

    /// (largest |mean error| / posterior std, smallest and largest variance ratio).
    fn compare(&self, x: &[f64], samples: usize) -> (f64, f64, f64) {
        let (means, covs) = &self.exact;
        let (mut worst, mut lo, mut hi) = (0.0f64, f64::INFINITY, 0.0f64);
        for i in 0..LEN {
            for c in 0..2 {
                let v: Vec<f64> = (0..samples).map(|s| x[(s * LEN + i) * 2 + c]).collect();
                let m = v.iter().sum::<f64>() / samples as f64;
                let var = v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (samples as f64 - 1.0);
                let sd = covs[i][(c, c)].sqrt();
                worst = worst.max((m - means[i][c]).abs() / sd);
                let ratio = var / covs[i][(c, c)];
                lo = lo.min(ratio);
                hi = hi.max(ratio);
            }
        }
        (worst, lo, hi)
    }
}

#[test]
fn weak_constraint_4dvar_is_the_kalman_smoother_on_a_linear_gaussian_window() {
    let case = case();
    let window = case.window();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let minimiser = WeakVar4d::new(WeakVar4dSettings {
        laplace: false,
        ..Default::default()
    })
    .unwrap()
    .smooth(&window, 1, &mut rng)
    .unwrap();
    let (mean_err, _, _) = case.compare(&minimiser, 1);
    assert!(mean_err <= 0.03, "minimiser off by {mean_err} std");
    let x = WeakVar4d::new(WeakVar4dSettings::default())
        .unwrap()
        .smooth(&window, SAMPLES, &mut rng)
        .unwrap();
    let (mean_err, lo, hi) = case.compare(&x, SAMPLES);
    eprintln!("weak 4D-Var Laplace: mean {mean_err:.3} std, variance ratios {lo:.3}–{hi:.3}");
    assert!(mean_err <= 0.1, "mean off by {mean_err} std");
    assert!(lo >= 0.9 && hi <= 1.1, "variance ratios {lo}–{hi}");
}

/// The ensemble smoother's mean errs more than an i.i.d. sample's (the gain is estimated from
/// the ensemble and the forecasts add noise): measured over the 32 values, 0.100 std at
/// N = 4 096 and 0.037 at N = 16 384 (the 1/√N of a Monte Carlo error, no bias). So the
/// stochastic smoother runs 16 384 members (i.i.d. standard errors 0.008 std for a mean, 1.1%
/// for a variance; bounds 0.1 std and [0.95, 1.05]) and the ETKF, whose ensemble-space
/// transform is N × N, 1 024 (0.031 and 4.4%; bounds 0.2 std and [0.85, 1.15]).
#[test]
fn the_window_ensemble_smoother_samples_the_kalman_smoother_s_posterior() {
    let case = case();
    let window = case.window();
    for (analysis, members, mean_bound, var_bound) in [
        (AnalysisName::Enkf, 16_384, 0.1, 0.05),
        (AnalysisName::Etkf, 1024, 0.2, 0.15),
    ] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let smoother = WindowEnks::new(WindowEnksSettings {
            analysis,
            inflation: 1.0,
        })
        .unwrap();
        let x = smoother.smooth(&window, members, &mut rng).unwrap();
        let (mean_err, lo, hi) = case.compare(&x, members);
        eprintln!(
            "{}, N = {members}: mean {mean_err:.3} std, variance ratios {lo:.3}–{hi:.3}",
            smoother.describe()
        );
        assert!(
            mean_err <= mean_bound,
            "{analysis:?}: mean off by {mean_err} std"
        );
        assert!(
            lo >= 1.0 - var_bound && hi <= 1.0 + var_bound,
            "{analysis:?}: variance ratios {lo}–{hi}"
        );
    }
}

#[test]
fn window_smoothers_refuse_bad_input_by_name() {
    let case = case();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let enks = WindowEnks::new(WindowEnksSettings {
        analysis: AnalysisName::Enkf,
        inflation: 1.0,
    })
    .unwrap();
    let err = enks.smooth(&case.window(), 1, &mut rng).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
    let err = WindowEnks::new(WindowEnksSettings {
        analysis: AnalysisName::Etkf,
        inflation: 0.9,
    })
    .unwrap_err();
    assert!(err.to_string().contains("inflation"), "{err}");
    let mut window = case.window();
    window.observations[3] = Some((&case.obs, vec![f64::NAN]));
    let err = enks.smooth(&window, 8, &mut rng).unwrap_err();
    assert!(err.to_string().contains("state 3"), "{err}");
    let err = WeakVar4d::new(WeakVar4dSettings {
        model_noise: Some(0.0),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("model_noise"), "{err}");
    // a window too large for the dense Hessian of the Laplace posterior is refused by name
    let system = sda::systems::lorenz96::Lorenz96::with_sites(1024).unwrap();
    let background = DMatrix::zeros(1024, 4);
    let big = Window {
        model: &system,
        observations: (0..16).map(|_| None).collect(),
        background: &background,
    };
    let err = WeakVar4d::new(WeakVar4dSettings::default())
        .unwrap()
        .smooth(&big, 2, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("laplace = false"), "{err}");
    // a deterministic model has no model error to allow: the error says so and what to give
    let err = WeakVar4d::new(WeakVar4dSettings {
        laplace: false,
        ..Default::default()
    })
    .unwrap()
    .smooth(&big, 2, &mut rng)
    .unwrap_err();
    assert!(
        err.to_string().contains("deterministic") && err.to_string().contains("model_noise"),
        "{err}"
    );
}

/// The local ensemble transform smoother with a taper wider than the domain weights every
/// observation by 1 (to 1e-12) and so is the global ETKF smoother, member for member from the
/// same seed — which the test above checks against the Kalman smoother. With fewer members
/// than samples, or a radius that is not positive, it refuses by name.
#[test]
fn the_local_smoother_without_localisation_is_the_ensemble_smoother() {
    let case = case();
    let window = case.window();
    let members = 64;
    let etks = WindowEnks::new(WindowEnksSettings {
        analysis: AnalysisName::Etkf,
        inflation: 1.05,
    })
    .unwrap()
    .smooth(&window, members, &mut rand::rngs::StdRng::seed_from_u64(4))
    .unwrap();
    let letks = WindowLetks::new(WindowLetksSettings {
        radius: 1e6,
        inflation: 1.05,
        ensemble: None,
    })
    .unwrap();
    let x = letks
        .smooth(&window, members, &mut rand::rngs::StdRng::seed_from_u64(4))
        .unwrap();
    let gap = x
        .iter()
        .zip(&etks)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(gap < 1e-8, "LETKS and ETKS differ by {gap}");
    // with more members than samples, the samples are the first members' trajectories
    let wide = WindowLetks::new(WindowLetksSettings {
        radius: 1e6,
        inflation: 1.05,
        ensemble: Some(members),
    })
    .unwrap()
    .smooth(&window, 16, &mut rand::rngs::StdRng::seed_from_u64(4))
    .unwrap();
    assert_eq!(wide.len(), 16 * LEN * 2);
    let gap = wide
        .iter()
        .zip(&etks)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(gap < 1e-8, "the first 16 members differ by {gap}");
    let err = WindowLetks::new(WindowLetksSettings {
        radius: 2.0,
        inflation: 1.0,
        ensemble: Some(8),
    })
    .unwrap()
    .smooth(&window, 16, &mut rand::rngs::StdRng::seed_from_u64(4))
    .unwrap_err();
    assert!(err.to_string().contains("8 members"), "{err}");
    let err = WindowLetks::new(WindowLetksSettings {
        radius: 0.0,
        inflation: 1.0,
        ensemble: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("radius"), "{err}");
}

/// An ensemble filter run through the window (`sda evaluate --smoother etkf`): at the last state
/// no later observation exists, so the filter's ensemble there is the ETKF smoother's, member for
/// member from the same seed (the test above checks that smoother against the Kalman smoother);
/// at state 0 the smoother has used the later observations and the filter has not. A method
/// without an ensemble, more samples than members and an unknown name are refused by name.
#[test]
fn a_filter_through_the_window_ends_where_the_smoother_ends() {
    let case = case();
    let window = case.window();
    let members = 64;
    let params = |text: &str| sda::registry::parse_params(text).unwrap();
    let etks = WindowEnks::new(WindowEnksSettings {
        analysis: AnalysisName::Etkf,
        inflation: 1.05,
    })
    .unwrap()
    .smooth(&window, members, &mut rand::rngs::StdRng::seed_from_u64(5))
    .unwrap();
    let filter =
        sda::registry::window_method("etkf", &params("ensemble = 64, inflation = 1.05")).unwrap();
    assert!(
        filter.describe().ends_with("(filter)"),
        "{}",
        filter.describe()
    );
    let x = filter
        .smooth(&window, members, &mut rand::rngs::StdRng::seed_from_u64(5))
        .unwrap();
    let state_gap = |i: usize| {
        (0..members)
            .flat_map(|s| (0..2).map(move |c| (s * LEN + i) * 2 + c))
            .fold(0.0f64, |m, j| m.max((x[j] - etks[j]).abs()))
    };
    assert!(
        state_gap(LEN - 1) < 1e-8,
        "last state differs by {}",
        state_gap(LEN - 1)
    );
    assert!(
        state_gap(0) > 1e-3,
        "state 0 is the smoother's: {}",
        state_gap(0)
    );
    let err = sda::registry::window_method("var3d", &params("background = 1.0"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no ensemble"), "{err}");
    let err = filter
        .smooth(&window, 65, &mut rand::rngs::StdRng::seed_from_u64(5))
        .unwrap_err();
    assert!(err.to_string().contains("64 members"), "{err}");
    let err = sda::registry::window_method("letkz", &params(""))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("letks") && err.to_string().contains("letkf (filter)"),
        "{err}"
    );
}
