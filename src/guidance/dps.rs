//! Diffusion posterior sampling (Chung, Kim, Mccann, Klasky & Ye, ICLR 2023), the baseline.

use burn::tensor::backend::AutodiffBackend;

use super::{surrogate_score, Detached, Guidance, GuidancePoint};
use crate::{Error, Result};

/// Diffusion posterior sampling: `e_n = ‖y − A(x̂_n)‖²`, `s_y = −ζ ∇ e_n / √e_n`, computed
/// **per trajectory**. Σ_y is ignored, as in the original method. One forward and one VJP per
/// evaluation.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dps {
    /// Step size ζ (1 in the reference setup).
    pub zeta: f64,
}

impl Dps {
    /// Checks ζ ≥ 0 and finite.
    pub fn new(zeta: f64) -> Result<Self> {
        if !(zeta.is_finite() && zeta >= 0.0) {
            return Err(Error::Invalid(format!("DPS zeta must be ≥ 0, got {zeta}")));
        }
        Ok(Self { zeta })
    }
}

impl<B: AutodiffBackend> Guidance<B> for Dps {
    fn guide(&self, at: &GuidancePoint<'_, B>) -> (Detached<B, 3>, Detached<B, 3>) {
        surrogate_score(at, |residual, _noise_var, _mu, _sigma| {
            let n = residual.dims()[0];
            let e = residual.powi_scalar(2).sum_dim(1).reshape([n]);
            // ∇(e / √ê) with ê = e held constant equals ∇e / √e
            let norm = e.clone().detach().sqrt().clamp_min(1e-12);
            e / norm * (-self.zeta)
        })
    }
    fn describe(&self) -> String {
        format!("DPS(zeta={})", self.zeta)
    }
}
