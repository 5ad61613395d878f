//! The linear-Gaussian oracle: `x_{i+1} = F x_i + w`, `w ~ N(0, Q)`, `x_1 ~ N(m_0, P_0)`.
//!
//! Everything SDA approximates is exact here: the windowed prior is Gaussian, so the local score
//! of a `(2k+1)`-state window is known in closed form ([`GaussianEpsilon`], no network), and the
//! trajectory posterior under a linear observation is given by Kalman (RTS) smoothing
//! ([`LinearGaussian::kalman_smoother`]) or dense Gaussian conditioning
//! ([`LinearGaussian::posterior`]). Tests and the quickstart compare SDA against it.

use std::sync::Arc;

use nalgebra::{Cholesky, DMatrix, DVector};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use crate::dynamics::Dynamics;
use crate::schedule::NoiseSchedule;
use crate::score::gaussian::GaussianEpsilon;
use crate::{Error, Result, TrajectoryShape};

/// A linear-Gaussian Markov chain.
#[derive(Debug, Clone)]
pub struct LinearGaussian {
    f: DMatrix<f64>,
    q: DMatrix<f64>,
    q_chol: DMatrix<f64>,
    m0: DVector<f64>,
    p0: DMatrix<f64>,
    p0_chol: DMatrix<f64>,
}

fn chol(m: &DMatrix<f64>, what: &str) -> Result<DMatrix<f64>> {
    Cholesky::new(m.clone())
        .map(|c| c.l())
        .ok_or_else(|| Error::Invalid(format!("{what} is not symmetric positive definite")))
}

fn gaussian(rng: &mut dyn RngCore, n: usize) -> DVector<f64> {
    DVector::from_iterator(n, (0..n).map(|_| StandardNormal.sample(rng)))
}

/// `log N(x | m, Σ)` with Σ given by its Cholesky factor L.
fn log_normal(x: &DVector<f64>, m: &DVector<f64>, l: &DMatrix<f64>) -> f64 {
    let d = x.len() as f64;
    let z = l
        .solve_lower_triangular(&(x - m))
        .expect("Cholesky factor is invertible");
    let log_det: f64 = l.diagonal().iter().map(|v| v.ln()).sum();
    -0.5 * z.norm_squared() - log_det - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
}

impl LinearGaussian {
    /// A chain with transition matrix F, noise covariance Q and initial prior N(m_0, P_0).
    /// Errors on mismatched sizes, a non-finite entry, or a Q or P_0 that is not positive
    /// definite.
    pub fn new(
        f: DMatrix<f64>,
        q: DMatrix<f64>,
        m0: DVector<f64>,
        p0: DMatrix<f64>,
    ) -> Result<Self> {
        let d = f.nrows();
        if f.ncols() != d || q.shape() != (d, d) || m0.len() != d || p0.shape() != (d, d) {
            return Err(Error::Shape(format!(
                "linear-Gaussian system needs F, Q, P0 of {d}×{d} and m0 of {d}"
            )));
        }
        for (name, values) in [
            ("F", f.as_slice()),
            ("Q", q.as_slice()),
            ("m0", m0.as_slice()),
            ("P0", p0.as_slice()),
        ] {
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!(
                    "linear-Gaussian system: {name} holds {v}"
                )));
            }
        }
        Ok(Self {
            q_chol: chol(&q, "transition covariance Q")?,
            p0_chol: chol(&p0, "initial covariance P0")?,
            f,
            q,
            m0,
            p0,
        })
    }

    /// The stationary chain: `m_0 = 0` and `P_0` solving `P = F P Fᵀ + Q` (needs spectral
    /// radius of F below 1).
    pub fn stationary(f: DMatrix<f64>, q: DMatrix<f64>) -> Result<Self> {
        let d = f.nrows();
        if f.ncols() != d || q.shape() != (d, d) {
            return Err(Error::Shape(
                "F and Q must be square of the same size".into(),
            ));
        }
        let radius = f
            .complex_eigenvalues()
            .iter()
            .fold(0.0f64, |a, e| a.max(e.norm()));
        if radius >= 1.0 {
            return Err(Error::Invalid(format!(
                "no stationary prior: spectral radius of F is {radius:.4} ≥ 1"
            )));
        }
        // (I − F ⊗ F) vec(P) = vec(Q), column-major vec
        let a = DMatrix::<f64>::identity(d * d, d * d) - f.kronecker(&f);
        let vq = DVector::from_column_slice(q.as_slice());
        let vp = a
            .lu()
            .solve(&vq)
            .ok_or_else(|| Error::Numerical("stationary Lyapunov equation is singular".into()))?;
        let p = DMatrix::from_column_slice(d, d, vp.as_slice());
        let p = (&p + p.transpose()) * 0.5;
        Self::new(f, q, DVector::zeros(d), p)
    }

    /// The fixed oracle of the test suite and the quickstart: D = 2,
    /// `F = 0.95 R(0.3)` (R a rotation by 0.3 rad), `Q = 0.1 I`, stationary prior.
    pub fn oracle() -> Self {
        let (s, c) = 0.3f64.sin_cos();
        let f = DMatrix::from_row_slice(2, 2, &[c, -s, s, c]) * 0.95;
        Self::stationary(f, DMatrix::identity(2, 2) * 0.1).expect("oracle is stable")
    }

    /// A stationary chain on a periodic ring of `sites` sites with nearest-neighbour coupling,
    /// the linear-Gaussian analogue of Lorenz-96's locality:
    /// `x_{i+1}[m] = a x_i[m] + b (x_i[m−1] + x_i[m+1]) + w[m]` (indices mod n), `w ~ N(0, q I)`.
    /// F is symmetric and circulant, so the stationary covariance is `P = q (I − F²)⁻¹` and the
    /// law is invariant under shifts of the ring: every space–time patch has the same marginal.
    /// Needs `|a| + 2|b| < 1`, `q > 0` and at least 3 sites.
    pub fn ring(sites: usize, a: f64, b: f64, q: f64) -> Result<Self> {
        if sites < 3 {
            return Err(Error::Invalid(format!(
                "a ring needs at least 3 sites, got {sites}"
            )));
        }
        if !(a.is_finite() && b.is_finite() && q.is_finite()) || q <= 0.0 {
            return Err(Error::Invalid(format!(
                "ring chain: a = {a}, b = {b}, q = {q} (finite, q > 0)"
            )));
        }
        if a.abs() + 2.0 * b.abs() >= 1.0 {
            return Err(Error::Invalid(format!(
                "ring chain has no stationary law: |a| + 2|b| = {} ≥ 1",
                a.abs() + 2.0 * b.abs()
            )));
        }
        let f = DMatrix::from_fn(sites, sites, |i, j| {
            let d = (i + sites - j) % sites;
            if d == 0 {
                a
            } else if d == 1 || d == sites - 1 {
                b
            } else {
                0.0
            }
        });
        let i = DMatrix::<f64>::identity(sites, sites);
        let p0 = (&i - &f * &f)
            .try_inverse()
            .ok_or_else(|| Error::Numerical("ring chain: I − F² is singular".into()))?
            * q;
        let p0 = (&p0 + p0.transpose()) * 0.5;
        Self::new(f, i * q, DVector::zeros(sites), p0)
    }

    /// The exact ε of the marginal of `len` consecutive states (from the first), each reduced
    /// to the listed `components` (repeats allowed): the analytic local score of a space–time
    /// window ([`crate::blanket::SpaceTimeWindow`]) when `components` are a patch of sites of
    /// a [`Self::ring`] chain. A repeated component makes the covariance singular, which
    /// [`GaussianEpsilon`] accepts.
    pub fn marginal_epsilon(
        &self,
        len: usize,
        components: &[usize],
        schedule: Arc<dyn NoiseSchedule>,
    ) -> Result<GaussianEpsilon> {
        let d = self.dim();
        if len == 0 || components.is_empty() {
            return Err(Error::Invalid(
                "a marginal needs at least one state and one component".into(),
            ));
        }
        if let Some(c) = components.iter().find(|&&c| c >= d) {
            return Err(Error::Shape(format!(
                "component {c} of a state of dimension {d}"
            )));
        }
        let (m, c) = self.trajectory_prior(len);
        let index: Vec<usize> = (0..len)
            .flat_map(|i| components.iter().map(move |&j| i * d + j))
            .collect();
        let p = index.len();
        let mean = DVector::from_iterator(p, index.iter().map(|&i| m[i]));
        let cov = DMatrix::from_fn(p, p, |a, b| c[(index[a], index[b])]);
        GaussianEpsilon::new(
            TrajectoryShape::new(len, components.len()),
            mean,
            cov,
            schedule,
        )
    }

    /// Transition matrix F.
    pub fn f(&self) -> &DMatrix<f64> {
        &self.f
    }

    /// Transition covariance Q.
    pub fn q(&self) -> &DMatrix<f64> {
        &self.q
    }

    /// Initial prior (m_0, P_0).
    pub fn initial(&self) -> (&DVector<f64>, &DMatrix<f64>) {
        (&self.m0, &self.p0)
    }

    fn dim(&self) -> usize {
        self.f.nrows()
    }

    /// Mean and covariance of the flattened trajectory `x_{1:L}` (state-major, `[L·D]`):
    /// `m_i = F^{i−1} m_0`, `P_{i+1} = F P_i Fᵀ + Q`, `Cov(x_i, x_j) = F^{j−i} P_i` for j ≥ i.
    pub fn trajectory_prior(&self, len: usize) -> (DVector<f64>, DMatrix<f64>) {
        let d = self.dim();
        let mut mean = DVector::zeros(len * d);
        let mut cov = DMatrix::zeros(len * d, len * d);
        let mut m = self.m0.clone();
        let mut p = self.p0.clone();
        for i in 0..len {
            mean.rows_mut(i * d, d).copy_from(&m);
            let mut c = p.clone(); // Cov(x_j, x_i) for j = i, i+1, ...
            for j in i..len {
                cov.view_mut((j * d, i * d), (d, d)).copy_from(&c);
                cov.view_mut((i * d, j * d), (d, d))
                    .copy_from(&c.transpose());
                c = &self.f * c;
            }
            m = &self.f * m;
            p = &self.f * p * self.f.transpose() + &self.q;
        }
        (mean, cov)
    }

    /// The exact prior ε of trajectories of `len` states (closed form, see [`GaussianEpsilon`]).
    pub fn prior_epsilon(
        &self,
        len: usize,
        schedule: Arc<dyn NoiseSchedule>,
    ) -> Result<GaussianEpsilon> {
        let (m, c) = self.trajectory_prior(len);
        GaussianEpsilon::new(TrajectoryShape::new(len, self.dim()), m, c, schedule)
    }

    /// The **analytic local score** of a `(2k+1)`-state window: the exact ε of the window
    /// marginal. Exact at every position when the chain is stationary ([`Self::stationary`]).
    pub fn window_epsilon(
        &self,
        k: usize,
        schedule: Arc<dyn NoiseSchedule>,
    ) -> Result<GaussianEpsilon> {
        if k == 0 {
            return Err(Error::Invalid("window half-width k must be ≥ 1".into()));
        }
        self.prior_epsilon(2 * k + 1, schedule)
    }

    /// Exact posterior `p(x_{1:L} | y)` for `y = H vec(x) + η`, `η ~ N(0, diag(std²))`,
    /// by dense Gaussian conditioning: `K = Σ Hᵀ (H Σ Hᵀ + R)⁻¹`, `m' = m + K (y − H m)`,
    /// `Σ' = Σ − K H Σ`.
    pub fn posterior(
        &self,
        len: usize,
        h: &DMatrix<f64>,
        noise_std: &[f64],
        y: &[f64],
    ) -> Result<(DVector<f64>, DMatrix<f64>)> {
        let (m, c) = self.trajectory_prior(len);
        if h.ncols() != m.len() || h.nrows() != y.len() || noise_std.len() != y.len() {
            return Err(Error::Shape(format!(
                "posterior: H is {}×{}, y has {}, std has {}, trajectory has {} values",
                h.nrows(),
                h.ncols(),
                y.len(),
                noise_std.len(),
                m.len()
            )));
        }
        let r = DMatrix::from_diagonal(&DVector::from_iterator(
            y.len(),
            noise_std.iter().map(|s| s * s),
        ));
        let s = h * &c * h.transpose() + r;
        let s_inv = s
            .try_inverse()
            .ok_or_else(|| Error::Numerical("innovation covariance is singular".into()))?;
        let k = &c * h.transpose() * s_inv;
        let y = DVector::from_column_slice(y);
        let mean = &m + &k * (y - h * &m);
        let cov = &c - &k * h * &c;
        let cov = (&cov + cov.transpose()) * 0.5;
        Ok((mean, cov))
    }

    /// Kalman filter + Rauch–Tung–Striebel smoother over `len` states with per-state
    /// observations `y_i = H_i x_i + η_i`. Returns the smoothed marginal means and covariances.
    pub fn kalman_smoother(
        &self,
        len: usize,
        observations: &[StateObservation],
    ) -> Result<SmoothedMarginals> {
        let d = self.dim();
        let mut by_state: Vec<Vec<&StateObservation>> = vec![Vec::new(); len];
        for o in observations {
            if o.state >= len || o.h.ncols() != d || o.h.nrows() != o.y.len() {
                return Err(Error::Shape(format!(
                    "observation of state {} does not fit {len} states of dimension {d}",
                    o.state
                )));
            }
            by_state[o.state].push(o);
        }
        let mut pred = Vec::with_capacity(len);
        let mut filt: Vec<(DVector<f64>, DMatrix<f64>)> = Vec::with_capacity(len);
        for (i, obs) in by_state.iter().enumerate() {
            let (mut m, mut p) = if i == 0 {
                (self.m0.clone(), self.p0.clone())
            } else {
                let (mf, pf) = &filt[i - 1];
                (&self.f * mf, &self.f * pf * self.f.transpose() + &self.q)
            };
            pred.push((m.clone(), p.clone()));
            for o in obs {
                let r = DMatrix::from_diagonal(&o.noise_var);
                let s = &o.h * &p * o.h.transpose() + &r;
                let s_inv = s
                    .try_inverse()
                    .ok_or_else(|| Error::Numerical("singular innovation".into()))?;
                let k = &p * o.h.transpose() * s_inv;
                m = &m + &k * (&o.y - &o.h * &m);
                // Joseph form keeps P symmetric positive definite
                let a = DMatrix::identity(d, d) - &k * &o.h;
                p = &a * &p * a.transpose() + &k * r * k.transpose();
            }
            filt.push((m, p));
        }
        let mut means = vec![DVector::zeros(d); len];
        let mut covs = vec![DMatrix::zeros(d, d); len];
        means[len - 1] = filt[len - 1].0.clone();
        covs[len - 1] = filt[len - 1].1.clone();
        for i in (0..len - 1).rev() {
            let (mf, pf) = &filt[i];
            let (mp, pp) = &pred[i + 1];
            let pp_inv = pp
                .clone()
                .try_inverse()
                .ok_or_else(|| Error::Numerical("singular predicted covariance".into()))?;
            let g = pf * self.f.transpose() * pp_inv;
            means[i] = mf + &g * (&means[i + 1] - mp);
            covs[i] = pf + &g * (&covs[i + 1] - pp) * g.transpose();
        }
        Ok((means, covs))
    }
}

/// Smoothed marginal means and covariances, one per state.
pub type SmoothedMarginals = (Vec<DVector<f64>>, Vec<DMatrix<f64>>);

/// A linear observation of one state: `y = H x_state + η`, `η ~ N(0, diag(noise_var))`.
#[derive(Debug, Clone)]
pub struct StateObservation {
    /// Observed state (0-based).
    pub state: usize,
    /// `m × D` observation matrix.
    pub h: DMatrix<f64>,
    /// Diagonal observation noise variances (length m).
    pub noise_var: DVector<f64>,
    /// Observed values (length m).
    pub y: DVector<f64>,
}

/// Splits a trajectory-level linear observation `y = H vec(x) + η` into per-state observations
/// for the Kalman smoother. Errors if a row of H touches more than one state.
pub fn split_by_state(
    h: &DMatrix<f64>,
    noise_std: &[f64],
    y: &[f64],
    shape: TrajectoryShape,
) -> Result<Vec<StateObservation>> {
    let d = shape.dim;
    let mut out: Vec<StateObservation> = Vec::new();
    for r in 0..h.nrows() {
        let touched: Vec<usize> = (0..h.ncols())
            .filter(|&c| h[(r, c)] != 0.0)
            .map(|c| c / d)
            .collect();
        let state = match touched.first() {
            Some(&s) if touched.iter().all(|&t| t == s) => s,
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "observation row {r} couples several states; use dense conditioning"
                )))
            }
            None => continue,
        };
        let row = h.view((r, state * d), (1, d)).clone_owned();
        out.push(StateObservation {
            state,
            h: row,
            noise_var: DVector::from_element(1, noise_std[r] * noise_std[r]),
            y: DVector::from_element(1, y[r]),
        });
    }
    Ok(out)
}

/// `M(x) = F x`, its own tangent-linear model; the noise `N(0, Q)`.
impl crate::dynamics::TangentLinear for LinearGaussian {
    fn mean_step(&self, x: &[f64]) -> Vec<f64> {
        (&self.f * DVector::from_column_slice(x))
            .as_slice()
            .to_vec()
    }
    fn tangent_linear(&self, _x: &[f64], dx: &[f64]) -> Vec<f64> {
        self.mean_step(dx)
    }
    fn adjoint(&self, _x: &[f64], lambda: &[f64]) -> Vec<f64> {
        (self.f.transpose() * DVector::from_column_slice(lambda))
            .as_slice()
            .to_vec()
    }
    fn noise_variance(&self) -> Option<Vec<f64>> {
        let diagonal =
            (0..self.dim()).all(|i| (0..self.dim()).all(|j| i == j || self.q[(i, j)] == 0.0));
        diagonal.then(|| self.q.diagonal().iter().copied().collect())
    }
}

impl Dynamics for LinearGaussian {
    fn linearised(&self) -> Option<&dyn crate::dynamics::TangentLinear> {
        Some(self)
    }
    fn name(&self) -> String {
        format!("linear-gaussian(D={})", self.dim())
    }
    fn state_shape(&self) -> Vec<usize> {
        vec![self.dim()]
    }
    fn sample_initial(&self, rng: &mut dyn RngCore) -> Vec<f64> {
        (&self.m0 + &self.p0_chol * gaussian(rng, self.dim()))
            .as_slice()
            .to_vec()
    }
    fn step(&self, x: &[f64], rng: &mut dyn RngCore) -> Vec<f64> {
        let x = DVector::from_column_slice(x);
        (&self.f * x + &self.q_chol * gaussian(rng, self.dim()))
            .as_slice()
            .to_vec()
    }
    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        let m = &self.f * DVector::from_column_slice(x);
        Some(log_normal(
            &DVector::from_column_slice(x_next),
            &m,
            &self.q_chol,
        ))
    }
}

inventory::submit! {
    crate::registry::SystemPlugin {
        name: "linear-gaussian",
        description: "oracle: x' = 0.95 R(0.3) x + N(0, 0.1 I), stationary prior, exact posterior",
        build: |p| {
            let crate::registry::NoParams {} = crate::registry::params(p)?;
            Ok(Box::new(LinearGaussian::oracle()))
        },
    }
}
