//! The temporal window of the paper (§3.1, Algorithm 2).

use burn::tensor::{backend::Backend, Tensor};

use super::MarkovBlanket;
use crate::backend::index_tensor;
use crate::{Error, Result, TrajectoryShape};

/// The temporal pseudo-blanket of a first-order Markov chain: the window `x_{i−k:i+k}` around
/// each state (paper §3.1), composed as in **Algorithm 2**:
/// states `1..k` take outputs `1..k` of the first window, each middle state `i`
/// (`k+1 ≤ i ≤ L−k`) the centre output of the window centred on `i`, and states
/// `L−k+1..L` the last `k` outputs of the last window.
///
/// **Strided** ([`TemporalWindow::strided`], stride s > 1): Algorithm 2 evaluates `L − 2k`
/// windows, one per middle state. With stride s the windows start at `0, s, 2s, …` (and one more
/// ends at the last state), about `(L − 2k)/s` of them, and every state takes the output of the
/// window it is most central in (the earlier one on a tie). With s = 1 that is Algorithm 2; with
/// s > 1 a middle state keeps at least `k − ⌊s/2⌋` states of context on either side instead of k:
/// s times fewer network evaluations for a shorter effective blanket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalWindow {
    k: usize,
    stride: usize,
}

/// The default stride of the window plugins' parameters: 1, Algorithm 2's.
pub(crate) fn default_stride() -> usize {
    1
}

impl TemporalWindow {
    /// A window of `2k + 1` states; `k ≥ 1` (k = 0 would ignore the dynamics entirely).
    pub fn new(k: usize) -> Result<Self> {
        Self::strided(k, 1)
    }

    /// Windows of `2k + 1` states every `stride` states (see the type's docs); `k ≥ 1` and
    /// `1 ≤ stride ≤ 2k + 1` (a larger stride would leave states in no window).
    pub fn strided(k: usize, stride: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Invalid(
                "blanket half-width k must be at least 1 (a window of 2k+1 states)".into(),
            ));
        }
        if stride == 0 || stride > 2 * k + 1 {
            return Err(Error::Invalid(format!(
                "blanket stride must lie in 1..=2k+1 = {} (windows of 2k+1 states must cover \
                 the trajectory), got {stride}",
                2 * k + 1
            )));
        }
        Ok(Self { k, stride })
    }

    /// The half-width k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The stride s between consecutive windows' first states (1: Algorithm 2).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// First states of the windows of a trajectory of `len ≥ 2k + 1` states: `0, s, 2s, …` while
    /// a window fits, then `len − (2k + 1)` if the last state is not yet covered.
    pub fn starts(&self, len: usize) -> Vec<usize> {
        let w = 2 * self.k + 1;
        if len < w {
            return Vec::new();
        }
        let mut starts: Vec<usize> = (0..=len - w).step_by(self.stride).collect();
        if starts.last().is_some_and(|&last| last + w < len) {
            starts.push(len - w);
        }
        starts
    }

    /// For each state of a trajectory of `len` states, `j·w + o`: the window j it takes its
    /// output from (the one whose centre is nearest, the earlier on a tie) and its offset o there.
    pub fn picks(&self, len: usize) -> Vec<usize> {
        let (k, w) = (self.k, 2 * self.k + 1);
        let starts = self.starts(len);
        let mut picks = vec![0; len];
        let mut best = vec![usize::MAX; len];
        for (j, &start) in starts.iter().enumerate() {
            for (o, i) in (start..start + w).enumerate() {
                let distance = o.abs_diff(k);
                if distance < best[i] {
                    best[i] = distance;
                    picks[i] = j * w + o;
                }
            }
        }
        picks
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
        self.starts(shape.len).len()
    }

    /// Strided: window j of each trajectory holds states `starts[j]..starts[j] + w`, gathered
    /// in one select. Unstrided: window j of trajectory n holds states `j..j+w`, so its i-th
    /// state for all j is the
    /// shifted trajectory `x[:, i..i+W]`: `w` slices instead of one per window (W of them),
    /// which keeps the op count — and the reverse pass guidance takes through it — small.
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, len, d] = x.dims();
        let w = 2 * self.k + 1;
        if self.stride > 1 {
            // the windows' states gathered in one select: [N, J·w, d] → [J·N, w, d]
            let starts = self.starts(len);
            let states: Vec<usize> = starts.iter().flat_map(|&s| s..s + w).collect();
            let nw = starts.len();
            let indices = index_tensor::<B>(&states, &x.device());
            return x
                .select(1, indices)
                .reshape([n, nw, w, d])
                .swap_dims(0, 1)
                .reshape([nw * n, w, d]);
        }
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
        if self.stride > 1 {
            // each state's output picked from its window: [J·N, w, d] → [N, J·w, d] → [N, L, d]
            let nw = self.starts(len).len();
            let n = rows / nw;
            let picks = index_tensor::<B>(&self.picks(len), &windows.device());
            return windows
                .reshape([nw, n, w, d])
                .swap_dims(0, 1)
                .reshape([n, nw * w, d])
                .select(1, picks);
        }
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
        match self.stride {
            1 => format!("temporal window k={} (2k+1={})", self.k, 2 * self.k + 1),
            s => format!(
                "temporal window k={} (2k+1={}), stride {s}",
                self.k,
                2 * self.k + 1
            ),
        }
    }
}
