//! The Lorenz (1963) system of the paper's first experiment (§4.1):
//! `ȧ = σ(b − a)`, `ḃ = a(ρ − c) − b`, `ċ = ab − βc` with σ = 10, ρ = 28, β = 8/3.
//! One transition is one RK4 step of Δ = 0.025 followed by additive `N(0, Δ I)` noise, so the
//! transition density is Gaussian and exact. Networks see **standardised** states
//! `(ã, b̃, c̃) = (a/8, b/9, (c − 25)/8.6)`, which belong to the system
//! ([`Lorenz63::standardise`]).

use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use super::rk4::{self, VectorField};
use crate::data::Standardisation;
use crate::dynamics::{Dynamics, TangentLinear};

/// Lorenz-63 with its stochastic transition and initial prior.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lorenz63 {
    /// σ.
    pub sigma: f64,
    /// ρ.
    pub rho: f64,
    /// β.
    pub beta: f64,
    /// Time step Δ of one transition (also the variance of its noise).
    pub dt: f64,
}

impl Default for Lorenz63 {
    fn default() -> Self {
        Self {
            sigma: 10.0,
            rho: 28.0,
            beta: 8.0 / 3.0,
            dt: 0.025,
        }
    }
}

/// Mean of the standardisation: `(0, 0, 25)` ([`Standardisation::lorenz63`]).
pub const STANDARD_MEAN: [f64; 3] = Standardisation::LORENZ63_MEAN;
/// Scale of the standardisation: `(8, 9, 8.6)` ([`Standardisation::lorenz63`]).
pub const STANDARD_SCALE: [f64; 3] = Standardisation::LORENZ63_SCALE;

impl Lorenz63 {
    /// Checks that σ, ρ and β are finite and that the step Δ is positive and finite (it is
    /// also the noise variance).
    pub fn check(&self) -> crate::Result<()> {
        for (name, v) in [
            ("sigma", self.sigma),
            ("rho", self.rho),
            ("beta", self.beta),
        ] {
            if !v.is_finite() {
                return Err(crate::Error::Invalid(format!(
                    "lorenz63: {name} must be finite, got {v}"
                )));
            }
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(crate::Error::Invalid(format!(
                "lorenz63: dt must be positive and finite, got {}",
                self.dt
            )));
        }
        Ok(())
    }

    /// The vector field.
    pub fn drift(&self, x: [f64; 3]) -> [f64; 3] {
        let [a, b, c] = x;
        [
            self.sigma * (b - a),
            a * (self.rho - c) - b,
            a * b - self.beta * c,
        ]
    }

    /// One classical RK4 step of size Δ: the deterministic part `M(x)` of the transition.
    pub fn rk4(&self, x: [f64; 3]) -> [f64; 3] {
        let h = self.dt;
        let add =
            |x: [f64; 3], k: [f64; 3], s: f64| [x[0] + s * k[0], x[1] + s * k[1], x[2] + s * k[2]];
        let k1 = self.drift(x);
        let k2 = self.drift(add(x, k1, h / 2.0));
        let k3 = self.drift(add(x, k2, h / 2.0));
        let k4 = self.drift(add(x, k3, h));
        [0, 1, 2].map(|j| x[j] + h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]))
    }

    /// Physical → standardised: `(a/8, b/9, (c − 25)/8.6)`.
    pub fn standardise(x: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|j| (x[j] - STANDARD_MEAN[j]) / STANDARD_SCALE[j])
    }

    /// Standardised → physical.
    pub fn unstandardise(x: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|j| x[j] * STANDARD_SCALE[j] + STANDARD_MEAN[j])
    }

    /// `log N(x' | M(x), Δ I)` given the precomputed `M(x)`.
    pub fn log_transition_from_mean(&self, mean: [f64; 3], x_next: &[f64]) -> f64 {
        let r2: f64 = (0..3).map(|j| (x_next[j] - mean[j]).powi(2)).sum();
        -0.5 * r2 / self.dt - 1.5 * (2.0 * std::f64::consts::PI * self.dt).ln()
    }
}

fn state(x: &[f64]) -> [f64; 3] {
    [x[0], x[1], x[2]]
}

/// The vector field and its Jacobian
/// `J = [[−σ, σ, 0], [ρ − c, −1, −a], [b, a, −β]]` at `(a, b, c)`.
impl VectorField for Lorenz63 {
    fn drift(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&Lorenz63::drift(self, state(x)));
    }
    fn jacobian_times(&self, x: &[f64], v: &[f64], out: &mut [f64]) {
        let [a, b, c] = state(x);
        out[0] = self.sigma * (v[1] - v[0]);
        out[1] = (self.rho - c) * v[0] - v[1] - a * v[2];
        out[2] = b * v[0] + a * v[1] - self.beta * v[2];
    }
    fn jacobian_transpose_times(&self, x: &[f64], w: &[f64], out: &mut [f64]) {
        let [a, b, c] = state(x);
        out[0] = -self.sigma * w[0] + (self.rho - c) * w[1] + b * w[2];
        out[1] = self.sigma * w[0] - w[1] + a * w[2];
        out[2] = -a * w[1] - self.beta * w[2];
    }
}

/// The mean step is the RK4 step (the transition adds `N(0, Δ I)`); its derivatives are those of
/// the discrete RK4 map.
impl TangentLinear for Lorenz63 {
    fn mean_step(&self, x: &[f64]) -> Vec<f64> {
        self.rk4(state(x)).to_vec()
    }
    fn tangent_linear(&self, x: &[f64], dx: &[f64]) -> Vec<f64> {
        rk4::tangent_linear(self, x, dx, self.dt)
    }
    fn adjoint(&self, x: &[f64], lambda: &[f64]) -> Vec<f64> {
        rk4::adjoint(self, x, lambda, self.dt)
    }
    fn noise_variance(&self) -> Option<Vec<f64>> {
        Some(vec![self.dt; 3])
    }
}

impl Dynamics for Lorenz63 {
    fn name(&self) -> String {
        "lorenz63".into()
    }
    fn linearised(&self) -> Option<&dyn TangentLinear> {
        Some(self)
    }
    fn state_shape(&self) -> Vec<usize> {
        vec![3]
    }
    /// `N((0, 0, 25), [[64, 50, 0], [50, 81, 0], [0, 0, 75]])`, by its Cholesky factor.
    fn sample_initial(&self, rng: &mut dyn RngCore) -> Vec<f64> {
        let z: [f64; 3] = [0, 1, 2].map(|_| StandardNormal.sample(&mut *rng));
        // chol([[64, 50], [50, 81]]) = [[8, 0], [6.25, √(81 − 6.25²)]]
        let l21: f64 = 50.0 / 8.0;
        let l22 = (81.0 - l21 * l21).sqrt();
        vec![
            8.0 * z[0],
            l21 * z[0] + l22 * z[1],
            25.0 + 75f64.sqrt() * z[2],
        ]
    }
    fn step(&self, x: &[f64], rng: &mut dyn RngCore) -> Vec<f64> {
        let m = self.rk4(state(x));
        let s = self.dt.sqrt();
        m.iter()
            .map(|v| {
                let z: f64 = StandardNormal.sample(&mut *rng);
                v + s * z
            })
            .collect()
    }
    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        Some(self.log_transition_from_mean(self.rk4(state(x)), x_next))
    }
    fn parameters(&self) -> Option<serde_json::Value> {
        Some(serde_json::to_value(self).expect("the parameters serialise"))
    }
    fn state_info(&self) -> crate::dynamics::StateInfo {
        crate::dynamics::StateInfo {
            variables: vec!["x".into(), "y".into(), "z".into()],
            units: "dimensionless (the Lorenz-63 equations are nondimensional)".into(),
            dt: Some(self.dt),
        }
    }
}

inventory::submit! {
    crate::registry::SystemPlugin {
        name: "lorenz63",
        description: "Lorenz-63 (sigma 10, rho 28, beta 8/3), RK4 step dt + N(0, dt I): sigma, rho, beta, dt (defaults: paper)",
        build: |p| {
            let s: Lorenz63 = crate::registry::params(p)?;
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The tangent-linear model of the RK4 step against central differences of the step
        /// itself (O(ε²) ≈ 1e-8 relative), and its adjoint by the dot-product test.
        #[test]
        fn tangent_linear_and_adjoint_are_the_rk4_step_derivative(
            seed in 0u64..1000,
            dir in proptest::collection::vec(-1.0f64..1.0, 6),
        ) {
            let model = Lorenz63::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let x = model.trajectory(1, 100, &mut rng);
            let (dx, lambda) = (&dir[..3], &dir[3..]);
            let eps = 1e-4;
            let shifted = |sign: f64| -> [f64; 3] {
                model.rk4([0, 1, 2].map(|j| x[j] + sign * eps * dx[j]))
            };
            let (plus, minus) = (shifted(1.0), shifted(-1.0));
            let tl = TangentLinear::tangent_linear(&model, &x, dx);
            let scale = (0..3).map(|j| ((plus[j] - minus[j]) / (2.0 * eps)).abs()).fold(1e-12, f64::max);
            for j in 0..3 {
                let fd = (plus[j] - minus[j]) / (2.0 * eps);
                prop_assert!((tl[j] - fd).abs() <= 1e-6 * scale, "{} vs {fd}", tl[j]);
            }
            let adj = TangentLinear::adjoint(&model, &x, lambda);
            let lhs: f64 = tl.iter().zip(lambda).map(|(a, b)| a * b).sum();
            let rhs: f64 = dx.iter().zip(&adj).map(|(a, b)| a * b).sum();
            prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        }
    }
}
