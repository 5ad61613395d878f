//! SDA as a filter (sliding windows, `sda::experiments::filtering`) against its oracle: on the
//! linear-Gaussian chain, with each window's exact posterior as the window sampler, the
//! assembled estimate of every state is the Kalman filter's `p(x_i | y)` over the observations
//! the window sees — started from the stationary prior at the window's first state.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use sda::backend::DefaultBackend as B;
use sda::dynamics::Dynamics;
use sda::experiments::filtering::sliding_window_filter;
use sda::observe::{linear_matrix, ops::Pick, ObservationModel};
use sda::sampler::SampleReport;
use sda::systems::linear_gaussian::{LinearGaussian, StateObservation};
use sda::TrajectoryShape;

const LEN: usize = 13;
const WINDOW: usize = 9;
const SAMPLES: usize = 4000;
const OBSERVED: [usize; 3] = [2, 6, 10];
const SIGMA: f64 = 0.1;

/// `samples` draws of `N(mean, cov)`, sample-major.
fn draws(mean: &DVector<f64>, cov: &DMatrix<f64>, samples: usize, seed: u64) -> Vec<f64> {
    let n = mean.len();
    let l = (cov + DMatrix::identity(n, n) * 1e-12)
        .cholesky()
        .expect("a covariance")
        .l();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(samples * n);
    for _ in 0..samples {
        let z = DVector::from_fn(n, |_, _| StandardNormal.sample(&mut rng));
        out.extend((mean + &l * z).iter());
    }
    out
}

/// The Kalman filter's marginal of the last of states `start ..= state`, from the stationary
/// prior at `start`, given the observed values of the observed states in `start ..= last`.
fn kalman_filter(
    system: &LinearGaussian,
    y: &[f64],
    start: usize,
    state: usize,
    last: usize,
) -> (DVector<f64>, DMatrix<f64>) {
    let observations: Vec<StateObservation> = OBSERVED
        .iter()
        .enumerate()
        .filter(|(_, &o)| o >= start && o <= last)
        .map(|(j, &o)| StateObservation {
            state: o - start,
            h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
            noise_var: DVector::from_element(1, SIGMA * SIGMA),
            y: DVector::from_element(1, y[j]),
        })
        .collect();
    let (m, c) = system
        .kalman_smoother(state - start + 1, &observations)
        .unwrap();
    (m.last().unwrap().clone(), c.last().unwrap().clone())
}

#[test]
fn sliding_windows_of_exact_posteriors_give_the_kalman_filter_of_their_observations() {
    let device = Default::default();
    let system = LinearGaussian::oracle();
    let shape = TrajectoryShape::new(LEN, 2);
    let pick = Pick::new(shape, OBSERVED.to_vec(), vec![0], SIGMA).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let truth = system.trajectory(LEN, 0, &mut rng);
    let y: Vec<f64> = OBSERVED
        .iter()
        .enumerate()
        .map(|(j, &o)| truth[o * 2] + SIGMA * [0.3, -1.1, 0.7][j])
        .collect();
    let mut windows = 0;
    let (x, report) = sliding_window_filter::<B>(&pick, &y, WINDOW, SAMPLES, 0..LEN, |request| {
        windows += 1;
        assert_eq!(request.shape, TrajectoryShape::new(WINDOW, 2));
        let (mean, cov) = match request.observed {
            Some((sub, y_sub)) => {
                let h = linear_matrix::<B>(sub, &device).unwrap();
                system.posterior(WINDOW, &h, &sub.noise_std(), y_sub)?
            }
            None => system.trajectory_prior(WINDOW),
        };
        let x = draws(&mean, &cov, SAMPLES, 100 + request.index as u64);
        let report = SampleReport {
            evaluations: 2,
            passes: Default::default(),
            samples: SAMPLES,
            seconds: 0.5,
            steps: Vec::new(),
        };
        Ok((x, report))
    })
    .unwrap();
    // one window before the first observed state, one per observed state (gaps ≤ W)
    assert_eq!(windows, 1 + OBSERVED.len());
    assert_eq!((report.evaluations, report.seconds), (8, 2.0));
    assert_eq!(x.len(), SAMPLES * LEN * 2);
    let stationary = system.initial();
    for state in 0..LEN {
        // the definition, written out: the last observed state at or before `state` and the
        // window of W states that ends before the next observed one
        let last = OBSERVED.iter().copied().rfind(|&o| o <= state);
        let next = OBSERVED.iter().copied().find(|&o| o > state).unwrap_or(LEN);
        let start = next.saturating_sub(WINDOW);
        let (mean, cov) = match last {
            Some(last) => kalman_filter(&system, &y, start, state, last),
            None => (stationary.0.clone(), stationary.1.clone()),
        };
        for c in 0..2 {
            let values: Vec<f64> = (0..SAMPLES).map(|s| x[(s * LEN + state) * 2 + c]).collect();
            let m = values.iter().sum::<f64>() / SAMPLES as f64;
            let v = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (SAMPLES - 1) as f64;
            let sd = cov[(c, c)].sqrt();
            // 4.5 standard errors of the mean and of the variance (Gaussian samples): 26 checks
            // with seeded draws
            assert!(
                (m - mean[c]).abs() <= 4.5 * sd / (SAMPLES as f64).sqrt(),
                "state {state} component {c}: mean {m} vs the Kalman filter's {}",
                mean[c]
            );
            let ratio = v / cov[(c, c)];
            assert!(
                (ratio - 1.0).abs() <= 4.5 * (2.0 / (SAMPLES - 1) as f64).sqrt(),
                "state {state} component {c}: variance ratio {ratio}"
            );
        }
    }
    // a filter, not a smoother: the estimate of state 2 ignores the observation of state 6
    let (smoothed, _) = system
        .kalman_smoother(
            7,
            &[2usize, 6]
                .iter()
                .enumerate()
                .map(|(j, &o)| StateObservation {
                    state: o,
                    h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
                    noise_var: DVector::from_element(1, SIGMA * SIGMA),
                    y: DVector::from_element(1, y[j]),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let filtered = kalman_filter(&system, &y, 0, 2, 2).0;
    let estimate = (0..SAMPLES).map(|s| x[(s * LEN + 2) * 2 + 1]).sum::<f64>() / SAMPLES as f64;
    assert!(
        (estimate - filtered[1]).abs() < 0.5 * (estimate - smoothed[2][1]).abs(),
        "state 2, component 1: {estimate} is not the filter's {} rather than the smoother's {}",
        filtered[1],
        smoothed[2][1]
    );
}

#[test]
fn a_window_sampler_of_the_wrong_size_is_named() {
    let shape = TrajectoryShape::new(8, 2);
    let pick = Pick::new(shape, vec![0, 4], vec![0], SIGMA).unwrap();
    let y = vec![0.1, 0.2];
    let err = sliding_window_filter::<B>(&pick, &y, 5, 3, 0..8, |_| {
        Ok((
            vec![0.0; 7],
            SampleReport {
                evaluations: 0,
                passes: Default::default(),
                samples: 3,
                seconds: 0.0,
                steps: Vec::new(),
            },
        ))
    })
    .unwrap_err();
    assert!(err.to_string().contains("returned 7 values"), "{err}");
    // a window longer than the trajectory, a y of the wrong size
    let ok = |_: &sda::experiments::filtering::WindowRequest<'_, '_, B>| -> sda::Result<_> {
        unreachable!()
    };
    assert!(sliding_window_filter::<B>(&pick, &y, 9, 3, 0..8, ok).is_err());
    assert!(sliding_window_filter::<B>(&pick, &y[..1], 5, 3, 0..8, ok).is_err());
    assert!(sliding_window_filter::<B>(&pick, &y, 5, 3, 4..9, ok).is_err());
}
