//! Property tests of the identities SDA rests on, each checked against closed-form Gaussian
//! algebra (nalgebra, f64). Tensor code runs in f32, so tolerances are relative f32 ones.

use std::sync::Arc;

use burn::tensor::Tensor;
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use sda::backend::{from_host, to_host};
use sda::prelude::*;
use sda::schedule::{epsilon_from_score, score_from_epsilon, tweedie};
use sda::score::gaussian::GaussianEpsilon;
use sda::systems::linear_gaussian::LinearGaussian;

type B = DefaultBackend;

fn cosine() -> Arc<dyn NoiseSchedule> {
    Arc::new(VpCosine::default())
}

/// A well-conditioned SPD matrix from raw entries: A Aᵀ / p + 0.2 I.
fn spd(p: usize, raw: &[f64]) -> DMatrix<f64> {
    let a = DMatrix::from_fn(p, p, |i, j| raw[(i * p + j) % raw.len()]);
    &a * a.transpose() / p as f64 + DMatrix::identity(p, p) * 0.2
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn stable_system(angle: f64, damping: f64) -> LinearGaussian {
    let (s, c) = angle.sin_cos();
    let f = DMatrix::from_row_slice(2, 2, &[c, -s, s, c]) * damping;
    LinearGaussian::stationary(f, DMatrix::identity(2, 2) * 0.1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// μ(0) = 1, σ(0) = η, μ(1) = η; μ decreasing, σ increasing; VP: μ² + σ² = 1 + η².
    #[test]
    fn schedule_boundaries_and_monotonicity(
        log_eta in -4.0f64..-2.0, t1 in 0.0f64..1.0, dt in 1e-3f64..0.5, which in 0usize..3
    ) {
        let eta = 10f64.powf(log_eta);
        let s: Box<dyn NoiseSchedule> = match which {
            0 => Box::new(VpCosine { eta }),
            1 => Box::new(VpLinear { eta }),
            _ => Box::new(VpExp { eta }),
        };
        prop_assert!((s.mu(0.0) - 1.0).abs() < 1e-12);
        prop_assert!((s.sigma(0.0) - eta).abs() < 1e-9);
        prop_assert!((s.mu(1.0) - eta).abs() < 1e-9);
        let t2 = (t1 + dt).min(1.0);
        prop_assert!(s.mu(t2) < s.mu(t1));
        prop_assert!(s.sigma(t2) > s.sigma(t1));
        prop_assert!((s.mu(t1).powi(2) + s.sigma(t1).powi(2) - 1.0 - eta * eta).abs() < 1e-12);
    }

    /// ε ↔ score: s = −ε/σ and back; and the exact Gaussian ε gives the analytic score
    /// −(μ²Σ + σ²I)⁻¹ (x(t) − μ m).
    #[test]
    fn epsilon_score_conversions(
        raw in prop::collection::vec(-1.0f64..1.0, 16), x in prop::collection::vec(-3.0f64..3.0, 4),
        t in 0.02f64..0.98
    ) {
        let sched = cosine();
        let (mu, sigma) = (sched.mu(t), sched.sigma(t));
        for (&e, &s) in x.iter().zip(&raw) {
            prop_assert!((score_from_epsilon(epsilon_from_score(s, sigma), sigma) - s).abs() < 1e-12);
            prop_assert!((epsilon_from_score(score_from_epsilon(e, sigma), sigma) - e).abs() < 1e-12);
        }
        let cov = spd(4, &raw);
        let mean = DVector::from_fn(4, |i, _| raw[i] * 2.0);
        let g = GaussianEpsilon::new(TrajectoryShape::new(2, 2), mean.clone(), cov.clone(), sched).unwrap();
        let xt = DVector::from_column_slice(&x);
        let c = &cov * mu * mu + DMatrix::identity(4, 4) * sigma * sigma;
        let score = -c.try_inverse().unwrap() * (&xt - &mean * mu);
        let from_eps = g.epsilon_host(&xt, t).map(|e| score_from_epsilon(e, sigma));
        prop_assert!(max_rel(from_eps.as_slice(), score.as_slice()) < 1e-9);
    }

    /// Tweedie's formula with the exact ε (tensor path) equals the analytic Gaussian posterior
    /// mean E[x | x(t)] = m + μ Σ (μ²Σ + σ²I)⁻¹ (x(t) − μ m).
    #[test]
    fn tweedie_matches_gaussian_posterior_mean(
        raw in prop::collection::vec(-1.0f64..1.0, 36), x in prop::collection::vec(-2.0f64..2.0, 6),
        t in 0.05f64..0.95
    ) {
        let sched = cosine();
        let (mu, sigma) = (sched.mu(t), sched.sigma(t));
        let cov = spd(6, &raw);
        let mean = DVector::from_fn(6, |i, _| raw[i + 6]);
        let g = GaussianEpsilon::new(TrajectoryShape::new(3, 2), mean.clone(), cov.clone(), sched).unwrap();
        let device = default_device();
        let eps = to_host(EpsilonModel::<B>::epsilon(&g, from_host::<B, 3>(&x, [1, 3, 2], &device), t));
        let x_hat: Vec<f64> = x.iter().zip(&eps).map(|(&a, &e)| tweedie(a, e, mu, sigma)).collect();
        let xt = DVector::from_column_slice(&x);
        let c = &cov * mu * mu + DMatrix::identity(6, 6) * sigma * sigma;
        let expect = &mean + &cov * mu * c.try_inverse().unwrap() * (&xt - &mean * mu);
        // f32 ε amplified by σ/μ in Tweedie
        prop_assert!(max_rel(&x_hat, expect.as_slice()) < 2e-5 * (1.0 + sigma / mu));
    }

    /// fold ∘ unfold is the identity, and fold selects the outputs of Algorithm 2: state i < k
    /// from window 0 position i, middle states from the centre of the window centred on them,
    /// the last k from the last window.
    #[test]
    fn fold_unfold_consistency(n in 1usize..4, k in 1usize..4, extra in 0usize..6, d in 1usize..4) {
        let len = 2 * k + 1 + extra;
        let blanket = TemporalWindow::new(k).unwrap();
        let device = default_device();
        let values: Vec<f64> = (0..n * len * d).map(|i| i as f64).collect();
        let x = from_host::<B, 3>(&values, [n, len, d], &device);
        let windows = MarkovBlanket::<B>::unfold(&blanket, x);
        let nw = MarkovBlanket::<B>::num_windows(&blanket, TrajectoryShape::new(len, d));
        prop_assert_eq!(windows.dims(), [nw * n, 2 * k + 1, d]);
        let back = to_host(MarkovBlanket::<B>::fold(&blanket, windows, TrajectoryShape::new(len, d)));
        prop_assert_eq!(&back, &values);
        // tag each window output with (window, position) and check the selection
        let w = 2 * k + 1;
        let tags: Vec<f64> = (0..nw * n * w * d)
            .map(|i| { let j = i / (n * w * d); let p = (i / d) % w; (j * 100 + p) as f64 })
            .collect();
        let folded = to_host(MarkovBlanket::<B>::fold(&blanket, from_host::<B, 3>(&tags, [nw * n, w, d], &device), TrajectoryShape::new(len, d)));
        for i in 0..len {
            let (j, p) = if i < k { (0, i) } else if i >= len - k { (nw - 1, i - (nw - 1)) } else { (i - k, k) };
            prop_assert_eq!(folded[i * d], (j * 100 + p) as f64, "state {}", i);
        }
    }

    /// Strided windows (`TemporalWindow::strided`): window j of each trajectory holds states
    /// `starts[j]..starts[j] + w`, fold ∘ unfold is the identity, every state takes the output
    /// of a window it is most central in, a middle state keeps ≥ k − ⌊s/2⌋ states on either
    /// side, and with s = 1 the picks are Algorithm 2's.
    #[test]
    fn strided_fold_unfold_consistency(n in 1usize..4, k in 1usize..4, extra in 0usize..12, d in 1usize..3, s in 0usize..7) {
        let w = 2 * k + 1;
        let stride = 1 + s % w;
        let len = w + extra;
        let blanket = TemporalWindow::strided(k, stride).unwrap();
        let shape = TrajectoryShape::new(len, d);
        let device = default_device();
        let values: Vec<f64> = (0..n * len * d).map(|i| i as f64).collect();
        let windows = MarkovBlanket::<B>::unfold(&blanket, from_host::<B, 3>(&values, [n, len, d], &device));
        let starts = blanket.starts(len);
        let nw = MarkovBlanket::<B>::num_windows(&blanket, shape);
        prop_assert_eq!(nw, starts.len());
        prop_assert_eq!(windows.dims(), [nw * n, w, d]);
        let host = to_host(windows.clone());
        for (j, &start) in starts.iter().enumerate() {
            for m in 0..n {
                for o in 0..w {
                    prop_assert_eq!(host[((j * n + m) * w + o) * d], values[(m * len + start + o) * d]);
                }
            }
        }
        prop_assert_eq!(&to_host(MarkovBlanket::<B>::fold(&blanket, windows, shape)), &values);
        let picks = blanket.picks(len);
        for (i, &pick) in picks.iter().enumerate() {
            let (j, o) = (pick / w, pick % w);
            prop_assert_eq!(starts[j] + o, i);
            for (jj, &start) in starts.iter().enumerate().filter(|&(_, &start)| start <= i && i < start + w) {
                let distance = (i - start).abs_diff(k);
                prop_assert!(o.abs_diff(k) < distance || (o.abs_diff(k) == distance && j <= jj), "state {} offset {}", i, o);
            }
            if i >= k && i + k < len {
                prop_assert!(o.abs_diff(k) <= stride / 2, "state {} offset {}", i, o);
            }
            if stride == 1 {
                let expect = if i < k { (0, i) } else if i >= len - k { (nw - 1, i - (nw - 1)) } else { (i - k, k) };
                prop_assert_eq!((j, o), expect);
            }
        }
    }

    /// With one window covering the chain (L = 2k+1), the composed score is the exact
    /// full-trajectory score.
    #[test]
    fn composed_equals_exact_for_one_window(
        angle in 0.0f64..1.5, damping in 0.3f64..0.97, k in 1usize..4, t in 0.02f64..0.98,
        x in prop::collection::vec(-2.0f64..2.0, 2 * 7 * 2)
    ) {
        let sys = stable_system(angle, damping);
        let len = 2 * k + 1;
        let device = default_device();
        let composed = Composed::new::<B>(sys.window_epsilon(k, cosine()).unwrap(), TemporalWindow::new(k).unwrap()).unwrap();
        let full = sys.prior_epsilon(len, cosine()).unwrap();
        let xt = from_host::<B, 3>(&x[..2 * len * 2], [2, len, 2], &device);
        let a = to_host(EpsilonModel::<B>::epsilon(&composed, xt.clone(), t));
        let b = to_host(EpsilonModel::<B>::epsilon(&full, xt, t));
        prop_assert!(max_rel(&a, &b) < 1e-5);
    }
}

/// For a first-order chain the composed score's error against the exact full-trajectory score
/// shrinks as k grows (pseudo-blanket approximation, paper eq. 13), at every noise level.
#[test]
fn composed_error_shrinks_with_k() {
    let device = default_device();
    let len = 15;
    for (angle, damping) in [(0.3, 0.95), (1.0, 0.9), (0.1, 0.8)] {
        let sys = stable_system(angle, damping);
        let full = sys.prior_epsilon(len, cosine()).unwrap();
        let mut noise = NoiseSource::new(3);
        let xt: Tensor<B, 3> = noise.normal([64, len, 2], &device);
        for t in [0.2, 0.5, 0.8] {
            let exact = to_host(EpsilonModel::<B>::epsilon(&full, xt.clone(), t));
            let norm: f64 = exact.iter().map(|v| v * v).sum::<f64>().sqrt();
            let errors: Vec<f64> = (1..=4)
                .map(|k| {
                    let c = Composed::new::<B>(
                        sys.window_epsilon(k, cosine()).unwrap(),
                        TemporalWindow::new(k).unwrap(),
                    )
                    .unwrap();
                    let a = to_host(EpsilonModel::<B>::epsilon(&c, xt.clone(), t));
                    a.iter()
                        .zip(&exact)
                        .map(|(u, v)| (u - v).powi(2))
                        .sum::<f64>()
                        .sqrt()
                        / norm
                })
                .collect();
            for w in errors.windows(2) {
                assert!(
                    w[1] < w[0] || w[1] < 1e-5,
                    "system ({angle}, {damping}), t = {t}: errors by k = {errors:?} do not shrink"
                );
            }
        }
    }
}

/// Exact Gaussian facts for the likelihood identities below.
struct Setup {
    g: GaussianEpsilon,
    cov: DMatrix<f64>,
    mean: DVector<f64>,
    h: DMatrix<f64>,
    std: Vec<f64>,
    y: Vec<f64>,
    obs: Pick,
}

fn setup(raw: &[f64]) -> Setup {
    // trajectories of L = 4 states of D = 2; observe component 0 at states 0 and 3
    let shape = TrajectoryShape::new(4, 2);
    let cov = spd(8, raw);
    let mean = DVector::from_fn(8, |i, _| raw[i] * 0.5);
    let obs = Pick::new(shape, vec![0, 3], vec![0], 0.3).unwrap();
    let h = sda::observe::linear_matrix::<B>(&obs, &default_device()).unwrap();
    Setup {
        g: GaussianEpsilon::new(shape, mean.clone(), cov.clone(), cosine()).unwrap(),
        cov,
        mean,
        h,
        std: vec![0.3, 0.3],
        y: vec![raw[3], -raw[5]],
        obs,
    }
}

fn log_normal(y: &DVector<f64>, m: &DVector<f64>, c: &DMatrix<f64>) -> f64 {
    let r = y - m;
    let k = y.len() as f64;
    -0.5 * (r.dot(&(c.clone().try_inverse().unwrap() * &r))
        + c.determinant().ln()
        + k * (2.0 * std::f64::consts::PI).ln())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// For linear A and a Gaussian prior, the perturbed likelihood N(y | A x̂, Σ_y + A C Aᵀ)
    /// with the exact C = Cov[x | x(t)] = (σ/μ)² (I − σ ∂ε/∂x(t)) — the Jacobian of the
    /// library's ε taken by autodiff — equals the exact p(y | x(t)) from the joint Gaussian of
    /// (y, x(t)).
    #[test]
    fn perturbed_likelihood_with_exact_covariance_is_exact(
        raw in prop::collection::vec(-1.0f64..1.0, 64), x in prop::collection::vec(-2.0f64..2.0, 8),
        t in 0.05f64..0.9
    ) {
        let s = setup(&raw);
        let sched = cosine();
        let (mu, sigma) = (sched.mu(t), sched.sigma(t));
        let device = default_device();
        // Jacobian of ε by autodiff, one row per output coordinate
        let mut jac = DMatrix::zeros(8, 8);
        for i in 0..8 {
            let xt = from_host::<B, 3>(&x, [1, 4, 2], &device).require_grad();
            let eps = EpsilonModel::<B>::epsilon(&s.g, xt.clone(), t);
            let mut sel = vec![0.0; 8];
            sel[i] = 1.0;
            let grads = (eps * from_host::<B, 3>(&sel, [1, 4, 2], &device)).sum().backward();
            let row = to_host(xt.grad(&grads).unwrap());
            for j in 0..8 { jac[(i, j)] = row[j]; }
        }
        let eps = to_host(EpsilonModel::<B>::epsilon(&s.g, from_host::<B, 3>(&x, [1, 4, 2], &device), t));
        let x_hat = DVector::from_iterator(8, x.iter().zip(&eps).map(|(&a, &e)| tweedie(a, e, mu, sigma)));
        let cov_post = (DMatrix::identity(8, 8) - jac * sigma) * (sigma / mu).powi(2);
        let r = DMatrix::from_diagonal(&DVector::from_iterator(2, s.std.iter().map(|v| v * v)));
        let y = DVector::from_column_slice(&s.y);
        let approx = log_normal(&y, &(&s.h * x_hat), &(&r + &s.h * cov_post * s.h.transpose()));
        // exact: condition the joint Gaussian of (y, x(t))
        let xt = DVector::from_column_slice(&x);
        let c = &s.cov * mu * mu + DMatrix::identity(8, 8) * sigma * sigma;
        let ci = c.try_inverse().unwrap();
        let cross = &s.h * &s.cov * mu;
        let m = &s.h * &s.mean + &cross * &ci * (&xt - &s.mean * mu);
        let v = &s.h * &s.cov * s.h.transpose() + &r - &cross * &ci * cross.transpose();
        let exact = log_normal(&y, &m, &v);
        prop_assert!((approx - exact).abs() < 1e-3 * (1.0 + exact.abs()) * (1.0 + sigma / mu),
            "approx {approx} exact {exact}");
    }

    /// The guided ε equals the prior ε − σ(t)·s_y, with s_y the closed-form gradient of the
    /// SDA surrogate: s_y = Jᵀ Hᵀ V⁻¹ (y − H x̂), J = ∂x̂/∂x(t) = (I − σ M_t)/μ,
    /// V = Σ_y + (σ/μ)² γ I; and DPS's s_y = 2ζ Jᵀ Hᵀ r / ‖r‖ per trajectory.
    #[test]
    fn guided_epsilon_is_prior_minus_sigma_likelihood_score(
        raw in prop::collection::vec(-1.0f64..1.0, 64), x in prop::collection::vec(-2.0f64..2.0, 16),
        t in 0.05f64..0.9, gamma in 1e-3f64..1.0
    ) {
        let s = setup(&raw);
        let sched = cosine();
        let (mu, sigma) = (sched.mu(t), sched.sigma(t));
        let device = default_device();
        let m_t = s.g.epsilon_matrix(t);
        let jac = (DMatrix::identity(8, 8) - &m_t * sigma) / mu;
        let y = DVector::from_column_slice(&s.y);
        let sda = Guided::<B, _, _, _>::new(&s.g, &s.obs, &s.y, SdaGaussian::new(gamma).unwrap(), &device).unwrap();
        let dps = Guided::<B, _, _, _>::new(&s.g, &s.obs, &s.y, Dps { zeta: 0.7 }, &device).unwrap();
        let xt = from_host::<B, 3>(&x, [2, 4, 2], &device);
        let got_sda = to_host(sda.epsilon(xt.clone(), t));
        let got_dps = to_host(dps.epsilon(xt, t));
        let v = 0.09 + (sigma / mu).powi(2) * gamma;
        for n in 0..2 {
            let xn = DVector::from_column_slice(&x[n * 8..(n + 1) * 8]);
            let eps = s.g.epsilon_host(&xn, t);
            let x_hat = (&xn - &eps * sigma) / mu;
            let r = &y - &s.h * &x_hat;
            let s_sda = jac.transpose() * s.h.transpose() * (&r / v);
            let s_dps = jac.transpose() * s.h.transpose() * &r * (2.0 * 0.7 / r.norm());
            let want_sda = &eps - s_sda * sigma;
            let want_dps = &eps - s_dps * sigma;
            let tol = 1e-4 * (1.0 + sigma / mu);
            prop_assert!(max_rel(&got_sda[n * 8..(n + 1) * 8], want_sda.as_slice()) < tol);
            prop_assert!(max_rel(&got_dps[n * 8..(n + 1) * 8], want_dps.as_slice()) < tol);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// The exact law of DDIM samples ([`sda::experiments::oracle::ddim_law`], read off the ε by probing and
    /// propagated densely) equals the scalar recursion in Σ's eigenbasis `Σ = U Λ Uᵀ`: there the
    /// exact ε acts coordinate by coordinate, `ε_j = σ/(μ²λ_j + σ²) (y_j − μ a_j)` with
    /// `y = Uᵀ x`, `a = Uᵀ m`, so each step is `y_j ← g_j y_j + h_j` and, from `y ~ N(0, I)`,
    /// `mean_j ← g_j mean_j + h_j`, `var_j ← g_j² var_j`.
    #[test]
    fn ddim_law_matches_the_eigenbasis_recursion(
        raw in proptest::collection::vec(-1.0f64..1.0, 9),
        m in proptest::collection::vec(-2.0f64..2.0, 6),
        steps in 4usize..40,
        which in 0usize..3,
    ) {
        use nalgebra::SymmetricEigen;
        use sda::experiments::oracle::ddim_law;
        let device = default_device();
        let schedule: Arc<dyn NoiseSchedule> = match which {
            0 => Arc::new(VpCosine::default()),
            1 => Arc::new(VpLinear::default()),
            _ => Arc::new(VpExp::default()),
        };
        let shape = TrajectoryShape::new(3, 2);
        let cov = spd(6, &raw);
        let mean = DVector::from_vec(m);
        let eps = GaussianEpsilon::new(shape, mean.clone(), cov.clone(), schedule.clone()).unwrap();
        let (law_mean, law_cov) = ddim_law::<B>(&eps, shape, steps, &device).unwrap();

        let eig = SymmetricEigen::new(cov);
        let a = eig.eigenvectors.transpose() * &mean;
        let mut my = DVector::<f64>::zeros(6);
        let mut vy = DVector::<f64>::from_element(6, 1.0);
        for (t, t_next) in sda::sampler::TimeGrid::Uniform.steps(schedule.as_ref(), steps) {
            let (r, c) = PredictorCorrector::predictor_coefficients(schedule.as_ref(), t, t_next);
            let (mu, sigma) = (schedule.mu(t), schedule.sigma(t));
            for j in 0..6 {
                let d = sigma / (mu * mu * eig.eigenvalues[j] + sigma * sigma);
                let g = r + c * d;
                my[j] = g * my[j] - c * d * mu * a[j];
                vy[j] *= g * g;
            }
        }
        let u = &eig.eigenvectors;
        let want_mean = u * my;
        let want_cov = u * DMatrix::from_diagonal(&vy) * u.transpose();
        prop_assert!(max_rel(law_mean.as_slice(), want_mean.as_slice()) < 1e-4,
            "{law_mean} vs {want_mean}");
        prop_assert!(max_rel(law_cov.as_slice(), want_cov.as_slice()) < 1e-4,
            "{law_cov} vs {want_cov}");
    }
}
