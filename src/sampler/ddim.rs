//! DDIM and DDPM (ancestral) steps of one family (Song, Meng & Ermon, ICLR 2021; Ho, Jain &
//! Abbeel, NeurIPS 2020), for any schedule `x(t) = μ(t) x + σ(t) ε`.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::Sampler;
use crate::backend::NoiseSource;
use crate::schedule::NoiseSchedule;
use crate::score::EpsilonModel;
use crate::{Error, Result};

/// The forward kernel from `t'` up to `t > t'`: `x(t) = a x(t') + s z` with `a = μ(t)/μ(t')`,
/// `s² = σ(t)² − a² σ(t')²` (clamped at 0).
pub fn forward_kernel(schedule: &dyn NoiseSchedule, t_low: f64, t_high: f64) -> (f64, f64) {
    let a = schedule.mu(t_high) / schedule.mu(t_low);
    let s2 = schedule.sigma(t_high).powi(2) - (a * schedule.sigma(t_low)).powi(2);
    (a, s2.max(0.0).sqrt())
}

/// The generalised DDIM step: with Tweedie's `x̂ = (x(t) − σ(t) ε) / μ(t)`,
/// `x(t') = μ(t') x̂ + √(σ(t')² − c²) ε + c z`, `c = η s σ(t')/σ(t)` where `s` is the forward
/// kernel's noise from `t'` to `t` ([`forward_kernel`]). `η = 0` is deterministic DDIM (the
/// predictor of Algorithm 4); `η = 1` draws from the forward process's posterior
/// `q(x(t') | x(t), x = x̂)`: ancestral DDPM sampling. One evaluation per step.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ddim {
    /// The stochasticity η ∈ [0, 1] (0: DDIM, 1: DDPM).
    #[serde(default)]
    pub eta: f64,
}

impl Ddim {
    /// Checks η ∈ [0, 1].
    pub fn new(eta: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&eta) {
            return Err(Error::Invalid(format!(
                "DDIM eta must lie in [0, 1] (0: deterministic DDIM, 1: ancestral DDPM), got {eta}"
            )));
        }
        Ok(Self { eta })
    }
}

impl<B: Backend> Sampler<B> for Ddim {
    fn step(
        &self,
        eps: &dyn EpsilonModel<B>,
        x: Tensor<B, 3>,
        t: f64,
        t_next: f64,
        noise: &mut NoiseSource,
    ) -> Tensor<B, 3> {
        let schedule = eps.schedule();
        let (sigma, sigma_next) = (schedule.sigma(t), schedule.sigma(t_next));
        let r = schedule.mu(t_next) / schedule.mu(t);
        let c = self.eta * forward_kernel(schedule, t_next, t).1 * sigma_next / sigma;
        // μ(t') x̂ + √(σ(t')² − c²) ε, with x̂ = (x − σ ε)/μ, written as Algorithm 4's
        // predictor `r x + (·) ε` so that η = 0 is that predictor to the bit
        let e = eps.epsilon(x.clone(), t);
        let mut next = x * r + e * ((sigma_next.powi(2) - c * c).max(0.0).sqrt() - r * sigma);
        if c > 0.0 {
            let z = noise.normal::<B, 3>(next.dims(), &next.device());
            next = next + z * c;
        }
        next
    }

    fn evaluations_per_step(&self) -> usize {
        1
    }

    fn describe(&self) -> String {
        match self.eta {
            0.0 => "DDIM".into(),
            1.0 => "DDPM".into(),
            eta => format!("DDIM (eta={eta})"),
        }
    }
}
