//! Moment-matching posterior sampling (MMPS; Rozet, Andry, Lanusse & Louppe, "Learning
//! Diffusion Priors from Observations by Expectation Maximization", NeurIPS 2024).

use burn::tensor::{backend::AutodiffBackend, Tensor};

use super::{Detached, Guidance, GuidancePoint};
use crate::{Error, Result};

/// MMPS: the likelihood `p(y | x(t)) ≈ N(y | A(x̂), Σ_y + A V Aᵀ)` with Tweedie's covariance
/// `V = Cov[x | x(t)] = σ(t)²/μ(t) · ∂x̂/∂x(t)` in place of SDA's `(σ/μ)² γ I`, so the
/// guidance is as strong as the prior is certain, direction by direction:
///
/// `s_y = (∂x̂/∂x(t))ᵀ A'ᵀ b`, where `(Σ_y + A' V A'ᵀ) b = y − A(x̂)`
///
/// is solved per trajectory by `iterations` steps of conjugate gradients (preconditioned by
/// Σ_y⁻¹), whose matrix–vector products are `w ↦ Σ_y w + A' (σ²/μ) Jᵀ (A'ᵀ w)`: a VJP
/// through A, a VJP of the denoiser (one network forward and reverse pass; J is symmetric, so
/// this is also `J v`) and a JVP through A ([`GuidancePoint::observation_jvp`]; A is
/// linearised at x̂ when it is not linear). V is never formed. Cost per evaluation:
/// `1 + iterations` forwards and as many VJPs.
///
/// With an exact Gaussian prior ε and a linear A the approximation is exact (the posterior of x
/// given x(t) is Gaussian) once CG has converged, i.e. after at most M iterations.
///
/// Which covariance stands for V is [`Covariance`]: Tweedie's (the default, MMPS as published),
/// or a blend that stays bounded for networks whose output is ε itself.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mmps {
    /// Conjugate-gradient iterations per evaluation (2 by default; the paper's experiments use
    /// 1).
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// The covariance V of `x` given `x(t)` (default: Tweedie's).
    #[serde(default)]
    pub covariance: Covariance,
}

/// The covariance `V ≈ Cov[x | x(t)]` that MMPS's likelihood uses.
///
/// For a network whose output is ε (the paper's), Tweedie's covariance is
/// `V = σ²/μ² (I − σ ∂ε/∂x(t))`: at high noise, a difference of nearly equal terms multiplied by
/// `(σ/μ)² ≈ 10⁶` at t = 1, so an error δ of the network's Jacobian becomes an error `(σ/μ)² δ`
/// of V and, through `∂x̂/∂x(t) = (μ/σ²) V`, an error `δ/μ` of the guidance's gradient; the
/// samples diverge. The blend trusts the network in proportion to the signal's share of x(t):
///
/// `V_w = w · σ²/μ · ∂x̂/∂x(t) + (1 − w) · σ²/(μ² + σ²) · I`,  `w = μ²/(μ² + σ²)`,
///
/// where `σ²/(μ² + σ²) I` is the covariance of a standardised prior `N(0, I)` given x(t) (the
/// data's units). The network's error then enters V as `w (σ/μ)² σ δ ≤ δ`. At low noise
/// (`w → 1`) V_w is Tweedie's, at high noise the Gaussian prior's; between them it is biased
/// wherever the prior is not `N(0, I)` (the oracle's exact-prior rows use Tweedie's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Covariance {
    /// Tweedie's `σ²/μ · ∂x̂/∂x(t)` (exact for an exact prior score).
    #[default]
    Tweedie,
    /// The signal-weighted blend `V_w` of Tweedie's with the standardised Gaussian prior's.
    Blended,
}

/// Two CG iterations: on the oracle (4 observations of unequal prior certainty) one leaves a
/// mean error of 0.36 posterior std with the exact prior, two 0.07, four (= M) none.
fn default_iterations() -> usize {
    2
}

/// The most CG iterations accepted (each costs a network forward and VJP).
pub const MAX_ITERATIONS: usize = 1000;

impl Mmps {
    /// Checks `1 ≤ iterations ≤ MAX_ITERATIONS`.
    pub fn new(iterations: usize) -> Result<Self> {
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(Error::Invalid(format!(
                "MMPS iterations must lie in 1..={MAX_ITERATIONS} (each is a network forward and \
                 VJP), got {iterations}"
            )));
        }
        Ok(Self {
            iterations,
            covariance: Covariance::Tweedie,
        })
    }

    /// The same with another covariance.
    pub fn with_covariance(self, covariance: Covariance) -> Self {
        Self { covariance, ..self }
    }
}

/// Per-trajectory inner product of `[N, M]` tensors → `[N, 1]`.
fn dot<B: burn::tensor::backend::Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    (a * b).sum_dim(1)
}

impl<B: AutodiffBackend> Guidance<B> for Mmps {
    fn guide(&self, at: &GuidancePoint<'_, B>) -> (Detached<B, 3>, Detached<B, 3>) {
        let d = at.denoise();
        let x_hat: Detached<B, 3> = d.x_hat.clone().inner();
        let (mu, sigma) = (at.mu(), at.sigma());
        let weight = match self.covariance {
            Covariance::Tweedie => 1.0,
            Covariance::Blended => mu * mu / (mu * mu + sigma * sigma),
        };
        // V = w · σ²/μ · ∂x̂/∂x(t) + (1 − w) · σ²/(μ² + σ²) · I, and σ²/(μ² + σ²) = 1 − w
        let prior_part = (1.0 - weight).powi(2);
        let scale = weight * sigma * sigma / mu;
        let noise_var = at.noise_var().inner();
        let residual = at.y().inner() - at.observe(x_hat.clone());
        let matvec = |w: Detached<B, 2>| -> Detached<B, 2> {
            let u = at.observation_vjp(x_hat.clone(), w.clone());
            let mut vu = at.denoiser_vjp(u.clone()) * scale;
            if prior_part > 0.0 {
                vu = vu + u * prior_part;
            }
            w * noise_var.clone() + at.observation_jvp(x_hat.clone(), vu)
        };
        // preconditioned conjugate gradients from b = 0, per trajectory
        let mut b = residual.zeros_like();
        let mut r = residual;
        let mut z = r.clone() / noise_var.clone();
        let mut p = z.clone();
        let mut rz = dot(r.clone(), z.clone());
        for k in 0..self.iterations {
            let ap = matvec(p.clone());
            // a learned denoiser's Jacobian need not be positive semi-definite, so `pᵀ A V Aᵀ p`
            // can be negative; the curvature is kept at least Σ_y's, `pᵀ Σ_y p`, which bounds
            // the step by the one without prior uncertainty (exact for a PSD covariance,
            // where `pᵀ (Σ_y + A V Aᵀ) p ≥ pᵀ Σ_y p` anyway)
            let floor = dot(p.clone() * noise_var.clone(), p.clone());
            let curvature = dot(p.clone(), ap.clone()).max_pair(floor).clamp_min(1e-30);
            let alpha = rz.clone() / curvature;
            b = b + p.clone() * alpha.clone();
            if k + 1 == self.iterations {
                break;
            }
            r = r - ap * alpha;
            z = r.clone() / noise_var.clone();
            let rz_next = dot(r.clone(), z.clone());
            let beta = rz_next.clone() / rz.clamp_min(1e-30);
            p = z.clone() + p * beta;
            rz = rz_next;
        }
        let n = b.dims()[0];
        let q = (at.observation().apply(d.x_hat.clone()) * Tensor::from_inner(b.clone()))
            .sum_dim(1)
            .reshape([n]);
        let mut score = at.gradient(&d, q);
        if prior_part > 0.0 {
            // s_y = (∂x̂/∂x(t))ᵀ A'ᵀ b with ∂x̂/∂x(t) = (μ/σ²) V_w
            let prior_score = at.observation_vjp(x_hat, b) * (prior_part * mu / (sigma * sigma));
            score = score * weight + prior_score;
        }
        (d.epsilon.inner(), score)
    }
    fn describe(&self) -> String {
        match self.covariance {
            Covariance::Tweedie => format!("MMPS(cg={})", self.iterations),
            Covariance::Blended => format!("MMPS(cg={}, blended V)", self.iterations),
        }
    }
    /// Tweedie's V reads the network's Jacobian at high noise, where its error is multiplied by
    /// up to (σ/μ)²; the blended V bounds that (see [`Covariance`]).
    fn divergence_hint(&self) -> Option<String> {
        match self.covariance {
            Covariance::Tweedie => Some(
                "MMPS with Tweedie's covariance magnifies errors of the network's Jacobian at \
                 high noise; try --guidance-params 'covariance = \"blended\"'"
                    .into(),
            ),
            Covariance::Blended => None,
        }
    }
}

/// The blended covariance against Tweedie's: equal where the prior is the standardised Gaussian
/// the blend assumes at high noise, and bounded where the ε model's Jacobian is off.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::tensor::{backend::Backend, Tensor};
    use nalgebra::{DMatrix, DVector};

    use super::*;
    use crate::backend::{default_device, from_host, to_host, DefaultBackend, NoiseSource};
    use crate::guidance::Guided;
    use crate::observe::ops::Pick;
    use crate::schedule::{NoiseSchedule, VpCosine};
    use crate::score::gaussian::GaussianEpsilon;
    use crate::score::EpsilonModel;
    use crate::TrajectoryShape;

    type B = DefaultBackend;

    /// A prior ε with a Jacobian error `δ I` and no error at the point `x₀` (so that x̂ and the
    /// residual are exact there and only the covariance is off): `ε(x(t), t) + δ (x(t) − x₀)`.
    struct Perturbed {
        exact: GaussianEpsilon,
        delta: f64,
        at: Vec<f64>,
    }

    impl<Bk: Backend> EpsilonModel<Bk> for Perturbed {
        fn schedule(&self) -> &dyn NoiseSchedule {
            EpsilonModel::<Bk>::schedule(&self.exact)
        }
        fn check_shape(&self, len: usize, dim: usize) -> Result<()> {
            EpsilonModel::<Bk>::check_shape(&self.exact, len, dim)
        }
        fn epsilon(&self, x_t: Tensor<Bk, 3>, t: f64) -> Tensor<Bk, 3> {
            let at = from_host::<Bk, 3>(&self.at, x_t.dims(), &x_t.device());
            self.exact.epsilon(x_t.clone(), t) + (x_t - at) * self.delta
        }
    }

    const SHAPE: TrajectoryShape = TrajectoryShape { len: 6, dim: 2 };
    const Y: [f64; 3] = [0.8, -1.1, 0.4];

    fn standard_normal() -> GaussianEpsilon {
        let p = SHAPE.len * SHAPE.dim;
        let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
        GaussianEpsilon::new(SHAPE, DVector::zeros(p), DMatrix::identity(p, p), schedule).unwrap()
    }

    /// The point the scores are evaluated at (2 trajectories).
    fn point() -> Tensor<B, 3> {
        NoiseSource::new(4).normal::<B, 3>([2, SHAPE.len, SHAPE.dim], &default_device())
    }

    /// The likelihood score `s_y = (ε − ε_post)/σ` of MMPS (3 CG iterations = M) on `prior` at
    /// [`point`].
    fn likelihood_score<E: EpsilonModel<B>>(prior: E, covariance: Covariance, t: f64) -> Vec<f64> {
        let device = default_device();
        let pick = Pick::new(SHAPE, vec![0, 3, 5], vec![0], 0.1).unwrap();
        let mmps = Mmps::new(3).unwrap().with_covariance(covariance);
        let x = point();
        let sigma = prior.schedule().sigma(t);
        let eps = to_host(prior.epsilon(x.clone(), t));
        let guided = Guided::new(prior, &pick, &Y, mmps, &device).unwrap();
        let post = to_host(guided.epsilon(x, t));
        eps.iter()
            .zip(&post)
            .map(|(e, p)| (e - p) / sigma)
            .collect()
    }

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
    }

    fn max_abs(a: &[f64]) -> f64 {
        a.iter().fold(0.0, |m, x| m.max(x.abs()))
    }

    /// For the prior `N(0, I)` Tweedie's covariance is `σ²/(μ² + σ²) I` at every t, which is
    /// what the blend mixes it with, so the two guidances agree (to f32 rounding).
    #[test]
    fn the_blend_is_tweedie_s_for_the_standard_gaussian_prior() {
        for t in [0.05, 0.5, 0.9] {
            let tweedie = likelihood_score(standard_normal(), Covariance::Tweedie, t);
            let blended = likelihood_score(standard_normal(), Covariance::Blended, t);
            let e = max_abs_diff(&blended, &tweedie) / max_abs(&tweedie);
            assert!(e < 1e-4, "t = {t}: relative difference {e:.2e}");
        }
    }

    /// A Jacobian error of 1e-3 (a small one for a trained network) near t = 1 (t = 0.99, μ = 0.0022),
    /// with x̂ and the residual exact: Tweedie's covariance turns it into a likelihood score
    /// orders of magnitude off, the blend into an error of under 1% of it.
    #[test]
    fn the_blend_bounds_a_jacobian_error_at_high_noise() {
        let t = 0.99;
        let exact = likelihood_score(standard_normal(), Covariance::Tweedie, t);
        let perturbed = |covariance| {
            let prior = Perturbed {
                exact: standard_normal(),
                delta: 1e-3,
                at: to_host(point()),
            };
            likelihood_score(prior, covariance, t)
        };
        let scale = max_abs(&exact);
        let tweedie = max_abs_diff(&perturbed(Covariance::Tweedie), &exact) / scale;
        let blended = max_abs_diff(&perturbed(Covariance::Blended), &exact) / scale;
        println!("relative error of s_y: Tweedie {tweedie:.3}, blended {blended:.4}");
        assert!(tweedie > 1.0, "Tweedie's: {tweedie}");
        assert!(blended < 0.01, "blended: {blended}");
    }

    /// A run that diverges under MMPS with Tweedie's covariance ends with an error that names
    /// the blended covariance (the guidance behind a `dyn` reference, the guided ε and the
    /// sub-batching around it pass its hint to the sampler); with the blended covariance the
    /// error has no such hint.
    #[test]
    fn a_diverged_tweedie_run_names_the_blended_covariance() {
        let device = default_device();
        let pick = Pick::new(SHAPE, vec![0, 3, 5], vec![0], 0.1).unwrap();
        let error = |covariance| {
            // a prior whose ε is not finite: the run diverges at the first check
            let prior = Perturbed {
                exact: standard_normal(),
                delta: f64::NAN,
                at: to_host(point()),
            };
            let mmps = Mmps::new(2).unwrap().with_covariance(covariance);
            let opts = crate::sampler::SampleOptions {
                samples: 2,
                steps: 4,
                ..Default::default()
            };
            let ddim = crate::sampler::Ddim::new(0.0).unwrap();
            // as the commands sample: a `dyn Guidance`, guided and cut into sub-batches (one
            // here: `Perturbed` is fixed to the two trajectories of `point`)
            let guidance: &dyn Guidance<B> = &mmps;
            let run = crate::sampler::sample_posterior::<B, _>(
                prior, &pick, &Y, guidance, &ddim, &opts, 2, &device,
            );
            match run {
                Err(crate::Error::Numerical(message)) => message,
                other => panic!("expected a divergence error, got {:?}", other.map(|r| r.1)),
            }
        };
        let tweedie = error(Covariance::Tweedie);
        assert!(
            tweedie.contains("became non-finite")
                && tweedie.contains("--guidance-params 'covariance = \"blended\"'"),
            "{tweedie}"
        );
        let blended = error(Covariance::Blended);
        assert!(
            blended.contains("became non-finite") && !blended.contains("covariance"),
            "{blended}"
        );
    }
}
