//! Local scores and the composed score of a whole trajectory (paper §3.1, Algorithm 2).
//!
//! Everything here is in ε-space (see [`crate::schedule`]): a model returns the noise estimate
//! `ε(x(t), t) = −σ(t) ∇ log p(x(t))`.

pub mod chunked;
pub mod embed;
pub mod gaussian;
pub mod loss;
pub mod mlp;
pub mod mlp_host;
pub mod network;
pub mod precondition;
pub mod ring_conv;
pub mod sharded;
pub mod train;
pub mod unet;

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};

use crate::blanket::MarkovBlanket;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result, TrajectoryShape};

/// The inner (non-autodiff) backend of an autodiff backend.
pub type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// A vector–Jacobian product `v ↦ (∂ε/∂x)ᵀ v` at a point fixed when it was made, on the inner
/// backend: the reverse pass of a model that writes its own (see
/// [`LocalScore::epsilon_with_vjp`]). It can be applied any number of times.
pub type Vjp<'a, B> = Box<dyn Fn(Tensor<Inner<B>, 3>) -> Tensor<Inner<B>, 3> + 'a>;

/// ε with its [`Vjp`] at the same point, or `None` where a model has no hand-written reverse
/// pass (guidance then differentiates its `epsilon` by autodiff).
pub type WithVjp<'a, B> = Option<(Tensor<Inner<B>, 3>, Vjp<'a, B>)>;

/// A local score `ε_φ(x_{i−k:i+k}(t), t)` on a batch of windows of `w = 2k+1` states
/// (paper eq. 14, trained by Algorithm 1), in ε-space.
pub trait LocalScore<B: Backend>: Send + Sync {
    /// The schedule the model was trained (or derived) for.
    fn schedule(&self) -> &dyn NoiseSchedule;
    /// Number of states per window, `2k + 1`.
    fn window(&self) -> usize;
    /// Flattened dimension D of one state.
    fn state_dim(&self) -> usize;
    /// ε on windows `[N, w, D]` at diffusion time `t`, same shape out.
    fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3>;
    /// ε on windows together with its input VJP at the same point, for a model with a
    /// hand-written reverse pass (the ResMLP on the CPU: [`mlp_host`]); `None` (the default)
    /// when guidance should differentiate [`LocalScore::epsilon`] by autodiff instead.
    fn epsilon_with_vjp(&self, windows: Tensor<Inner<B>, 3>, t: f64) -> WithVjp<'_, B>
    where
        B: AutodiffBackend,
    {
        let _ = (windows, t);
        None
    }
}

/// A noise model on whole trajectories `[N, L, D]`: what samplers integrate.
///
/// Implemented by the composed local score ([`Composed`]), by exact Gaussian models
/// ([`gaussian::GaussianEpsilon`]) and by guided posteriors
/// ([`crate::guidance::Guided`]), so a guided ε is usable wherever an ε is.
pub trait EpsilonModel<B: Backend> {
    /// The schedule shared by the model and the sampler.
    fn schedule(&self) -> &dyn NoiseSchedule;
    /// Checks that trajectories of `len` states of dimension `dim` are supported.
    fn check_shape(&self, len: usize, dim: usize) -> Result<()>;
    /// ε on trajectories `[N, L, D]` at time `t`, same shape out.
    fn epsilon(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3>;
    /// ε on trajectories with its VJP at the same point, where the model has a hand-written
    /// reverse pass ([`Composed`] over a local score that has one); `None` (the default) when
    /// guidance should differentiate [`EpsilonModel::epsilon`] by autodiff.
    fn epsilon_with_vjp(&self, x_t: Tensor<Inner<B>, 3>, t: f64) -> WithVjp<'_, B>
    where
        B: AutodiffBackend,
    {
        let _ = (x_t, t);
        None
    }
    /// The network passes made so far, summed over trajectories, for a model that counts them
    /// (a guided posterior, [`crate::guidance::Guided`]); `None` (the default) for a model whose
    /// every evaluation is one forward of each trajectory.
    fn passes(&self) -> Option<Passes> {
        None
    }
    /// What to try when sampling this model diverges, if something specific is known (a
    /// guided posterior passes on its guidance's [`crate::guidance::Guidance::divergence_hint`]);
    /// samplers append it to their error. `None` by default.
    fn divergence_hint(&self) -> Option<String> {
        None
    }
}

/// Network passes, summed over trajectories: forwards, and vector–Jacobian products (reverse
/// passes through the network, each following a forward).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passes {
    /// Network forwards.
    pub forwards: u64,
    /// Reverse passes (VJPs).
    pub vjps: u64,
}

/// The score of a long trajectory composed from a local score and a blanket (**Algorithm 2**):
/// unfold `x_{1:L}(t)` into windows, evaluate the local ε on all windows in one batch, fold.
pub struct Composed<S, M> {
    local: S,
    blanket: M,
}

impl<S, M> Composed<S, M> {
    /// Composes `local` over `blanket`; their window sizes must agree.
    pub fn new<B: Backend>(local: S, blanket: M) -> Result<Self>
    where
        S: LocalScore<B>,
        M: MarkovBlanket<B>,
    {
        if local.window() != blanket.window() {
            return Err(Error::Shape(format!(
                "local score sees windows of {} states but the blanket cuts windows of {}",
                local.window(),
                blanket.window()
            )));
        }
        Ok(Self { local, blanket })
    }

    /// The local score.
    pub fn local(&self) -> &S {
        &self.local
    }

    /// The blanket.
    pub fn blanket(&self) -> &M {
        &self.blanket
    }
}

impl<B: Backend, S: LocalScore<B>, M: MarkovBlanket<B>> EpsilonModel<B> for Composed<S, M> {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.local.schedule()
    }

    fn check_shape(&self, len: usize, dim: usize) -> Result<()> {
        self.blanket.check_len(len)?;
        let window_dim = self.blanket.window_dim(dim)?;
        if window_dim != self.local.state_dim() {
            return Err(Error::Shape(if window_dim == dim {
                format!(
                    "trajectory states have dimension {dim} but the local score expects {}",
                    self.local.state_dim()
                )
            } else {
                format!(
                    "the blanket cuts states of dimension {dim} into windows of dimension \
                     {window_dim} but the local score expects {}",
                    self.local.state_dim()
                )
            }));
        }
        Ok(())
    }

    fn epsilon(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let [_, len, dim] = x_t.dims();
        let windows = self.blanket.unfold(x_t);
        let eps = self.local.epsilon(windows, t);
        self.blanket.fold(eps, TrajectoryShape::new(len, dim))
    }

    /// Algorithm 2 with the local score's own reverse pass: `ε = fold(ε_φ(unfold(x)))`, so
    /// `(∂ε/∂x)ᵀ v = unfoldᵀ(J_φᵀ foldᵀ(v))`. The blanket's two transposes (linear index maps)
    /// are taken by reverse-mode autodiff through the blanket alone — no network pass.
    fn epsilon_with_vjp(&self, x_t: Tensor<Inner<B>, 3>, t: f64) -> WithVjp<'_, B>
    where
        B: AutodiffBackend,
    {
        let dims = x_t.dims();
        let shape = TrajectoryShape::new(dims[1], dims[2]);
        let windows = self.blanket.unfold(Tensor::<B, 3>::from_inner(x_t)).inner();
        let window_dims = windows.dims();
        let (eps, local_vjp) = self.local.epsilon_with_vjp(windows, t)?;
        let eps = self.blanket.fold(Tensor::from_inner(eps), shape).inner();
        let vjp = move |v: Tensor<Inner<B>, 3>| {
            let device = v.device();
            let at = Tensor::<B, 3>::from_inner(Tensor::zeros(window_dims, &device)).require_grad();
            let grads = (self.blanket.fold(at.clone(), shape) * Tensor::from_inner(v))
                .sum()
                .backward();
            let v_windows = at
                .grad(&grads)
                .unwrap_or_else(|| Tensor::zeros(window_dims, &device));
            let g_windows = local_vjp(v_windows);
            let at = Tensor::<B, 3>::from_inner(Tensor::zeros(dims, &device)).require_grad();
            let grads = (self.blanket.unfold(at.clone()) * Tensor::from_inner(g_windows))
                .sum()
                .backward();
            at.grad(&grads)
                .unwrap_or_else(|| Tensor::zeros(dims, &device))
        };
        Some((eps, Box::new(vjp)))
    }
}

/// `impl LocalScore` for a pointer type (`Box<T>`, `&T`) that forwards
/// every method of the trait, default ones included, to the pointee.
macro_rules! forward_scores {
    ($($ptr:ty),*) => {$(
        impl<B: Backend, T: LocalScore<B> + ?Sized> LocalScore<B> for $ptr {
            fn schedule(&self) -> &dyn NoiseSchedule {
                (**self).schedule()
            }
            fn window(&self) -> usize {
                (**self).window()
            }
            fn state_dim(&self) -> usize {
                (**self).state_dim()
            }
            fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
                (**self).epsilon(windows, t)
            }
            fn epsilon_with_vjp(
                &self,
                windows: Tensor<Inner<B>, 3>,
                t: f64,
            ) -> WithVjp<'_, B>
            where
                B: AutodiffBackend,
            {
                (**self).epsilon_with_vjp(windows, t)
            }
        }
    )*};
}
forward_scores!(Box<T>, &T);

/// `impl EpsilonModel` for a pointer type, forwarding every method to the pointee.
macro_rules! forward_epsilon {
    ($($ptr:ty),*) => {$(
        impl<B: Backend, T: EpsilonModel<B> + ?Sized> EpsilonModel<B> for $ptr {
            fn schedule(&self) -> &dyn NoiseSchedule {
                (**self).schedule()
            }
            fn check_shape(&self, len: usize, dim: usize) -> Result<()> {
                (**self).check_shape(len, dim)
            }
            fn epsilon(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
                (**self).epsilon(x_t, t)
            }
            fn epsilon_with_vjp(
                &self,
                x_t: Tensor<Inner<B>, 3>,
                t: f64,
            ) -> WithVjp<'_, B>
            where
                B: AutodiffBackend,
            {
                (**self).epsilon_with_vjp(x_t, t)
            }
            fn passes(&self) -> Option<Passes> {
                (**self).passes()
            }
            fn divergence_hint(&self) -> Option<String> {
                (**self).divergence_hint()
            }
        }
    )*};
}
forward_epsilon!(Box<T>, &T);
