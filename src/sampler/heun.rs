//! Heun's second-order solver of the probability-flow ODE (Karras, Aittala, Aila & Laine,
//! "Elucidating the design space of diffusion-based generative models", NeurIPS 2022, Alg. 1).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::Sampler;
use crate::backend::NoiseSource;
use crate::score::EpsilonModel;

/// Heun's method on the probability-flow ODE written in the scaled state `x̃ = x/μ` and the
/// noise-to-signal ratio `κ = σ/μ`, where it reads `dx̃/dκ = ε(μ x̃, t)`: DDIM is Euler's method
/// in these variables, and Heun averages the slope at both ends,
/// `x̃' = x̃ + (κ' − κ) (ε(x, t) + ε(x_E, t'))/2` with `x_E` the Euler (DDIM) point. Second order;
/// two evaluations per step.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Heun {}

impl<B: Backend> Sampler<B> for Heun {
    fn step(
        &self,
        eps: &dyn EpsilonModel<B>,
        x: Tensor<B, 3>,
        t: f64,
        t_next: f64,
        _noise: &mut NoiseSource,
    ) -> Tensor<B, 3> {
        let schedule = eps.schedule();
        let (mu, mu_next) = (schedule.mu(t), schedule.mu(t_next));
        let dk = schedule.sigma(t_next) / mu_next - schedule.sigma(t) / mu;
        let scaled = x.clone() / mu;
        let e1 = eps.epsilon(x, t);
        let euler = (scaled.clone() + e1.clone() * dk) * mu_next;
        let e2 = eps.epsilon(euler, t_next);
        (scaled + (e1 + e2) * (0.5 * dk)) * mu_next
    }

    fn evaluations_per_step(&self) -> usize {
        2
    }

    fn describe(&self) -> String {
        "Heun".into()
    }
}
