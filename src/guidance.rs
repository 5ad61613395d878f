//! Likelihood scores that turn a prior ε into a posterior ε (paper §3.2, Algorithm 3; DPS).
//!
//! Given `x(t)`, the prior noise `ε = ε(x(t), t)` and Tweedie's estimate
//! `x̂ = (x(t) − σ(t) ε) / μ(t)`, a [`Guidance`] defines a per-trajectory surrogate `q_n` whose
//! gradient with respect to `x(t)` — taken by reverse-mode autodiff through the observation
//! operator A **and** through the score network — is the likelihood score
//! `s_y ≈ ∇_{x(t)} log p(y | x(t))`. [`Guided`] then returns `ε_post = ε − σ(t) s_y`
//! (the ε-space form of paper eq. 7), itself an [`EpsilonModel`].

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};

use crate::backend::from_host;
use crate::observe::{check_observation, ObservationModel};
use crate::schedule::NoiseSchedule;
use crate::score::EpsilonModel;
use crate::{Error, Result};

/// A likelihood-score approximation, as a per-trajectory surrogate of the residual
/// `r = y − A(x̂)` (`[N, M]`), whose gradient with respect to `x(t)` is `s_y`.
pub trait Guidance<B: Backend>: Send + Sync {
    /// The surrogate `q_n` for each trajectory (`[N]`). `noise_var` is diag Σ_y (`[1, M]`).
    fn surrogate(
        &self,
        residual: Tensor<B, 2>,
        noise_var: Tensor<B, 2>,
        mu: f64,
        sigma: f64,
    ) -> Tensor<B, 1>;
    /// One-line description for tables.
    fn describe(&self) -> String;
}

/// SDA's stable likelihood score (**Algorithm 3**, paper eq. 15 with `AΓAᵀ ≈ γ I`):
/// `log p(y | x(t)) ≈ −½ Σ r² / v`, `v = Σ_y + (σ(t)/μ(t))² γ`.
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

impl<B: Backend> Guidance<B> for SdaGaussian {
    fn surrogate(
        &self,
        residual: Tensor<B, 2>,
        noise_var: Tensor<B, 2>,
        mu: f64,
        sigma: f64,
    ) -> Tensor<B, 1> {
        let n = residual.dims()[0];
        let v = noise_var + (sigma / mu).powi(2) * self.gamma;
        (residual.powi_scalar(2) / v).sum_dim(1).reshape([n]) * (-0.5)
    }
    fn describe(&self) -> String {
        format!("SDA(gamma={})", self.gamma)
    }
}

/// Diffusion posterior sampling (Chung et al. 2023), the baseline:
/// `e_n = ‖y − A(x̂_n)‖²`, `s_y = −ζ ∇ e_n / √e_n`, computed **per trajectory**.
/// Σ_y is ignored, as in the original method.
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

impl<B: Backend> Guidance<B> for Dps {
    fn surrogate(
        &self,
        residual: Tensor<B, 2>,
        _noise_var: Tensor<B, 2>,
        _mu: f64,
        _sigma: f64,
    ) -> Tensor<B, 1> {
        let n = residual.dims()[0];
        let e = residual.powi_scalar(2).sum_dim(1).reshape([n]);
        // ∇(e / √ê) with ê = e held constant equals ∇e / √e
        let norm = e.clone().detach().sqrt().clamp_min(1e-12);
        e / norm * (-self.zeta)
    }
    fn describe(&self) -> String {
        format!("DPS(zeta={})", self.zeta)
    }
}

/// A posterior noise model `ε_post = ε − σ(t) s_y` built from a prior [`EpsilonModel`], an
/// observation model, an observation y and a [`Guidance`].
pub struct Guided<B: Backend, E, O, G> {
    prior: E,
    observation: O,
    guidance: G,
    y: Tensor<B, 2>,
    noise_var: Tensor<B, 2>,
}

impl<B, E, O, G> Guided<B, E, O, G>
where
    B: AutodiffBackend,
    E: EpsilonModel<B>,
    O: ObservationModel<B>,
    G: Guidance<B>,
{
    /// Checks that y fits the observation model (length, finite) and that the prior supports
    /// the observation's trajectory shape.
    pub fn new(
        prior: E,
        observation: O,
        y: &[f64],
        guidance: G,
        device: &B::Device,
    ) -> Result<Self> {
        check_observation::<B>(&observation, y)?;
        let shape = observation.trajectory_shape();
        prior.check_shape(shape.len, shape.dim)?;
        let m = y.len();
        let var: Vec<f64> = observation.noise_std().iter().map(|s| s * s).collect();
        Ok(Self {
            y: from_host::<B, 2>(y, [1, m], device),
            noise_var: from_host::<B, 2>(&var, [1, m], device),
            prior,
            observation,
            guidance,
        })
    }

    /// The prior ε and the likelihood score `s_y = ∇_{x(t)} Σ_n q_n` at `(x(t), t)`,
    /// both detached (on the inner backend).
    pub fn prior_and_likelihood_score(
        &self,
        x_t: Tensor<B, 3>,
        t: f64,
    ) -> (Tensor<B::InnerBackend, 3>, Tensor<B::InnerBackend, 3>) {
        let schedule = self.prior.schedule();
        let (mu, sigma) = (schedule.mu(t), schedule.sigma(t));
        let x = x_t.detach().require_grad();
        let eps = self.prior.epsilon(x.clone(), t);
        let x_hat = (x.clone() - eps.clone() * sigma) / mu;
        let residual = self.y.clone() - self.observation.apply(x_hat);
        let q = self
            .guidance
            .surrogate(residual, self.noise_var.clone(), mu, sigma)
            .sum();
        let grads = q.backward();
        let score = x
            .grad(&grads)
            .unwrap_or_else(|| eps.clone().inner().zeros_like());
        (eps.inner(), score)
    }

    /// The observation model.
    pub fn observation(&self) -> &O {
        &self.observation
    }
}

impl<B, E, O, G> EpsilonModel<B> for Guided<B, E, O, G>
where
    B: AutodiffBackend,
    E: EpsilonModel<B>,
    O: ObservationModel<B>,
    G: Guidance<B>,
{
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.prior.schedule()
    }

    fn check_shape(&self, len: usize, dim: usize) -> Result<()> {
        let shape = self.observation.trajectory_shape();
        if (len, dim) != (shape.len, shape.dim) {
            return Err(Error::Shape(format!(
                "trajectories of {len}×{dim} do not match the observation model, built for {}×{}",
                shape.len, shape.dim
            )));
        }
        self.prior.check_shape(len, dim)
    }

    fn epsilon(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let sigma = self.prior.schedule().sigma(t);
        let (eps, score) = self.prior_and_likelihood_score(x_t, t);
        Tensor::from_inner(eps - score * sigma)
    }
}

impl<B: Backend, T: Guidance<B> + ?Sized> Guidance<B> for Box<T> {
    fn surrogate(
        &self,
        residual: Tensor<B, 2>,
        noise_var: Tensor<B, 2>,
        mu: f64,
        sigma: f64,
    ) -> Tensor<B, 1> {
        (**self).surrogate(residual, noise_var, mu, sigma)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

impl<B: Backend, T: Guidance<B> + ?Sized> Guidance<B> for &T {
    fn surrogate(
        &self,
        residual: Tensor<B, 2>,
        noise_var: Tensor<B, 2>,
        mu: f64,
        sigma: f64,
    ) -> Tensor<B, 1> {
        (**self).surrogate(residual, noise_var, mu, sigma)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
