//! How a network's raw output becomes ε: directly (the paper), or through the **Gaussian
//! preconditioning** of Karras et al. (2022, "EDM"), written in ε-space.
//!
//! With `x(t) = μ x + σ ε` and standardised data (zero mean, unit variance per coordinate), the
//! best *linear* estimate of ε is the one for `x ~ N(0, I)`:
//! `E[ε | x(t)] = σ x(t) / (μ² + σ²)`. The preconditioned parametrisation lets the network `F`
//! learn only what the data adds to that estimate,
//!
//! `ε̂(x(t), t) = σ/(μ² + σ²) · x(t) − μ/√(μ² + σ²) · F(x(t), t)`,
//!
//! so that Tweedie's estimate (paper eq. 9) becomes
//! `x̂ = (x(t) − σ ε̂)/μ = μ/(μ² + σ²) · x(t) + σ/√(μ² + σ²) · F(x(t), t)`:
//! the Wiener estimate plus `F` scaled by at most 1. With the direct parametrisation,
//! `x̂ = (x(t) − σ F)/μ`, and near t = 1 (μ = η = 1e-3) any error of F is multiplied by
//! σ/μ ≈ 1000 in `x̂`, which the DDIM predictor carries into the sample. Preconditioning bounds
//! that error by the error of F itself. Training still minimises the ε loss of Algorithm 1;
//! only the map from F to ε changes. The choice is part of the architecture and is stored with
//! every checkpoint (`output` in the `[network]` table).

use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::schedule::NoiseSchedule;

/// The map from a network's raw output F to ε.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// `ε̂ = F` (the paper's networks).
    #[default]
    Epsilon,
    /// `ε̂ = σ/(μ² + σ²) · x(t) − μ/√(μ² + σ²) · F` (see the module documentation).
    Preconditioned,
}

impl std::str::FromStr for Output {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "epsilon" => Ok(Self::Epsilon),
            "preconditioned" => Ok(Self::Preconditioned),
            other => Err(crate::Error::Invalid(format!(
                "unknown network output '{other}' (known: epsilon, preconditioned)"
            ))),
        }
    }
}

impl Output {
    /// Whether this is the default (`Epsilon`), so configs written before the option existed
    /// read and write unchanged.
    pub fn is_default(&self) -> bool {
        *self == Self::Epsilon
    }

    /// The coefficients `(a, b)` of `ε̂ = a x(t) + b F` at `(μ, σ)`.
    pub fn coefficients(&self, mu: f64, sigma: f64) -> (f64, f64) {
        match self {
            Self::Epsilon => (0.0, 1.0),
            Self::Preconditioned => {
                let s2 = mu * mu + sigma * sigma;
                (sigma / s2, -mu / s2.sqrt())
            }
        }
    }

    /// ε from the raw output `f` on inputs `x_t`, all items at one time `t` (sampling).
    pub fn epsilon<B: Backend, const D: usize>(
        &self,
        f: Tensor<B, D>,
        x_t: Tensor<B, D>,
        t: f64,
        schedule: &dyn NoiseSchedule,
    ) -> Tensor<B, D> {
        match self {
            Self::Epsilon => f,
            Self::Preconditioned => {
                let (a, b) = self.coefficients(schedule.mu(t), schedule.sigma(t));
                x_t.mul_scalar(a) + f.mul_scalar(b)
            }
        }
    }

    /// ε from the raw output `f` `[N, R]` on inputs `x_t` `[N, R]` at per-item times `t`
    /// (training batches).
    pub fn epsilon_per_item<B: Backend>(
        &self,
        f: Tensor<B, 2>,
        x_t: Tensor<B, 2>,
        t: &[f32],
        schedule: &dyn NoiseSchedule,
    ) -> Tensor<B, 2> {
        match self {
            Self::Epsilon => f,
            Self::Preconditioned => {
                let n = t.len();
                let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for &ti in t {
                    let ti = f64::from(ti);
                    let (ai, bi) = self.coefficients(schedule.mu(ti), schedule.sigma(ti));
                    a.push(ai as f32);
                    b.push(bi as f32);
                }
                let device = f.device();
                let a = Tensor::<B, 2>::from_data(TensorData::new(a, [n, 1]), &device);
                let b = Tensor::<B, 2>::from_data(TensorData::new(b, [n, 1]), &device);
                x_t * a + f * b
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::VpCosine;

    /// For `x ~ N(0, I)` the preconditioned model with `F = 0` is the exact ε, and Tweedie's
    /// estimate of x has coefficient σ/√(μ²+σ²) ≤ 1 on F at every time.
    #[test]
    fn zero_network_is_the_white_gaussian_epsilon() {
        let s = VpCosine::default();
        for t in [0.0, 0.1, 0.5, 0.9, 0.999, 1.0] {
            let (mu, sigma) = (s.mu(t), s.sigma(t));
            let (a, b) = Output::Preconditioned.coefficients(mu, sigma);
            // Exact E[ε | x(t)] for x ~ N(0, I): Cov[ε, x(t)] / Var[x(t)] = σ / (μ² + σ²).
            assert!((a - sigma / (mu * mu + sigma * sigma)).abs() < 1e-12);
            // x̂ = (x(t) − σ ε̂)/μ: coefficient of F is −σ b / μ.
            let gain = -sigma * b / mu;
            assert!(gain > 0.0 && gain <= 1.0 + 1e-12, "t={t}: {gain}");
        }
        assert_eq!(Output::Epsilon.coefficients(0.3, 0.7), (0.0, 1.0));
    }

    #[test]
    fn per_item_matches_shared_time() {
        type T = burn::backend::Flex;
        let s = VpCosine::default();
        let dev = Default::default();
        let x = Tensor::<T, 2>::from_floats([[1.0, -2.0], [0.5, 3.0]], &dev);
        let f = Tensor::<T, 2>::from_floats([[0.2, 0.1], [-1.0, 4.0]], &dev);
        let p = Output::Preconditioned;
        let both = p.epsilon_per_item(f.clone(), x.clone(), &[0.25, 0.75], &s);
        let both = both.into_data().to_vec::<f32>().unwrap();
        for (row, t) in [(0usize, 0.25f64), (1, 0.75)] {
            let one = p.epsilon(
                f.clone().slice([row..row + 1, 0..2]),
                x.clone().slice([row..row + 1, 0..2]),
                t,
                &s,
            );
            let one = one.into_data().to_vec::<f32>().unwrap();
            for j in 0..2 {
                assert!((one[j] - both[2 * row + j]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn reads_lowercase_and_defaults_to_epsilon() {
        #[derive(serde::Deserialize)]
        struct C {
            #[serde(default)]
            output: Output,
        }
        let c: C = toml::from_str("output = \"preconditioned\"").unwrap();
        assert_eq!(c.output, Output::Preconditioned);
        let c: C = toml::from_str("").unwrap();
        assert_eq!(c.output, Output::Epsilon);
        assert!(toml::from_str::<C>("output = \"score\"").is_err());
        assert_eq!(
            "preconditioned".parse::<Output>().unwrap(),
            Output::Preconditioned
        );
        let err = "score".parse::<Output>().unwrap_err().to_string();
        assert!(err.contains("known: epsilon, preconditioned"), "{err}");
    }
}
