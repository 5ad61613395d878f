//! Strong-constraint 4D-Var cycled over sliding windows (Talagrand & Courtier 1987; the cycling
//! of DAPPER's `Var4D`, the same as its iterative ensemble smoother's: Bocquet & Sakov 2013).
//!
//! A window spans the last `lag` observation cycles. At each observation time the control is
//! the state at the window's start, written `x = x_b + B^{1/2} w` about the background `x_b`
//! (the previous window's smoothed start moved one cycle on); the newest observation `y` is
//! assimilated by minimising
//!
//! `J(w) = ½ |w|² + ½ |R^{-1/2} (y − H(M_{0→s}(x_b + B^{1/2} w)))|²`,
//!
//! `M_{0→s}` the model over the window's s steps, in the **incremental** form of Courtier,
//! Thépaut & Hollingsworth (1994): each outer loop linearises the model and `H` about the
//! current trajectory and minimises the quadratic cost of the increment δw,
//! `½ |w + δw|² + ½ |d − Y δw|²` (`d` the normalised innovation, `Y = R^{-1/2} H' M' B^{1/2}`
//! applied with the tangent-linear model, `Yᵀ` with the adjoint), with L-BFGS (`argmin`; Liu &
//! Nocedal 1989) — so the outer loops are Gauss–Newton steps, as DAPPER's, without forming the
//! Hessian. The analysis is the minimiser's forecast to the observation time; its variances are
//! those of the Gauss–Newton posterior `X (I + YᵀY)⁻¹ Xᵀ`, `X = M' B^{1/2}` (a diagnostic).
//! `B` is static: `background ×` the climatological covariance (DAPPER's default today), or
//! `background × I` (`covariance = "identity"`, DAPPER's default when its published 4D-Var
//! figures on `sakov2008` with Δt_obs = 0.2 were made; its code today gives those figures with
//! `B = 'eye'`).

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::{DMatrix, DVector};
use rand::RngCore;

use super::{Estimate, Filter, GaussianObservation, Prior};
use crate::dynamics::{Dynamics, TangentLinear};
use crate::{Error, Result};

/// The settings of [`Var4d`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Var4dSettings {
    /// Observation cycles per window (≥ 1).
    pub lag: usize,
    /// The scale of `B` (> 0): `B = background · C`, `C` chosen by `covariance`.
    pub background: f64,
    /// `C`: the climatological covariance (default) or the identity.
    #[serde(default)]
    pub covariance: Background,
    /// Outer (Gauss–Newton) loops at most per analysis.
    #[serde(default = "default_outer")]
    pub outer: usize,
    /// L-BFGS iterations at most per inner minimisation.
    #[serde(default = "default_inner")]
    pub inner: u64,
}

/// The shape `C` of a static background covariance `B = scale · C`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// The climatological covariance, estimated from the truth (as DAPPER does).
    #[default]
    Climatology,
    /// The identity.
    Identity,
}

impl Background {
    /// `scale · C` for the prior's climatology.
    pub fn covariance(self, prior: &Prior, scale: f64) -> DMatrix<f64> {
        match self {
            Self::Climatology => &prior.climate_cov * scale,
            Self::Identity => {
                let n = prior.climate_cov.nrows();
                DMatrix::identity(n, n) * scale
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Climatology => "climatology",
            Self::Identity => "I",
        }
    }
}

fn default_outer() -> usize {
    10
}

fn default_inner() -> u64 {
    100
}

/// Strong-constraint 4D-Var over sliding windows.
pub struct Var4d {
    settings: Var4dSettings,
    /// `B^{1/2}` (symmetric).
    b_half: DMatrix<f64>,
    /// The window's start state (background of the next analysis).
    anchor: Vec<f64>,
    /// Observation cycles in the current window.
    window: usize,
    /// Model steps since the last analysis (one cycle's length once the first is done).
    since: usize,
    /// Model steps per observation cycle.
    cycle: usize,
    /// The estimate: the analysis moved forward with the model.
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl Var4d {
    /// 4D-Var; an error for a lag of 0 or a scale that is not positive and finite.
    pub fn new(settings: Var4dSettings) -> Result<Self> {
        if settings.lag == 0 {
            return Err(Error::Invalid(
                "lag (observation cycles per window) must be at least 1".into(),
            ));
        }
        if !(settings.background.is_finite() && settings.background > 0.0) {
            return Err(Error::Invalid(format!(
                "background (the scale of the climatological covariance) must be positive and \
                 finite, got {}",
                settings.background
            )));
        }
        if settings.outer == 0 || settings.inner == 0 {
            return Err(Error::Invalid(
                "outer and inner (iterations) must be at least 1".into(),
            ));
        }
        Ok(Self {
            settings,
            b_half: DMatrix::zeros(0, 0),
            anchor: Vec::new(),
            window: 0,
            since: 0,
            cycle: 0,
            mean: Vec::new(),
            var: Vec::new(),
        })
    }
}

/// The window of one analysis: its trajectory from a control and the normalised residual at
/// its end (the outer loops' linearisation; its full cost is the tests' oracle).
struct WindowCost<'a> {
    model: &'a dyn TangentLinear,
    observation: &'a dyn GaussianObservation,
    y: &'a [f64],
    background: &'a [f64],
    b_half: &'a DMatrix<f64>,
    steps: usize,
}

impl WindowCost<'_> {
    /// The start state of control `w`.
    fn start(&self, w: &[f64]) -> Vec<f64> {
        let x = DVector::from_column_slice(self.background)
            + self.b_half * DVector::from_column_slice(w);
        x.as_slice().to_vec()
    }

    /// The states along the window from the start of `w` (s + 1 of them).
    fn trajectory(&self, w: &[f64]) -> Vec<Vec<f64>> {
        let mut states = vec![self.start(w)];
        for _ in 0..self.steps {
            let next = self
                .model
                .mean_step(states.last().expect("one state at least"));
            states.push(next);
        }
        states
    }

    /// `R^{-1/2} (H(x) − y)`.
    fn residual(&self, x: &[f64]) -> Vec<f64> {
        self.observation
            .observe(x)
            .iter()
            .zip(self.y)
            .zip(self.observation.sigma())
            .map(|((h, y), s)| (h - y) / s)
            .collect()
    }
}

/// The quadratic cost of an increment `δw` about a linearisation trajectory (one outer loop):
/// `½ |w + δw|² + ½ |d − Y δw|²`.
struct IncrementCost<'a> {
    model: &'a dyn TangentLinear,
    /// `R^{-1/2} H'` at the window's last state (p × n).
    h: DMatrix<f64>,
    /// The linearisation trajectory (s + 1 states).
    states: &'a [Vec<f64>],
    b_half: &'a DMatrix<f64>,
    /// The current control.
    w: &'a [f64],
    /// `R^{-1/2} (y − H(x_s))`.
    d: DVector<f64>,
}

impl IncrementCost<'_> {
    /// `Y δ = R^{-1/2} H' M' B^{1/2} δ` by the tangent-linear model.
    fn forward(&self, delta: &[f64]) -> DVector<f64> {
        let mut x = (self.b_half * DVector::from_column_slice(delta))
            .as_slice()
            .to_vec();
        for state in &self.states[..self.states.len() - 1] {
            x = self.model.tangent_linear(state, &x);
        }
        &self.h * DVector::from_vec(x)
    }

    /// `Yᵀ v` by the adjoint model.
    fn backward(&self, v: &DVector<f64>) -> DVector<f64> {
        let mut lambda = (self.h.transpose() * v).as_slice().to_vec();
        for state in self.states[..self.states.len() - 1].iter().rev() {
            lambda = self.model.adjoint(state, &lambda);
        }
        self.b_half * DVector::from_vec(lambda)
    }
}

impl CostFunction for IncrementCost<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, delta: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        let misfit = &self.d - self.forward(delta);
        let prior: f64 = self.w.iter().zip(delta).map(|(w, d)| (w + d).powi(2)).sum();
        Ok(0.5 * prior + 0.5 * misfit.norm_squared())
    }
}

impl Gradient for IncrementCost<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, delta: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        let misfit = &self.d - self.forward(delta);
        let back = self.backward(&misfit);
        Ok(self
            .w
            .iter()
            .zip(delta)
            .zip(back.iter())
            .map(|((w, d), b)| w + d - b)
            .collect())
    }
}

impl Filter for Var4d {
    fn describe(&self) -> String {
        format!(
            "4D-Var, lag {}, B = {} · {}",
            self.settings.lag,
            self.settings.background,
            self.settings.covariance.name()
        )
    }

    fn initialise(&mut self, prior: &Prior, _rng: &mut dyn RngCore) -> Result<()> {
        let b = self
            .settings
            .covariance
            .covariance(prior, self.settings.background);
        let eig = b.clone().symmetric_eigen();
        let root = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
        self.b_half =
            &eig.eigenvectors * DMatrix::from_diagonal(&root) * eig.eigenvectors.transpose();
        self.anchor = prior.mean.clone();
        self.mean = prior.mean.clone();
        self.var = b.diagonal().iter().copied().collect();
        self.window = 0;
        self.since = 0;
        self.cycle = 0;
        Ok(())
    }

    fn forecast(&mut self, model: &dyn Dynamics, _rng: &mut dyn RngCore) -> Result<()> {
        let tl = linearised(model)?;
        self.mean = tl.mean_step(&self.mean);
        self.since += 1;
        Ok(())
    }

    fn analyse(
        &mut self,
        y: &[f64],
        observation: &dyn GaussianObservation,
        model: &dyn Dynamics,
        _rng: &mut dyn RngCore,
    ) -> Result<()> {
        let tl = linearised(model)?;
        if self.cycle == 0 {
            self.cycle = self.since;
        } else if self.since != self.cycle {
            return Err(Error::Invalid(format!(
                "4D-Var needs observations at a fixed interval: {} model steps, then {}",
                self.cycle, self.since
            )));
        }
        self.since = 0;
        self.window += 1;
        let steps = self.window * self.cycle;
        let cost = WindowCost {
            model: tl,
            observation,
            y,
            background: &self.anchor,
            b_half: &self.b_half,
            steps,
        };
        let n = self.anchor.len();
        let mut w = vec![0.0; n];
        for _ in 0..self.settings.outer {
            let states = cost.trajectory(&w);
            let last = states.last().expect("states");
            if last.iter().any(|v| !v.is_finite()) {
                return Err(Error::Numerical(
                    "4D-Var: the window's trajectory left the finite numbers".into(),
                ));
            }
            let mut h = observation.jacobian(last);
            for (i, s) in observation.sigma().iter().enumerate() {
                h.row_mut(i).scale_mut(1.0 / s);
            }
            let d = -DVector::from_vec(cost.residual(last));
            let increment = IncrementCost {
                model: tl,
                h,
                states: &states,
                b_half: &self.b_half,
                w: &w,
                d,
            };
            let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10);
            let result = Executor::new(increment, solver)
                .configure(|state| state.param(vec![0.0; n]).max_iters(self.settings.inner))
                .run()
                .map_err(|e| Error::Numerical(format!("4D-Var inner minimisation failed: {e}")))?;
            let delta = result.state.get_best_param().cloned().ok_or_else(|| {
                Error::Numerical("4D-Var: the minimiser returned no state".into())
            })?;
            let step: f64 = delta.iter().map(|v| v * v).sum();
            for (w, d) in w.iter_mut().zip(&delta) {
                *w += d;
            }
            if step < 1e-12 * n as f64 {
                break;
            }
        }
        let states = cost.trajectory(&w);
        // the Gauss–Newton posterior of the analysis: X = M' B^{1/2} column by column
        let mut x_mat = self.b_half.clone();
        for x in &states[..steps] {
            for mut col in x_mat.column_iter_mut() {
                let next = tl.tangent_linear(x, col.as_slice());
                col.copy_from_slice(&next);
            }
        }
        let last = states.last().expect("states");
        let mut y_mat = observation.jacobian(last) * &x_mat;
        for (i, s) in observation.sigma().iter().enumerate() {
            y_mat.row_mut(i).scale_mut(1.0 / s);
        }
        let mut hess = y_mat.transpose() * &y_mat;
        for i in 0..n {
            hess[(i, i)] += 1.0;
        }
        let cov_w = hess.cholesky().map(|c| c.inverse()).ok_or_else(|| {
            Error::Numerical("4D-Var: the Gauss–Newton Hessian is not positive definite".into())
        })?;
        let cov = &x_mat * cov_w * x_mat.transpose();
        self.var = cov.diagonal().iter().copied().collect();
        self.mean = last.clone();
        // slide: the smoothed start is the next background; a full window moves one cycle on
        self.anchor = states[0].clone();
        if self.window == self.settings.lag {
            self.anchor = states[self.cycle].clone();
            self.window -= 1;
        }
        Ok(())
    }

    fn estimate(&self) -> Estimate<'_> {
        Estimate::Gaussian {
            mean: &self.mean,
            var: &self.var,
        }
    }
}

/// The model's tangent-linear form, or an error naming the model.
fn linearised(model: &dyn Dynamics) -> Result<&dyn TangentLinear> {
    model.linearised().ok_or_else(|| {
        Error::Invalid(format!(
            "4D-Var needs the tangent-linear model and adjoint of {}, which it does not provide",
            model.name()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::PartialIdentity;
    use crate::systems::lorenz96::Lorenz96;
    use rand::SeedableRng;

    // the full non-linear window cost and its adjoint gradient: the oracle of the incremental
    // cost the analysis minimises
    impl CostFunction for WindowCost<'_> {
        type Param = Vec<f64>;
        type Output = f64;
        fn cost(&self, w: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
            let states = self.trajectory(w);
            let r = self.residual(states.last().expect("states"));
            Ok(0.5 * w.iter().map(|v| v * v).sum::<f64>()
                + 0.5 * r.iter().map(|v| v * v).sum::<f64>())
        }
    }

    impl Gradient for WindowCost<'_> {
        type Param = Vec<f64>;
        type Gradient = Vec<f64>;
        fn gradient(&self, w: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
            let states = self.trajectory(w);
            let last = states.last().expect("states");
            let r = self.residual(last);
            let scaled = DVector::from_iterator(
                r.len(),
                r.iter().zip(self.observation.sigma()).map(|(v, s)| v / s),
            );
            // λ_s = Hᵀ R^{-1/2} r, then back through the window with the adjoint model
            let mut lambda = (self.observation.jacobian(last).transpose() * scaled)
                .as_slice()
                .to_vec();
            for x in states[..self.steps].iter().rev() {
                lambda = self.model.adjoint(x, &lambda);
            }
            let g = DVector::from_column_slice(w) + self.b_half * DVector::from_vec(lambda);
            Ok(g.as_slice().to_vec())
        }
    }

    /// The adjoint gradients of the window cost and of the incremental cost against central
    /// finite differences.
    #[test]
    fn the_window_gradient_matches_finite_differences() {
        let model = Lorenz96::with_sites(12).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let x0 = model.trajectory(1, 300, &mut rng);
        let obs = PartialIdentity::every(12, 2, 0.7).unwrap();
        let y: Vec<f64> = (0..obs.len())
            .map(|j| (j as f64 * 0.7).sin() * 3.0)
            .collect();
        let b_half = DMatrix::from_fn(12, 12, |i, j| if i == j { 0.6 } else { 0.05 });
        let cost = WindowCost {
            model: &model,
            observation: &obs,
            y: &y,
            background: &x0,
            b_half: &b_half,
            steps: 8,
        };
        let w: Vec<f64> = (0..12).map(|i| 0.1 * (i as f64 - 5.0)).collect();
        let g = cost.gradient(&w).unwrap();
        let eps = 1e-5;
        for i in 0..12 {
            let (mut plus, mut minus) = (w.clone(), w.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let fd = (cost.cost(&plus).unwrap() - cost.cost(&minus).unwrap()) / (2.0 * eps);
            assert!(
                (fd - g[i]).abs() <= 1e-6 * fd.abs().max(1.0),
                "{i}: {fd} vs {}",
                g[i]
            );
        }
        // the incremental (quadratic) cost about this trajectory: at δw = 0 its gradient is the
        // full cost's, and its adjoint gradient matches finite differences elsewhere
        let states = cost.trajectory(&w);
        let last = states.last().unwrap();
        let mut h = obs.jacobian(last);
        for (i, s) in obs.sigma().iter().enumerate() {
            h.row_mut(i).scale_mut(1.0 / s);
        }
        let increment = IncrementCost {
            model: &model,
            h,
            states: &states,
            b_half: &b_half,
            w: &w,
            d: -DVector::from_vec(cost.residual(last)),
        };
        let g0 = increment.gradient(&vec![0.0; 12]).unwrap();
        for i in 0..12 {
            assert!((g0[i] - g[i]).abs() <= 1e-10 * g[i].abs().max(1.0));
        }
        let delta: Vec<f64> = (0..12).map(|i| 0.05 * (i as f64).cos()).collect();
        let gd = increment.gradient(&delta).unwrap();
        for i in 0..12 {
            let (mut plus, mut minus) = (delta.clone(), delta.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let fd =
                (increment.cost(&plus).unwrap() - increment.cost(&minus).unwrap()) / (2.0 * eps);
            assert!(
                (fd - gd[i]).abs() <= 1e-6 * fd.abs().max(1.0),
                "{i}: {fd} vs {}",
                gd[i]
            );
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |lag, background| {
            Var4d::new(Var4dSettings {
                lag,
                background,
                covariance: Background::Climatology,
                outer: 10,
                inner: 100,
            })
            .err()
            .unwrap()
            .to_string()
        };
        assert!(err(0, 0.1).contains("lag"));
        assert!(err(1, -0.1).contains("background"));
    }
}
