//! SDA's likelihood score (paper §3.2, **Algorithm 3**).

use burn::tensor::backend::AutodiffBackend;

use super::{surrogate_score, Detached, Guidance, GuidancePoint};
use crate::{Error, Result};

/// SDA's stable likelihood score (**Algorithm 3**, paper eq. 15 with `AΓAᵀ ≈ γ I`):
/// `log p(y | x(t)) ≈ −½ Σ r² / v`, `r = y − A(x̂)`, `v = Σ_y + (σ(t)/μ(t))² γ`, differentiated
/// through A and the network. One forward and one VJP per evaluation.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SdaGaussian {
    /// γ of the covariance approximation `Cov[x | x(t)] ≈ (σ/μ)² γ I` (1e-2 in the paper).
    pub gamma: f64,
}

impl SdaGaussian {
    /// Checks γ ≥ 0 and finite.
    pub fn new(gamma: f64) -> Result<Self> {
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(Error::Invalid(format!(
                "SDA gamma must be ≥ 0, got {gamma}"
            )));
        }
        Ok(Self { gamma })
    }
}

impl<B: AutodiffBackend> Guidance<B> for SdaGaussian {
    fn guide(&self, at: &GuidancePoint<'_, B>) -> (Detached<B, 3>, Detached<B, 3>) {
        surrogate_score(at, |residual, noise_var, mu, sigma| {
            let n = residual.dims()[0];
            let v = noise_var + (sigma / mu).powi(2) * self.gamma;
            (residual.powi_scalar(2) / v).sum_dim(1).reshape([n]) * (-0.5)
        })
    }
    fn describe(&self) -> String {
        format!("SDA(gamma={})", self.gamma)
    }
}
