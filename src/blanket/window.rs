//! The temporal window of the paper (§3.1, Algorithm 2).

use burn::tensor::{backend::Backend, Tensor};

use super::MarkovBlanket;
use crate::{Error, Result, TrajectoryShape};

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

    fn num_windows(&self, shape: TrajectoryShape) -> usize {
        shape.len + 1 - (2 * self.k + 1)
    }

    /// Window j of trajectory n holds states `j..j+w`, so its i-th state for all j is the
    /// shifted trajectory `x[:, i..i+W]`: `w` slices instead of one per window (W of them),
    /// which keeps the op count — and the reverse pass guidance takes through it — small.
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, len, d] = x.dims();
        let w = 2 * self.k + 1;
        let nw = len + 1 - w;
        let shifted = (0..w)
            .map(|i| {
                x.clone()
                    .narrow(1, i, nw)
                    .swap_dims(0, 1)
                    .reshape([nw, n, 1, d])
            })
            .collect();
        Tensor::cat(shifted, 2).reshape([nw * n, w, d])
    }

    fn fold(&self, windows: Tensor<B, 3>, shape: TrajectoryShape) -> Tensor<B, 3> {
        let len = shape.len;
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
