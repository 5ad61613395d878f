//! Markov blankets: how a trajectory is cut into the windows a local score sees, and how the
//! windows' outputs are folded back into one output per state (paper §3.1, Algorithm 2).
//!
//! - [`TemporalWindow`] (`window.rs`): windows of 2k+1 consecutive states, the paper's blanket.
//! - [`SpaceTimeWindow`] (`ring.rs`): windows of 2k+1 states × a patch of sites on a periodic
//!   ring, for spatially extended systems such as Lorenz-96.

mod ring;
mod window;

pub use ring::{SpaceTimeWindow, SpaceTimeWindowConfig};
pub(crate) use window::default_stride;
pub use window::TemporalWindow;

use burn::tensor::{backend::Backend, Tensor};

use crate::{Result, TrajectoryShape};

/// A (pseudo) Markov blanket structure over the states of a trajectory `x_{1:L}`.
///
/// `unfold` maps a batch of trajectories `[N, L, D]` to a batch of windows `[N·W, w, d]`
/// (w states of dimension d = [`MarkovBlanket::window_dim`]`(D)` each); `fold` maps per-window
/// outputs of the same shape back to `[N, L, D]`, choosing for every state (and, for a
/// space–time blanket, every site) the window output that approximates its score best
/// (paper eq. 13).
pub trait MarkovBlanket<B: Backend>: Send + Sync {
    /// Number of states in one window (`2k + 1` for a temporal window).
    fn window(&self) -> usize;
    /// Dimension d of a window's states when the trajectory's states have dimension `dim`:
    /// `dim` itself (the default) when windows hold whole states, a patch of sites for a
    /// space–time window; an error naming the problem when `dim` cannot be cut.
    fn window_dim(&self, dim: usize) -> Result<usize> {
        Ok(dim)
    }
    /// Checks that a trajectory of `len` states can be covered; a clear error otherwise.
    fn check_len(&self, len: usize) -> Result<()>;
    /// Number of windows a trajectory of `shape` is cut into (rows of `unfold` per trajectory).
    fn num_windows(&self, shape: TrajectoryShape) -> usize;
    /// `[N, L, D]` → `[W·N, w, d]`, window-major (windows of trajectory n at rows `j·N + n`).
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3>;
    /// `[W·N, w, d]` → `[N, L, D]` for trajectories of `shape` (inverse layout of `unfold`,
    /// selecting outputs per state).
    fn fold(&self, windows: Tensor<B, 3>, shape: TrajectoryShape) -> Tensor<B, 3>;
    /// Short description for tables and logs.
    fn describe(&self) -> String;
}

impl<B: Backend, T: MarkovBlanket<B> + ?Sized> MarkovBlanket<B> for Box<T> {
    fn window(&self) -> usize {
        (**self).window()
    }
    fn window_dim(&self, dim: usize) -> Result<usize> {
        (**self).window_dim(dim)
    }
    fn check_len(&self, len: usize) -> Result<()> {
        (**self).check_len(len)
    }
    fn num_windows(&self, shape: TrajectoryShape) -> usize {
        (**self).num_windows(shape)
    }
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        (**self).unfold(x)
    }
    fn fold(&self, windows: Tensor<B, 3>, shape: TrajectoryShape) -> Tensor<B, 3> {
        (**self).fold(windows, shape)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
