//! The ground-truth tools checked against exact answers: the particle filter against the
//! Kalman smoother on the linear-Gaussian oracle, exact W1 against brute force, and the
//! Lorenz-63 system's numerics.

use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use sda::experiments::oracle::{oracle_observation, OracleProblem};
use sda::filter::{ParticleFilter, Smoother};
use sda::metrics::MomentComparison;
use sda::prelude::*;
use sda::systems::lorenz63::Lorenz63;
use sda::transport::{assignment, wasserstein1};

/// BPF (2^14 particles; 2^12 for FFBSi) on the oracle reproduces the Kalman smoother's marginals. With 1024
/// draws from a finite particle system (effective size below 1024), the bands are wider than
/// for exact samplers: |Δmean| ≤ 0.25 std and variance ratios in [0.7, 1.3].
#[test]
fn particle_filter_matches_kalman_smoother() {
    let device = default_device();
    let problem = OracleProblem::new::<DefaultBackend>(oracle_observation(), 0, &device).unwrap();
    let states = problem.observation.states().to_vec();
    let y = problem.y.clone();
    let likelihood = move |i: usize, x: &[f64]| {
        states
            .iter()
            .position(|&s| s == i)
            .map(|j| -0.5 * ((x[0] - y[j]) / 0.1).powi(2))
    };
    for smoother in [Smoother::Genealogy, Smoother::BackwardSimulation] {
        // backward simulation costs particles × samples × len transition densities
        let particles = if smoother == Smoother::Genealogy {
            1 << 14
        } else {
            1 << 12
        };
        let pf = ParticleFilter {
            particles,
            burn_in: 16,
            samples: 1024,
            seed: 3,
            smoother,
        };
        let draws = pf.run(&problem.system, 16, &likelihood).unwrap();
        let cmp =
            MomentComparison::new(&draws, &problem.posterior_mean, &problem.posterior_var).unwrap();
        let (lo, hi) = cmp.variance_ratio_range(None);
        eprintln!(
            "{smoother:?}: max |Δmean|/std {:.3}, variance ratios {lo:.3}–{hi:.3}",
            cmp.max_mean_error()
        );
        assert!(
            cmp.max_mean_error() <= 0.25,
            "{smoother:?}: {}",
            cmp.max_mean_error()
        );
        assert!(lo >= 0.7 && hi <= 1.3, "{smoother:?}: {lo} {hi}");
    }
}

#[test]
fn particle_filter_is_reproducible_and_validates_input() {
    let sys = Lorenz63::default();
    let lik = |i: usize, x: &[f64]| {
        i.is_multiple_of(4)
            .then(|| -0.5 * ((x[0] / 8.0 - 0.3) / 0.1).powi(2))
    };
    let pf = ParticleFilter {
        particles: 2048,
        burn_in: 8,
        samples: 64,
        seed: 1,
        smoother: Smoother::Genealogy,
    };
    assert_eq!(
        pf.run(&sys, 9, &lik).unwrap(),
        pf.run(&sys, 9, &lik).unwrap()
    );
    let bad = ParticleFilter {
        particles: 1,
        ..pf.clone()
    };
    assert!(bad.run(&sys, 9, &lik).is_err());
    let impossible = |_: usize, _: &[f64]| Some(f64::NEG_INFINITY);
    let err = pf.run(&sys, 3, &impossible).unwrap_err().to_string();
    assert!(err.contains("weights vanished"), "{err}");
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for k in 0..n {
            let mut q = p.clone();
            q.insert(k, n - 1);
            out.push(q);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The Hungarian algorithm finds the brute-force optimum of small assignment problems.
    #[test]
    fn assignment_matches_brute_force(n in 1usize..7, raw in prop::collection::vec(0.0f64..10.0, 36)) {
        let cost: Vec<f64> = (0..n * n).map(|k| raw[k]).collect();
        let (sigma, total) = assignment(&cost, n).unwrap();
        let best = permutations(n)
            .iter()
            .map(|p| (0..n).map(|i| cost[i * n + p[i]]).sum::<f64>())
            .fold(f64::INFINITY, f64::min);
        prop_assert!((total - best).abs() < 1e-9, "{total} vs {best}");
        let mut seen = sigma.clone();
        seen.sort();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }

    /// W1 of a set and its translate by c is ‖c‖, and W1 of a set with itself is 0.
    #[test]
    fn w1_translation(n in 1usize..40, raw in prop::collection::vec(-3.0f64..3.0, 120), c in prop::collection::vec(-1.0f64..1.0, 3)) {
        let x: Vec<f64> = raw[..n * 3].to_vec();
        let y: Vec<f64> = x.iter().enumerate().map(|(k, v)| v + c[k % 3]).collect();
        let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
        prop_assert!((wasserstein1(&x, &y, 3).unwrap() - norm).abs() < 1e-9);
        prop_assert!(wasserstein1(&x, &x, 3).unwrap().abs() < 1e-12);
    }
}

#[test]
fn w1_rejects_mismatched_sets() {
    assert!(wasserstein1(&[0.0; 6], &[0.0; 9], 3).is_err());
    assert!(assignment(&[1.0, f64::NAN, 0.0, 1.0], 2).is_err());
}

/// RK4 is fourth order: halving Δ divides the one-step error by ≈ 32 (local order 5).
#[test]
fn lorenz_rk4_is_fourth_order() {
    let x0 = [1.0, 2.0, 20.0];
    let reference = |dt: f64| {
        let fine = Lorenz63 {
            dt: dt / 256.0,
            ..Lorenz63::default()
        };
        (0..256).fold(x0, |x, _| fine.rk4(x))
    };
    let err = |dt: f64| {
        let r = reference(dt);
        let y = Lorenz63 {
            dt,
            ..Lorenz63::default()
        }
        .rk4(x0);
        (0..3).map(|j| (y[j] - r[j]).powi(2)).sum::<f64>().sqrt()
    };
    let ratio = err(0.025) / err(0.0125);
    assert!((26.0..38.0).contains(&ratio), "local error ratio {ratio}");
}

/// The standardisation gives roughly zero mean and unit variance on the attractor, and its
/// inverse recovers physical states; the transition density is the Gaussian N(M(x), Δ I).
#[test]
fn lorenz_standardisation_and_transition_density() {
    let sys = Lorenz63::default();
    let mut rng = StdRng::seed_from_u64(0);
    let traj = sys.trajectory(20_000, 1024, &mut rng);
    let n = traj.len() / 3;
    for j in 0..3 {
        let z: Vec<f64> = traj
            .chunks_exact(3)
            .map(|x| Lorenz63::standardise([x[0], x[1], x[2]])[j])
            .collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.25 && (0.7..1.3).contains(&var),
            "component {j}: mean {mean}, var {var}"
        );
    }
    let x = [1.0, -2.0, 24.0];
    let back = Lorenz63::unstandardise(Lorenz63::standardise(x));
    assert!((0..3).all(|j| (back[j] - x[j]).abs() < 1e-12));
    let m = sys.rk4(x);
    let lp = sys.log_transition(&x, &m).unwrap();
    let want = -1.5 * (2.0 * std::f64::consts::PI * 0.025).ln();
    assert!((lp - want).abs() < 1e-12);
    let shifted = [m[0] + 0.1, m[1], m[2]];
    let lp2 = sys.log_transition(&x, &shifted).unwrap();
    assert!((lp - lp2 - 0.5 * 0.01 / 0.025).abs() < 1e-12);
}
