//! The Lorenz (1996) model on a periodic ring of n ≥ 4 sites, the standard test bed of
//! data-assimilation methods (Lorenz 1996; Lorenz & Emanuel 1998; the DAPPER benchmarks of
//! Raanes et al.):
//!
//! `dx_i/dt = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F`, indices modulo n, F = 8 by default.
//!
//! One transition is one classical RK4 step of Δt = 0.05 (≈ 6 h of atmosphere), optionally
//! followed by additive model noise `N(0, q² I)`. Beside the model itself, the tangent-linear
//! model and its adjoint of one RK4 step ([`Lorenz96::tangent_linear`],
//! [`Lorenz96::adjoint`]) serve the variational methods and the extended Kalman filter: they
//! are the exact derivative of the discrete RK4 map (not of the continuous flow), checked
//! against finite differences and by the dot-product test in the tests below.

use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use super::rk4::{self, VectorField};
use crate::dynamics::{Dynamics, StateInfo, TangentLinear};
use crate::{Error, Result};

/// Lorenz-96 with its (optionally stochastic) RK4 transition.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lorenz96 {
    /// Number of sites n on the ring (≥ 4).
    pub n: usize,
    /// Forcing F.
    pub forcing: f64,
    /// Time step Δt of one transition.
    pub dt: f64,
    /// Standard deviation q of the additive model noise per transition (0: deterministic).
    pub noise: f64,
}

impl Default for Lorenz96 {
    /// n = 40, F = 8, Δt = 0.05, deterministic: DAPPER's `Lorenz96/sakov2008` model.
    fn default() -> Self {
        Self {
            n: 40,
            forcing: 8.0,
            dt: 0.05,
            noise: 0.0,
        }
    }
}

impl Lorenz96 {
    /// The model on `n` sites with the other parameters at their defaults.
    pub fn with_sites(n: usize) -> Result<Self> {
        let s = Self {
            n,
            ..Self::default()
        };
        s.check()?;
        Ok(s)
    }

    /// Checks n ≥ 4 (the stencil reaches two sites back and one ahead), a finite forcing, a
    /// positive finite Δt and a finite noise level q ≥ 0.
    pub fn check(&self) -> Result<()> {
        if self.n < 4 {
            return Err(Error::Invalid(format!(
                "lorenz96: n must be at least 4 sites (the stencil reaches i − 2 and i + 1), got {}",
                self.n
            )));
        }
        if !self.forcing.is_finite() {
            return Err(Error::Invalid(format!(
                "lorenz96: forcing must be finite, got {}",
                self.forcing
            )));
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::Invalid(format!(
                "lorenz96: dt must be positive and finite, got {}",
                self.dt
            )));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(Error::Invalid(format!(
                "lorenz96: noise must be finite and ≥ 0, got {}",
                self.noise
            )));
        }
        Ok(())
    }

    /// One classical RK4 step of size Δt: the deterministic part `M(x)` of the transition.
    pub fn rk4(&self, x: &[f64]) -> Vec<f64> {
        rk4::step(self, x, self.dt)
    }

    /// The tangent-linear model of one RK4 step: `M'(x) dx`, the derivative of [`rk4`](Self::rk4)
    /// at `x` in the direction `dx`.
    pub fn tangent_linear(&self, x: &[f64], dx: &[f64]) -> Vec<f64> {
        rk4::tangent_linear(self, x, dx, self.dt)
    }

    /// The adjoint of one RK4 step: `M'(x)ᵀ λ`, the transpose of
    /// [`tangent_linear`](Self::tangent_linear) at `x`.
    pub fn adjoint(&self, x: &[f64], lambda: &[f64]) -> Vec<f64> {
        rk4::adjoint(self, x, lambda, self.dt)
    }
}

impl VectorField for Lorenz96 {
    /// `f(x)_i = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F`.
    fn drift(&self, x: &[f64], out: &mut [f64]) {
        let n = x.len();
        for i in 0..n {
            let (ip1, im1, im2) = ((i + 1) % n, (i + n - 1) % n, (i + n - 2) % n);
            out[i] = (x[ip1] - x[im2]) * x[im1] - x[i] + self.forcing;
        }
    }

    /// `(J v)_i = (v_{i+1} − v_{i−2}) x_{i−1} + (x_{i+1} − x_{i−2}) v_{i−1} − v_i`.
    fn jacobian_times(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        let n = x.len();
        for i in 0..n {
            let (ip1, im1, im2) = ((i + 1) % n, (i + n - 1) % n, (i + n - 2) % n);
            out[i] = (v[ip1] - v[im2]) * x[im1] + (x[ip1] - x[im2]) * v[im1] - v[i];
        }
    }

    /// `(Jᵀ w)_j = x_{j−2} w_{j−1} − x_{j+1} w_{j+2} + (x_{j+2} − x_{j−1}) w_{j+1} − w_j`.
    fn jacobian_transpose_times(&self, x: &[f64], w: &[f64], out: &mut [f64]) {
        let n = x.len();
        for j in 0..n {
            let (jp1, jp2, jm1, jm2) = ((j + 1) % n, (j + 2) % n, (j + n - 1) % n, (j + n - 2) % n);
            out[j] = x[jm2] * w[jm1] - x[jp1] * w[jp2] + (x[jp2] - x[jm1]) * w[jp1] - w[j];
        }
    }
}

impl TangentLinear for Lorenz96 {
    fn mean_step(&self, x: &[f64]) -> Vec<f64> {
        self.rk4(x)
    }
    fn tangent_linear(&self, x: &[f64], dx: &[f64]) -> Vec<f64> {
        Lorenz96::tangent_linear(self, x, dx)
    }
    fn adjoint(&self, x: &[f64], lambda: &[f64]) -> Vec<f64> {
        Lorenz96::adjoint(self, x, lambda)
    }
    fn noise_variance(&self) -> Option<Vec<f64>> {
        Some(vec![self.noise * self.noise; self.n])
    }
}

impl Dynamics for Lorenz96 {
    fn linearised(&self) -> Option<&dyn TangentLinear> {
        Some(self)
    }
    fn name(&self) -> String {
        "lorenz96".into()
    }
    fn state_shape(&self) -> Vec<usize> {
        vec![self.n]
    }
    /// `x_i = F + N(0, 1)`: off the attractor; a dataset discards its burn-in transitions.
    fn sample_initial(&self, rng: &mut dyn RngCore) -> Vec<f64> {
        (0..self.n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut *rng);
                self.forcing + z
            })
            .collect()
    }
    fn step(&self, x: &[f64], rng: &mut dyn RngCore) -> Vec<f64> {
        let mut m = self.rk4(x);
        if self.noise > 0.0 {
            for v in &mut m {
                let z: f64 = StandardNormal.sample(&mut *rng);
                *v += self.noise * z;
            }
        }
        m
    }
    /// `log N(x' | M(x), q² I)` with model noise; `None` for the deterministic model, whose
    /// transition has no density.
    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        if self.noise == 0.0 {
            return None;
        }
        let q2 = self.noise * self.noise;
        let r2: f64 = self
            .rk4(x)
            .iter()
            .zip(x_next)
            .map(|(m, v)| (v - m).powi(2))
            .sum();
        Some(-0.5 * r2 / q2 - 0.5 * self.n as f64 * (2.0 * std::f64::consts::PI * q2).ln())
    }
    fn parameters(&self) -> Option<serde_json::Value> {
        Some(serde_json::to_value(self).expect("the parameters serialise"))
    }
    fn state_info(&self) -> StateInfo {
        StateInfo {
            variables: (0..self.n).map(|i| format!("x[{i}]")).collect(),
            units: "dimensionless (sites of a periodic ring; the Lorenz-96 equations are \
                    nondimensional, Δt = 0.05 ≈ 6 h)"
                .into(),
            dt: Some(self.dt),
        }
    }
}

inventory::submit! {
    crate::registry::SystemPlugin {
        name: "lorenz96",
        description: "Lorenz-96 on a ring of n sites, RK4 step dt (+ N(0, noise² I)): n, forcing, dt, noise (defaults: 40, 8, 0.05, 0)",
        build: |p| {
            let s: Lorenz96 = crate::registry::params(p)?;
            s.check()?;
            Ok(Box::new(s))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    /// A state on the attractor: `burn` steps from a seeded start.
    fn attractor_state(model: &Lorenz96, seed: u64, burn: usize) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        model.trajectory(1, burn, &mut rng)
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_fixed_point_is_steady_and_bad_parameters_are_named() {
        // x_i = F for all i is an equilibrium of the flow, so of every RK4 step
        let model = Lorenz96::default();
        let x = vec![8.0; 40];
        assert!(model.rk4(&x).iter().all(|v| (v - 8.0).abs() < 1e-12));
        for (bad, name) in [
            (Lorenz96 { n: 3, ..model }, "n must be at least 4"),
            (Lorenz96 { dt: 0.0, ..model }, "dt must be positive"),
            (
                Lorenz96 {
                    forcing: f64::NAN,
                    ..model
                },
                "forcing must be finite",
            ),
            (
                Lorenz96 {
                    noise: -1.0,
                    ..model
                },
                "noise must be finite and ≥ 0",
            ),
        ] {
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn the_attractor_has_the_known_climatology() {
        // F = 8, n = 40: mean ≈ 2.3 and standard deviation ≈ 3.6 per site (Lorenz & Emanuel
        // 1998); 2 000 states × 40 sites after a 1 000-step spin-up, so each moment is known
        // to a few hundredths
        let model = Lorenz96::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let x = model.trajectory(2000, 1000, &mut rng);
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        assert!((m - 2.3).abs() < 0.2, "mean {m}");
        assert!((sd - 3.6).abs() < 0.2, "std {sd}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// `M'(x) dx` against the central difference `(M(x + ε dx) − M(x − ε dx)) / 2ε`, whose
        /// error is O(ε²) ≈ 1e-8 relative: a wrong term of the Jacobian would be O(1).
        #[test]
        fn tangent_linear_matches_finite_differences(
            seed in 0u64..1000,
            n in 4usize..24,
            dir in proptest::collection::vec(-1.0f64..1.0, 24),
        ) {
            let model = Lorenz96 { n, ..Lorenz96::default() };
            let x = attractor_state(&model, seed, 200);
            let dx = &dir[..n];
            let eps = 1e-4;
            let plus: Vec<f64> = x.iter().zip(dx).map(|(a, d)| a + eps * d).collect();
            let minus: Vec<f64> = x.iter().zip(dx).map(|(a, d)| a - eps * d).collect();
            let fd: Vec<f64> = model
                .rk4(&plus)
                .iter()
                .zip(model.rk4(&minus))
                .map(|(p, m)| (p - m) / (2.0 * eps))
                .collect();
            let tl = model.tangent_linear(&x, dx);
            let scale = fd.iter().map(|v| v.abs()).fold(1e-12, f64::max);
            for (a, b) in tl.iter().zip(&fd) {
                prop_assert!((a - b).abs() <= 1e-6 * scale, "TLM {a} vs finite difference {b}");
            }
        }

        /// The dot-product test `⟨M' dx, λ⟩ = ⟨dx, M'ᵀ λ⟩`, to rounding.
        #[test]
        fn adjoint_is_the_transpose_of_the_tangent_linear(
            seed in 0u64..1000,
            n in 4usize..24,
            dir in proptest::collection::vec(-1.0f64..1.0, 48),
        ) {
            let model = Lorenz96 { n, ..Lorenz96::default() };
            let x = attractor_state(&model, seed, 200);
            let (dx, lambda) = (&dir[..n], &dir[24..24 + n]);
            let lhs = dot(&model.tangent_linear(&x, dx), lambda);
            let rhs = dot(dx, &model.adjoint(&x, lambda));
            prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        }
    }

    #[test]
    fn the_noisy_transition_density_is_gaussian() {
        let model = Lorenz96 {
            n: 8,
            noise: 0.5,
            ..Lorenz96::default()
        };
        let x = attractor_state(&model, 3, 100);
        let m = model.rk4(&x);
        // at the mean: only the normalising constant
        let at_mean = model.log_transition(&x, &m).unwrap();
        let expect = -4.0 * (2.0 * std::f64::consts::PI * 0.25f64).ln();
        assert!((at_mean - expect).abs() < 1e-12);
        // one unit away in one coordinate: −1/(2 q²) = −2 lower
        let mut off = m.clone();
        off[0] += 1.0;
        assert!((model.log_transition(&x, &off).unwrap() - (expect - 2.0)).abs() < 1e-12);
        assert!(Lorenz96::default().log_transition(&x, &m).is_none());
    }
}
