//! Markov blankets: how a trajectory is cut into the windows a local score sees, and how the
//! windows' outputs are folded back into one output per state (paper §3.1, Algorithm 2).

use burn::tensor::{backend::Backend, Tensor};

use crate::{Error, Result};

/// A (pseudo) Markov blanket structure over the states of a trajectory `x_{1:L}`.
///
/// `unfold` maps a batch of trajectories `[N, L, D]` to a batch of windows `[N·W, w, D]`
/// (w states each); `fold` maps per-window outputs of the same shape back to `[N, L, D]`,
/// choosing for every state the window output that approximates its score best (paper eq. 13).
pub trait MarkovBlanket<B: Backend>: Send + Sync {
    /// Number of states in one window (`2k + 1` for a temporal window).
    fn window(&self) -> usize;
    /// Checks that a trajectory of `len` states can be covered; a clear error otherwise.
    fn check_len(&self, len: usize) -> Result<()>;
    /// Number of windows a trajectory of `len` states is cut into.
    fn num_windows(&self, len: usize) -> usize;
    /// `[N, L, D]` → `[W·N, w, D]`, window-major (windows of trajectory n at rows `j·N + n`).
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3>;
    /// `[W·N, w, D]` → `[N, L, D]` (inverse layout of `unfold`, selecting outputs per state).
    fn fold(&self, windows: Tensor<B, 3>, len: usize) -> Tensor<B, 3>;
    /// Short description for tables and logs.
    fn describe(&self) -> String;
}

/// The temporal pseudo-blanket of a first-order Markov chain: the window `x_{i−k:i+k}` around
/// each state (paper §3.1), composed as in **Algorithm 2**:
/// states `1..k` take outputs `1..k` of the first window, each middle state `i`
/// (`k+1 ≤ i ≤ L−k`) the centre output of the window centred on `i`, and states
/// `L−k+1..L` the last `k` outputs of the last window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalWindow {
    k: usize,
}

impl TemporalWindow {
    /// A window of `2k + 1` states; `k ≥ 1` (k = 0 would ignore the dynamics entirely).
    pub fn new(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Invalid(
                "blanket half-width k must be at least 1 (a window of 2k+1 states)".into(),
            ));
        }
        Ok(Self { k })
    }

    /// The half-width k.
    pub fn k(&self) -> usize {
        self.k
    }
}

impl<B: Backend> MarkovBlanket<B> for TemporalWindow {
    fn window(&self) -> usize {
        2 * self.k + 1
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let w = 2 * self.k + 1;
        if len < w {
            return Err(Error::Shape(format!(
                "trajectory length L = {len} is shorter than the window 2k+1 = {w} (k = {})",
                self.k
            )));
        }
        Ok(())
    }

    fn num_windows(&self, len: usize) -> usize {
        len + 1 - (2 * self.k + 1)
    }

    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [_, len, _] = x.dims();
        let w = 2 * self.k + 1;
        let windows = (0..len + 1 - w)
            .map(|j| x.clone().narrow(1, j, w))
            .collect();
        Tensor::cat(windows, 0)
    }

    fn fold(&self, windows: Tensor<B, 3>, len: usize) -> Tensor<B, 3> {
        let k = self.k;
        let w = 2 * k + 1;
        let [rows, _, d] = windows.dims();
        let nw = len + 1 - w;
        let n = rows / nw;
        let windows = windows.reshape([nw, n, w, d]);
        // states 1..k: first window's outputs 1..k
        let head = windows
            .clone()
            .narrow(0, 0, 1)
            .narrow(2, 0, k)
            .reshape([n, k, d]);
        // middle states: centre output of every window
        let centre = windows
            .clone()
            .narrow(2, k, 1)
            .reshape([nw, n, d])
            .swap_dims(0, 1);
        // states L−k+1..L: last window's last k outputs
        let tail = windows
            .narrow(0, nw - 1, 1)
            .narrow(2, k + 1, k)
            .reshape([n, k, d]);
        Tensor::cat(vec![head, centre, tail], 1)
    }

    fn describe(&self) -> String {
        format!("temporal window k={} (2k+1={})", self.k, 2 * self.k + 1)
    }
}

impl<B: Backend, T: MarkovBlanket<B> + ?Sized> MarkovBlanket<B> for Box<T> {
    fn window(&self) -> usize {
        (**self).window()
    }
    fn check_len(&self, len: usize) -> Result<()> {
        (**self).check_len(len)
    }
    fn num_windows(&self, len: usize) -> usize {
        (**self).num_windows(len)
    }
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        (**self).unfold(x)
    }
    fn fold(&self, windows: Tensor<B, 3>, len: usize) -> Tensor<B, 3> {
        (**self).fold(windows, len)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
