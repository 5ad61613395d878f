//! Likelihood scores that turn a prior ε into a posterior ε (paper §3.2, Algorithm 3; DPS;
//! MMPS).
//!
//! At a point `x(t)` of the reverse diffusion, a [`Guidance`] approximates the likelihood score
//! `s_y ≈ ∇_{x(t)} log p(y | x(t))`; [`Guided`] then returns `ε_post = ε − σ(t) s_y` (the
//! ε-space form of paper eq. 7), itself an [`EpsilonModel`]. A guidance sees the point through a
//! [`GuidancePoint`], which gives it what every approximation is built from:
//! - Tweedie's denoiser `x̂ = E[x | x(t)] = (x(t) − σ(t) ε(x(t), t)) / μ(t)` (paper eq. 9) with
//!   its autodiff graph ([`GuidancePoint::denoise`]), and the gradient of any scalar built on it
//!   ([`GuidancePoint::gradient`]);
//! - vector–Jacobian products of the denoiser, `v ↦ (∂x̂/∂x(t))ᵀ v` ([`GuidancePoint::denoiser_vjp`]):
//!   with Tweedie's covariance `Cov[x | x(t)] = σ(t)²/μ(t) · ∂x̂/∂x(t)` (symmetric), these are
//!   covariance–vector products that never form the covariance;
//! - the observation operator A, its VJP and its JVP at a point ([`GuidancePoint::observation_vjp`],
//!   [`GuidancePoint::observation_jvp`]), y and diag Σ_y.
//!
//! Each approximation is one small impl: [`SdaGaussian`] (Algorithm 3, `sda.rs`), [`Dps`]
//! (`dps.rs`) and [`Mmps`] (moment matching, `mmps.rs`). Every network forward and VJP a
//! guidance makes is counted ([`Passes`]), so a run reports its cost.

pub mod dps;
pub mod mmps;
pub mod sda;

use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{backend::AutodiffBackend, Tensor};

pub use dps::Dps;
pub use mmps::Mmps;
pub use sda::SdaGaussian;

use crate::backend::from_host;
use crate::observe::{check_observation, ObservationModel};
use crate::schedule::NoiseSchedule;
use crate::score::{EpsilonModel, Passes, Vjp};
use crate::{Error, Result};

/// The inner (non-autodiff) backend's tensors: what a guidance returns, detached.
pub type Detached<B, const D: usize> = Tensor<<B as AutodiffBackend>::InnerBackend, D>;

/// A likelihood-score approximation `s_y ≈ ∇_{x(t)} log p(y | x(t))`.
pub trait Guidance<B: AutodiffBackend>: Send + Sync {
    /// The prior ε at the point and the likelihood score `s_y` (`[N, L, D]` each, detached).
    fn guide(&self, at: &GuidancePoint<'_, B>) -> (Detached<B, 3>, Detached<B, 3>);
    /// One-line description for tables.
    fn describe(&self) -> String;
    /// What to try when samples guided by this guidance diverge, if something specific is known
    /// (appended to the sampler's or the command's error); `None` by default.
    fn divergence_hint(&self) -> Option<String> {
        None
    }
}

/// Tweedie's denoiser at a point, with its autodiff graph: the leaf `x(t)`, the prior ε and
/// `x̂ = (x(t) − σ ε) / μ`.
///
/// Where the prior writes its own reverse pass ([`EpsilonModel::epsilon_with_vjp`]), ε is a
/// second leaf and the network's VJP is applied to its gradient in
/// [`GuidancePoint::gradient`]; otherwise ε carries the network's autodiff graph.
pub struct Denoised<'a, B: AutodiffBackend> {
    /// The leaf `x(t)` that gradients are taken with respect to.
    pub x_t: Tensor<B, 3>,
    /// The prior ε(x(t), t).
    pub epsilon: Tensor<B, 3>,
    /// Tweedie's `x̂ = E[x | x(t)]`.
    pub x_hat: Tensor<B, 3>,
    /// The prior's VJP at `x(t)` when ε is a leaf.
    vjp: Option<Vjp<'a, B>>,
}

/// What a [`Guidance`] sees at one point `(x(t), t)` of the reverse diffusion.
pub struct GuidancePoint<'a, B: AutodiffBackend> {
    prior: &'a dyn EpsilonModel<B>,
    observation: &'a dyn ObservationModel<B>,
    y: &'a Tensor<B, 2>,
    noise_var: &'a Tensor<B, 2>,
    x_t: Detached<B, 3>,
    t: f64,
    passes: &'a PassCounter,
}

impl<'a, B: AutodiffBackend> GuidancePoint<'a, B> {
    /// μ(t).
    pub fn mu(&self) -> f64 {
        self.prior.schedule().mu(self.t)
    }
    /// σ(t).
    pub fn sigma(&self) -> f64 {
        self.prior.schedule().sigma(self.t)
    }
    /// The diffusion time t.
    pub fn t(&self) -> f64 {
        self.t
    }
    /// The point `x(t)` (`[N, L, D]`, detached).
    pub fn x_t(&self) -> Detached<B, 3> {
        self.x_t.clone()
    }
    /// The observation y (`[1, M]`).
    pub fn y(&self) -> Tensor<B, 2> {
        self.y.clone()
    }
    /// The diagonal of Σ_y (`[1, M]`).
    pub fn noise_var(&self) -> Tensor<B, 2> {
        self.noise_var.clone()
    }
    /// The observation model, whose `apply` is the measurement function A.
    pub fn observation(&self) -> &dyn ObservationModel<B> {
        self.observation
    }

    /// Tweedie's denoiser at the point, with its graph (one network forward).
    pub fn denoise(&self) -> Denoised<'a, B> {
        let (mu, sigma) = (self.mu(), self.sigma());
        let x = self.x_t.clone();
        self.passes.add_forwards(x.dims()[0]);
        let x_t = Tensor::<B, 3>::from_inner(x.clone()).require_grad();
        let (epsilon, vjp) = match self.prior.epsilon_with_vjp(x, self.t) {
            Some((eps, vjp)) => (Tensor::from_inner(eps).require_grad(), Some(vjp)),
            None => (self.prior.epsilon(x_t.clone(), self.t), None),
        };
        let x_hat = (x_t.clone() - epsilon.clone() * sigma) / mu;
        Denoised {
            x_t,
            epsilon,
            x_hat,
            vjp,
        }
    }

    /// `∇_{x(t)} Σ_n q_n` for a per-trajectory scalar `q` (`[N]`) built on `denoised` (one
    /// reverse pass through the network; the graph is consumed).
    pub fn gradient(&self, denoised: &Denoised<'_, B>, q: Tensor<B, 1>) -> Detached<B, 3> {
        self.passes.add_vjps(denoised.x_t.dims()[0]);
        let grads = q.sum().backward();
        let direct = denoised
            .x_t
            .grad(&grads)
            .unwrap_or_else(|| denoised.x_t.clone().inner().zeros_like());
        // with a hand-written reverse pass, ε is a leaf: its gradient through the network
        let through_network = denoised
            .vjp
            .as_ref()
            .and_then(|vjp| denoised.epsilon.grad(&grads).map(vjp));
        match through_network {
            Some(g) => direct + g,
            None => direct,
        }
    }

    /// The denoiser's vector–Jacobian product `(∂x̂/∂x(t))ᵀ v` at the point (one network
    /// forward and one reverse pass). The Jacobian is symmetric (it is `μ/σ²` times Tweedie's
    /// covariance), so this is also its Jacobian–vector product.
    pub fn denoiser_vjp(&self, v: Detached<B, 3>) -> Detached<B, 3> {
        let d = self.denoise();
        let n = v.dims()[0];
        let q = (d.x_hat.clone() * Tensor::from_inner(v))
            .reshape([n as i32, -1])
            .sum_dim(1)
            .reshape([n]);
        self.gradient(&d, q)
    }

    /// A at `x` (`[N, L, D]` → `[N, M]`), detached.
    pub fn observe(&self, x: Detached<B, 3>) -> Detached<B, 2> {
        self.observation.apply(Tensor::from_inner(x)).inner()
    }

    /// The observation operator's VJP `A'(x)ᵀ w` (`w`: `[N, M]`), by reverse-mode autodiff
    /// through A alone (no network pass).
    pub fn observation_vjp(&self, x: Detached<B, 3>, w: Detached<B, 2>) -> Detached<B, 3> {
        let x = Tensor::<B, 3>::from_inner(x).require_grad();
        let a = self.observation.apply(x.clone());
        let grads = (a * Tensor::from_inner(w)).sum().backward();
        x.grad(&grads)
            .unwrap_or_else(|| x.clone().inner().zeros_like())
    }

    /// The observation operator's JVP `A'(x) u` by a central difference of A along `u`, with a
    /// step of 1e-2 of `|x|` relative to `|u|` (per trajectory). Exact up to rounding for a
    /// linear A; for a non-linear A it is the linearisation MMPS asks for, to O(step²).
    pub fn observation_jvp(&self, x: Detached<B, 3>, u: Detached<B, 3>) -> Detached<B, 2> {
        let n = x.dims()[0];
        let norm = |v: &Detached<B, 3>| {
            v.clone()
                .powi_scalar(2)
                .reshape([n as i32, -1])
                .sum_dim(1)
                .sqrt()
                .reshape([n, 1, 1])
        };
        let h = (norm(&x) + 1.0) * 1e-2 / norm(&u).clamp_min(1e-30);
        let step = u * h.clone();
        let plus = self.observe(x.clone() + step.clone());
        let minus = self.observe(x - step);
        (plus - minus) / (h.reshape([n, 1]) * 2.0)
    }
}

/// Network passes made by a [`Guided`] model, summed over trajectories (a pass on a batch of n
/// trajectories counts n).
#[derive(Debug, Default)]
pub struct PassCounter {
    forwards: AtomicU64,
    vjps: AtomicU64,
}

impl PassCounter {
    fn add_forwards(&self, n: usize) {
        self.forwards.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn add_vjps(&self, n: usize) {
        self.vjps.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// The passes counted so far.
    pub fn get(&self) -> Passes {
        Passes {
            forwards: self.forwards.load(Ordering::Relaxed),
            vjps: self.vjps.load(Ordering::Relaxed),
        }
    }
}

/// A posterior noise model `ε_post = ε − σ(t) s_y` built from a prior [`EpsilonModel`], an
/// observation model, an observation y and a [`Guidance`].
pub struct Guided<B: AutodiffBackend, E, O, G> {
    prior: E,
    observation: O,
    guidance: G,
    y: Tensor<B, 2>,
    noise_var: Tensor<B, 2>,
    passes: PassCounter,
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
            passes: PassCounter::default(),
        })
    }

    /// The prior ε and the likelihood score `s_y` at `(x(t), t)`, both detached (on the inner
    /// backend).
    pub fn prior_and_likelihood_score(
        &self,
        x_t: Tensor<B, 3>,
        t: f64,
    ) -> (Detached<B, 3>, Detached<B, 3>) {
        let at = GuidancePoint {
            prior: &self.prior,
            observation: &self.observation,
            y: &self.y,
            noise_var: &self.noise_var,
            x_t: x_t.inner(),
            t,
            passes: &self.passes,
        };
        self.guidance.guide(&at)
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

    fn passes(&self) -> Option<Passes> {
        Some(self.passes.get())
    }

    fn divergence_hint(&self) -> Option<String> {
        self.guidance.divergence_hint()
    }
}

/// The likelihood score of a guidance that is a per-trajectory surrogate `q_n(r)` of the
/// residual `r = y − A(x̂)` (`[N, M]`), differentiated through A and the network:
/// `s_y = ∇_{x(t)} Σ_n q_n` (one forward, one VJP). `q` receives r, diag Σ_y (`[1, M]`), μ(t)
/// and σ(t). SDA and DPS are both of this form.
pub fn surrogate_score<B: AutodiffBackend>(
    at: &GuidancePoint<'_, B>,
    q: impl FnOnce(Tensor<B, 2>, Tensor<B, 2>, f64, f64) -> Tensor<B, 1>,
) -> (Detached<B, 3>, Detached<B, 3>) {
    let d = at.denoise();
    let residual = at.y() - at.observation().apply(d.x_hat.clone());
    let q = q(residual, at.noise_var(), at.mu(), at.sigma());
    let score = at.gradient(&d, q);
    (d.epsilon.inner(), score)
}

/// `impl Guidance` for a pointer type (`Box<T>`, `&T`) that forwards every method of the
/// trait, default ones included, to the pointee.
macro_rules! forward_guidance {
    ($($ptr:ty),*) => {$(
        impl<B: AutodiffBackend, T: Guidance<B> + ?Sized> Guidance<B> for $ptr {
            fn guide(&self, at: &GuidancePoint<'_, B>) -> (Detached<B, 3>, Detached<B, 3>) {
                (**self).guide(at)
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn divergence_hint(&self) -> Option<String> {
                (**self).divergence_hint()
            }
        }
    )*};
}
forward_guidance!(Box<T>, &T);
