//! Weak-constraint 4D-Var over one window (Trémolet 2006; the state formulation of
//! Fisher et al. 2005): the model may err by the transition noise, so the control is the whole
//! trajectory `x_{1:L}` and the cost
//!
//! `J(x) = ½ |x_1 − x_b|²_{B⁻¹} + ½ Σ_i |x_{i+1} − M(x_i)|²_{Q⁻¹} + ½ Σ_{i observed} |y_i − H_i(x_i)|²_{R_i⁻¹}`
//!
//! is `−log p(x_{1:L} | y)` up to a constant when the prior of `x_1` is `N(x_b, B)` and the
//! transitions are `x_{i+1} = M(x_i) + N(0, Q)` — the variant used on a stochastic model such as
//! the paper's Lorenz-63. `x_b` and `B` are the mean and covariance of the window's background
//! draws, `Q` the model's noise covariance ([`TangentLinear::noise_variance`]) or a given one.
//! The minimiser is found by L-BFGS (`argmin`; Liu & Nocedal 1989) from the background mean run
//! through the model, the gradient by the adjoint model. The samples are the minimiser's Laplace
//! posterior `N(x*, H⁻¹)`, `H` the Gauss–Newton Hessian of `J` at `x*` (block tridiagonal,
//! formed densely: this smoother is for windows of a few thousand values).

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use super::window::{Window, WindowSmoother};
use crate::dynamics::TangentLinear;
use crate::{Error, Result};

/// The settings of a [`WeakVar4d`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeakVar4dSettings {
    /// The variance of each component of the model error (`Q = model_noise · I`); by default
    /// the model's own transition noise.
    #[serde(default)]
    pub model_noise: Option<f64>,
    /// L-BFGS iterations at most.
    #[serde(default = "default_iterations")]
    pub iterations: u64,
    /// Draw the samples from the Laplace posterior (`true`, the default), or return the
    /// minimiser as every sample (`false`).
    #[serde(default = "yes")]
    pub laplace: bool,
}

fn default_iterations() -> u64 {
    1000
}

fn yes() -> bool {
    true
}

impl Default for WeakVar4dSettings {
    fn default() -> Self {
        Self {
            model_noise: None,
            iterations: default_iterations(),
            laplace: true,
        }
    }
}

/// The most values `L·n` of a window whose Laplace posterior is formed (its dense Hessian then
/// holds at most 8 192² doubles, 512 MiB).
pub const MAX_LAPLACE_VALUES: usize = 8192;

/// Weak-constraint 4D-Var over one window, with its Laplace posterior.
#[derive(Debug, Clone)]
pub struct WeakVar4d {
    settings: WeakVar4dSettings,
}

impl WeakVar4d {
    /// The smoother; an error for a model noise that is not positive and finite, or no
    /// iterations.
    pub fn new(settings: WeakVar4dSettings) -> Result<Self> {
        if let Some(q) = settings.model_noise {
            if !(q.is_finite() && q > 0.0) {
                return Err(Error::Invalid(format!(
                    "model_noise (the model error's variance) must be positive and finite, got {q}"
                )));
            }
        }
        if settings.iterations == 0 {
            return Err(Error::Invalid("iterations must be at least 1".into()));
        }
        Ok(Self { settings })
    }
}

/// The cost of one window over the stacked trajectory `[x_1; …; x_L]`.
struct Cost<'a> {
    model: &'a dyn TangentLinear,
    window: &'a Window<'a>,
    mean: DVector<f64>,
    /// Cholesky factor of B.
    b: nalgebra::Cholesky<f64, nalgebra::Dyn>,
    /// `Q`'s diagonal.
    q: Vec<f64>,
}

impl Cost<'_> {
    fn n(&self) -> usize {
        self.mean.len()
    }

    fn state<'x>(&self, x: &'x [f64], i: usize) -> &'x [f64] {
        &x[i * self.n()..(i + 1) * self.n()]
    }

    /// `J(x)` and its gradient.
    fn value_and_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let n = self.n();
        let mut g = vec![0.0; x.len()];
        let d0 = DVector::from_column_slice(self.state(x, 0)) - &self.mean;
        let b_inv_d0 = self.b.solve(&d0);
        let mut j = 0.5 * d0.dot(&b_inv_d0);
        g[..n].copy_from_slice(b_inv_d0.as_slice());
        for i in 0..self.window.len() {
            let xi = self.state(x, i);
            if i + 1 < self.window.len() {
                let m = self.model.mean_step(xi);
                let u: Vec<f64> = self
                    .state(x, i + 1)
                    .iter()
                    .zip(&m)
                    .zip(&self.q)
                    .map(|((next, m), q)| (next - m) / q)
                    .collect();
                j += 0.5 * u.iter().zip(&self.q).map(|(u, q)| u * u * q).sum::<f64>();
                for (g, u) in g[(i + 1) * n..(i + 2) * n].iter_mut().zip(&u) {
                    *g += u;
                }
                let back = self.model.adjoint(xi, &u);
                for (g, b) in g[i * n..(i + 1) * n].iter_mut().zip(&back) {
                    *g -= b;
                }
            }
            if let Some((h, y)) = &self.window.observations[i] {
                let hx = h.observe(xi);
                let v: Vec<f64> = y
                    .iter()
                    .zip(&hx)
                    .zip(h.sigma())
                    .map(|((y, hx), s)| (y - hx) / (s * s))
                    .collect();
                j += 0.5
                    * v.iter()
                        .zip(h.sigma())
                        .map(|(v, s)| v * v * s * s)
                        .sum::<f64>();
                let back = h.jacobian(xi).transpose() * DVector::from_vec(v);
                for (g, b) in g[i * n..(i + 1) * n].iter_mut().zip(back.iter()) {
                    *g -= b;
                }
            }
        }
        (j, g)
    }

    /// The Gauss–Newton Hessian of `J` at `x` (dense, L·n square).
    fn hessian(&self, x: &[f64]) -> Result<DMatrix<f64>> {
        let (n, len) = (self.n(), self.window.len());
        let mut hess = DMatrix::zeros(n * len, n * len);
        let b_inv = self.b.inverse();
        add_block(&mut hess, (0, 0), &b_inv);
        let q_inv =
            DMatrix::from_diagonal(&DVector::from_iterator(n, self.q.iter().map(|q| 1.0 / q)));
        for i in 0..len {
            let xi = self.state(x, i);
            if i + 1 < len {
                let mut m = DMatrix::zeros(n, n);
                let mut e = vec![0.0; n];
                for j in 0..n {
                    e[j] = 1.0;
                    m.set_column(j, &DVector::from_vec(self.model.tangent_linear(xi, &e)));
                    e[j] = 0.0;
                }
                let mt_q = m.transpose() * &q_inv;
                add_block(&mut hess, (i * n, i * n), &(&mt_q * &m));
                add_block(&mut hess, (i * n, (i + 1) * n), &-&mt_q);
                add_block(&mut hess, ((i + 1) * n, i * n), &-mt_q.transpose());
                add_block(&mut hess, ((i + 1) * n, (i + 1) * n), &q_inv);
            }
            if let Some((h, _)) = &self.window.observations[i] {
                let mut jac = h.jacobian(xi);
                for (r, s) in h.sigma().iter().enumerate() {
                    jac.row_mut(r).scale_mut(1.0 / s);
                }
                add_block(&mut hess, (i * n, i * n), &(jac.transpose() * &jac));
            }
        }
        if hess.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(
                "weak-constraint 4D-Var: the Hessian is not finite".into(),
            ));
        }
        Ok(hess)
    }
}

/// `h[r.., c..] += m`.
fn add_block(h: &mut DMatrix<f64>, (r, c): (usize, usize), m: &DMatrix<f64>) {
    let mut view = h.view_mut((r, c), m.shape());
    view += m;
}

impl CostFunction for &Cost<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.value_and_gradient(x).0)
    }
}

impl Gradient for &Cost<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.value_and_gradient(x).1)
    }
}

impl WindowSmoother for WeakVar4d {
    fn describe(&self) -> String {
        let q = match self.settings.model_noise {
            Some(q) => format!("Q = {q} I"),
            None => "Q = the model's noise".into(),
        };
        let laplace = if self.settings.laplace {
            ", Laplace samples"
        } else {
            ", the minimiser"
        };
        format!("weak-constraint 4D-Var, {q}{laplace}")
    }

    fn smooth(&self, window: &Window, samples: usize, rng: &mut dyn RngCore) -> Result<Vec<f64>> {
        window.check()?;
        let model = window.model.linearised().ok_or_else(|| {
            Error::Invalid(format!(
                "weak-constraint 4D-Var needs the tangent-linear model and adjoint of {}, which \
                 it does not provide",
                window.model.name()
            ))
        })?;
        let (n, draws) = window.background.shape();
        if self.settings.laplace && n * window.len() > MAX_LAPLACE_VALUES {
            return Err(Error::Invalid(format!(
                "weak-constraint 4D-Var's Laplace samples form the dense Hessian of the window's \
                 {} × {n} = {} values, more than {MAX_LAPLACE_VALUES}; give laplace = false for \
                 the minimiser alone",
                window.len(),
                n * window.len()
            )));
        }
        let q = match self.settings.model_noise {
            Some(q) => vec![q; n],
            None => model.noise_variance().ok_or_else(|| {
                Error::Invalid(format!(
                    "weak-constraint 4D-Var takes a diagonal model-error covariance; the noise \
                     of {} is correlated across components: give model_noise",
                    window.model.name()
                ))
            })?,
        };
        if q.len() != n || q.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            let bad = q.iter().filter(|v| !(v.is_finite() && **v > 0.0)).count();
            return Err(Error::Invalid(format!(
                "weak-constraint 4D-Var needs a positive model-error variance for every \
                 component; the transition noise of {} has {bad} of {} components without one \
                 (a deterministic model): give model_noise",
                window.model.name(),
                q.len()
            )));
        }
        // the background: mean and covariance of the draws (a relative floor of 1e-9 keeps
        // B positive definite when the draws span fewer dimensions than n)
        let mean = window.background.column_mean();
        let mut anomalies = window.background.clone();
        for mut col in anomalies.column_iter_mut() {
            col -= &mean;
        }
        let mut b = &anomalies * anomalies.transpose() / (draws as f64 - 1.0);
        let floor = 1e-9 * b.trace() / n as f64;
        for i in 0..n {
            b[(i, i)] += floor.max(f64::MIN_POSITIVE);
        }
        let b = b.cholesky().ok_or_else(|| {
            Error::Numerical("the background covariance is not positive definite".into())
        })?;
        let cost = Cost {
            model,
            window,
            mean: mean.clone(),
            b,
            q,
        };
        // first guess: the background mean through the model
        let mut x0 = Vec::with_capacity(n * window.len());
        let mut state = mean.as_slice().to_vec();
        for _ in 0..window.len() {
            x0.extend_from_slice(&state);
            state = model.mean_step(&state);
        }
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 20)
            .with_tolerance_grad(1e-10)
            .map_err(|e| Error::Numerical(format!("weak-constraint 4D-Var: {e}")))?;
        let result = Executor::new(&cost, solver)
            .configure(|s| s.param(x0).max_iters(self.settings.iterations))
            .run()
            .map_err(|e| {
                Error::Numerical(format!("weak-constraint 4D-Var minimisation failed: {e}"))
            })?;
        let best = result
            .state
            .get_best_param()
            .cloned()
            .ok_or_else(|| Error::Numerical("weak-constraint 4D-Var: no minimiser".into()))?;
        if best.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(
                "weak-constraint 4D-Var: the minimiser is not finite".into(),
            ));
        }
        if !self.settings.laplace {
            return Ok(best.repeat(samples));
        }
        let chol = cost.hessian(&best)?.cholesky().ok_or_else(|| {
            Error::Numerical(
                "weak-constraint 4D-Var: the Gauss–Newton Hessian is not positive definite".into(),
            )
        })?;
        let l = chol.l();
        let dim = best.len();
        let mut out = Vec::with_capacity(samples * dim);
        for _ in 0..samples {
            let z = DVector::from_fn(dim, |_, _| StandardNormal.sample(&mut *rng));
            // x* + L⁻ᵀ z has covariance (L Lᵀ)⁻¹ = H⁻¹
            let u = l.tr_solve_lower_triangular(&z).ok_or_else(|| {
                Error::Numerical("weak-constraint 4D-Var: singular Cholesky factor".into())
            })?;
            out.extend(best.iter().zip(u.iter()).map(|(x, u)| x + u));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{GaussianObservation, PartialIdentity};
    use crate::systems::lorenz63::Lorenz63;
    use rand::SeedableRng;

    fn window_of<'a>(
        model: &'a Lorenz63,
        obs: &'a PartialIdentity,
        background: &'a DMatrix<f64>,
    ) -> Window<'a> {
        let observations = (0..6)
            .map(|i| {
                (i % 2 == 0).then(|| {
                    (
                        obs as &dyn GaussianObservation,
                        vec![(i as f64 * 0.9).sin() * 5.0],
                    )
                })
            })
            .collect();
        Window {
            model,
            observations,
            background,
        }
    }

    /// The adjoint gradient of the window cost against central finite differences.
    #[test]
    fn the_gradient_matches_finite_differences() {
        let model = Lorenz63::default();
        let obs = PartialIdentity::new(3, vec![0], 0.5).unwrap();
        let background = DMatrix::from_fn(3, 8, |i, j| ((i * 7 + j * 3) % 5) as f64 - 2.0);
        let window = window_of(&model, &obs, &background);
        let b = {
            let mut b = DMatrix::<f64>::identity(3, 3) * 2.0;
            b[(0, 1)] = 0.5;
            b[(1, 0)] = 0.5;
            b.cholesky().unwrap()
        };
        let cost = Cost {
            model: &model,
            window: &window,
            mean: DVector::from_vec(vec![0.5, -1.0, 20.0]),
            b,
            q: vec![0.025; 3],
        };
        let x: Vec<f64> = (0..18).map(|i| (i as f64 * 0.37).cos() * 3.0).collect();
        let (_, g) = cost.value_and_gradient(&x);
        let eps = 1e-6;
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let fd = (cost.value_and_gradient(&plus).0 - cost.value_and_gradient(&minus).0)
                / (2.0 * eps);
            assert!(
                (fd - g[i]).abs() <= 1e-5 * fd.abs().max(1.0),
                "{i}: {fd} vs {}",
                g[i]
            );
        }
    }

    /// At a model trajectory that meets its observations exactly (every residual zero) the
    /// Gauss–Newton Hessian is the Hessian of the cost: it matches central differences of the
    /// adjoint gradient.
    #[test]
    fn the_gauss_newton_hessian_is_exact_where_the_residuals_vanish() {
        let model = Lorenz63::default();
        let obs = PartialIdentity::new(3, vec![0, 2], 0.5).unwrap();
        let background = DMatrix::from_fn(3, 8, |i, j| ((i * 7 + j * 3) % 5) as f64 - 2.0);
        let mut x = vec![1.0, 3.0, 20.0];
        for i in 0..5 {
            let next = model.mean_step(&x[i * 3..(i + 1) * 3]);
            x.extend(next);
        }
        let observations = (0..6)
            .map(|i| {
                (i % 2 == 0).then(|| {
                    (
                        &obs as &dyn GaussianObservation,
                        obs.observe(&x[i * 3..(i + 1) * 3]),
                    )
                })
            })
            .collect();
        let window = Window {
            model: &model,
            observations,
            background: &background,
        };
        let cost = Cost {
            model: &model,
            window: &window,
            mean: DVector::from_column_slice(&x[..3]),
            b: DMatrix::<f64>::identity(3, 3).cholesky().unwrap(),
            q: vec![0.025; 3],
        };
        let (j, g) = cost.value_and_gradient(&x);
        assert!(j.abs() < 1e-20 && g.iter().all(|v| v.abs() < 1e-9));
        let hess = cost.hessian(&x).unwrap();
        let eps = 1e-6;
        for c in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[c] += eps;
            minus[c] -= eps;
            let (gp, gm) = (
                cost.value_and_gradient(&plus).1,
                cost.value_and_gradient(&minus).1,
            );
            for r in 0..x.len() {
                let fd = (gp[r] - gm[r]) / (2.0 * eps);
                assert!(
                    (fd - hess[(r, c)]).abs() <= 1e-4 * fd.abs().max(1.0),
                    "({r}, {c}): {fd} vs {}",
                    hess[(r, c)]
                );
            }
        }
        assert!(WeakVar4d::new(WeakVar4dSettings {
            model_noise: Some(-1.0),
            ..Default::default()
        })
        .is_err());
    }

    /// The smoother returns samples of the window's shape around a minimiser that fits the
    /// observations better than the first guess.
    #[test]
    fn samples_have_the_window_s_shape() {
        let model = Lorenz63::default();
        let obs = PartialIdentity::new(3, vec![0], 0.5).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let background = DMatrix::from_fn(3, 64, |i, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            [0.0, 0.0, 25.0][i] + 3.0 * z
        });
        let window = window_of(&model, &obs, &background);
        let smoother = WeakVar4d::new(WeakVar4dSettings::default()).unwrap();
        let x = smoother.smooth(&window, 16, &mut rng).unwrap();
        assert_eq!(x.len(), 16 * 6 * 3);
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
