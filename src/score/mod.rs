//! Local scores and the composed score of a whole trajectory (paper §3.1, Algorithm 2).
//!
//! Everything here is in ε-space (see [`crate::schedule`]): a model returns the noise estimate
//! `ε(x(t), t) = −σ(t) ∇ log p(x(t))`.

pub mod chunked;
pub mod embed;
pub mod gaussian;
pub mod mlp;
pub mod network;
pub mod precondition;
pub mod ring_conv;
pub mod train;
pub mod unet;

use burn::tensor::{backend::Backend, Tensor};

use crate::blanket::MarkovBlanket;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result, TrajectoryShape};

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
    /// The network passes made so far, summed over trajectories, for a model that counts them
    /// (a guided posterior, [`crate::guidance::Guided`]); `None` (the default) for a model whose
    /// every evaluation is one forward of each trajectory.
    fn passes(&self) -> Option<Passes> {
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
            fn passes(&self) -> Option<Passes> {
                (**self).passes()
            }
        }
    )*};
}
forward_epsilon!(Box<T>, &T);
