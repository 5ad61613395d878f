//! SDA's likelihood score (paper §3.2, **Algorithm 3**).

use burn::tensor::{backend::AutodiffBackend, Tensor};

use super::{Detached, Guidance, GuidancePoint};
use crate::{Error, Result};

/// SDA's stable likelihood score (**Algorithm 3**, paper eq. 15 with `AΓAᵀ ≈ γ I`):
/// `log p(y | x(t)) ≈ −½ Σ r² / v`, `r = y − A(x̂)`, `v = Σ_y + (σ(t)/μ(t))² γ`, differentiated
/// through A and the network. One forward and one VJP per evaluation.
///
/// With `linearise = true` and an observation `y = g(H x) + η` with a pointwise link g
/// ([`crate::observe::ObservationModel::link`], e.g. arctan), eq. 15's `A Γ Aᵀ` is taken with A
/// linearised at x̂ and `H Hᵀ ≈ I` as before: `v_j = Σ_y,j + (σ/μ)² γ g′((H x̂)_j)²`, the factor
/// held constant in x(t). Where the link is steep this widens v, where it is flat it narrows it,
/// so that the guidance pulls on x as hard wherever the observation's slope is. A model without
/// a link is linear, g′ = 1, and the option changes nothing.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SdaGaussian {
    /// γ of the covariance approximation `Cov[x | x(t)] ≈ (σ/μ)² γ I` (1e-2 in the paper).
    pub gamma: f64,
    /// Scale γ by the squared slope of the observation's link at x̂ (default false).
    #[serde(default)]
    pub linearise: bool,
}

impl SdaGaussian {
    /// Checks γ ≥ 0 and finite.
    pub fn new(gamma: f64) -> Result<Self> {
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(Error::Invalid(format!(
                "SDA gamma must be ≥ 0, got {gamma}"
            )));
        }
        Ok(Self {
            gamma,
            linearise: false,
        })
    }

    /// The same guidance, with or without the link's slope in v.
    pub fn linearised(self, linearise: bool) -> Self {
        Self { linearise, ..self }
    }
}

impl<B: AutodiffBackend> Guidance<B> for SdaGaussian {
    fn guide(&self, at: &GuidancePoint<'_, B>) -> (Detached<B, 3>, Detached<B, 3>) {
        let d = at.denoise();
        let residual = at.y() - at.observation().apply(d.x_hat.clone());
        let widen = (at.sigma() / at.mu()).powi(2) * self.gamma;
        let v: Tensor<B, 2> = match at.observation().link().filter(|_| self.linearise) {
            Some((link, linear)) => {
                let slope = link.derivative_tensor(linear.apply(d.x_hat.clone().detach()));
                slope.powi_scalar(2) * widen + at.noise_var()
            }
            None => at.noise_var() + widen,
        };
        let n = residual.dims()[0];
        let q = (residual.powi_scalar(2) / v).sum_dim(1).reshape([n]) * (-0.5);
        let score = at.gradient(&d, q);
        (d.epsilon.inner(), score)
    }
    fn describe(&self) -> String {
        if self.linearise {
            format!("SDA(gamma={}, linearised)", self.gamma)
        } else {
            format!("SDA(gamma={})", self.gamma)
        }
    }
}

/// The linearised covariance against a hand-derived score: for the prior `N(0, I)` under the
/// VP schedule, x̂ = μ x(t) and ∂x̂/∂x(t) = μ I, so
/// `s_y = μ Σ_j g′(u_j) r_j / v_j · e_{s_j}` with `u_j = x̂_{s_j}`, `r_j = y_j − g(u_j)` and
/// `v_j = σ_y² + (σ/μ)² γ g′(u_j)²`.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nalgebra::{DMatrix, DVector};

    use super::*;
    use crate::backend::{default_device, to_host, DefaultBackend, NoiseSource};
    use crate::guidance::Guided;
    use crate::observe::link::{ArctanLink, Link};
    use crate::observe::ops::Pick;
    use crate::schedule::{NoiseSchedule, VpCosine};
    use crate::score::gaussian::GaussianEpsilon;
    use crate::score::EpsilonModel;
    use crate::TrajectoryShape;

    type B = DefaultBackend;
    const SHAPE: TrajectoryShape = TrajectoryShape { len: 5, dim: 2 };
    const STATES: [usize; 3] = [0, 2, 4];
    const Y: [f64; 3] = [0.9, -0.4, 1.2];
    const SIGMA_Y: f64 = 0.05;
    const GAMMA: f64 = 0.1;

    /// `(ε − ε_post)/σ` of the guidance on the standard Gaussian prior at t, with x(t) and the
    /// pick (component 0 of `STATES`) returned for the hand computation.
    fn likelihood_score(guidance: SdaGaussian, link: Option<Link>, t: f64) -> (Vec<f64>, Vec<f64>) {
        let device = default_device();
        let p = SHAPE.len * SHAPE.dim;
        let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
        let prior =
            GaussianEpsilon::new(SHAPE, DVector::zeros(p), DMatrix::identity(p, p), schedule)
                .unwrap();
        let mut pick = Pick::new(SHAPE, STATES.to_vec(), vec![0], SIGMA_Y).unwrap();
        if let Some(link) = link {
            pick = pick.with_link(link);
        }
        let x = NoiseSource::new(7).normal::<B, 3>([1, SHAPE.len, SHAPE.dim], &device);
        let sigma = EpsilonModel::<B>::schedule(&prior).sigma(t);
        let eps = to_host(prior.epsilon(x.clone(), t));
        let guided = Guided::new(prior, &pick, &Y, guidance, &device).unwrap();
        let post = to_host(guided.epsilon(x.clone(), t));
        let s = eps
            .iter()
            .zip(&post)
            .map(|(e, q)| (e - q) / sigma)
            .collect();
        (s, to_host(x))
    }

    #[test]
    fn the_linearised_variance_is_eq_15_with_the_link_s_slope() {
        let link = Link::arctan(ArctanLink {
            offset: 0.3,
            scale: 2.0,
        })
        .unwrap();
        let schedule = VpCosine::default();
        for t in [0.2, 0.6, 0.9] {
            let (mu, sigma) = (schedule.mu(t), schedule.sigma(t));
            let guidance = SdaGaussian::new(GAMMA).unwrap().linearised(true);
            let (s, x) = likelihood_score(guidance, Some(link), t);
            let mut expected = vec![0.0; x.len()];
            for (j, &state) in STATES.iter().enumerate() {
                let i = state * SHAPE.dim;
                let u = mu * x[i];
                let slope = link.derivative(u);
                let v = SIGMA_Y * SIGMA_Y + (sigma / mu).powi(2) * GAMMA * slope * slope;
                expected[i] = mu * slope * (Y[j] - link.value(u)) / v;
            }
            let scale = expected.iter().fold(0.0f64, |m, e| m.max(e.abs()));
            for (a, e) in s.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-3 * scale, "t = {t}: {a} against {e}");
            }
            // without the option the variance is eq. 15 with A Γ Aᵀ ≈ γ I: a different score
            let (plain, _) = likelihood_score(SdaGaussian::new(GAMMA).unwrap(), Some(link), t);
            let differ = plain
                .iter()
                .zip(&s)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(differ > 1e-2 * scale, "t = {t}: {differ}");
        }
    }

    /// A linear observation has slope 1: the option changes nothing.
    #[test]
    fn linearising_a_linear_observation_changes_nothing() {
        let linear = SdaGaussian::new(GAMMA).unwrap();
        let (a, _) = likelihood_score(linear, None, 0.7);
        let (b, _) = likelihood_score(linear.linearised(true), None, 0.7);
        assert_eq!(a, b);
    }
}
