//! Write your own Markov blanket, register it by name, and compose any local score with it
//! from the CLI — without forking the crate.
//!
//! ```text
//! cargo run --release --example custom_blanket -- oracle --blanket window-average \
//!     --blanket-params 'k = 2'
//! cargo run --release --example custom_blanket -- assimilate --run runs/shifted \
//!     --data data/shifted --len 16 --blanket window-average --observation pick \
//!     --observation-params 'states = [0, 5, 10, 15], components = [0], sigma = 0.1'
//! ```
//!
//! The blanket cuts the same windows `x_{j:j+2k}` as Algorithm 2 but folds them differently:
//! every state takes the **mean** of the outputs of all the windows that contain it, instead
//! of the output of the one window centred on it (or the first or last window, at the ends).
//! In a first-order chain a window's output for a state at its edge misses the neighbour
//! outside the window, so this average is expected to be the worse composition; the oracle
//! measures by how much.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use sda::blanket::{MarkovBlanket, TemporalWindow};
use sda::registry::{params, BlanketPlugin};
use sda::{Result, TrajectoryShape};

/// Typed parameters; unknown keys (typos) are rejected.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowAverageConfig {
    /// Half-width k (windows of 2k+1 states).
    pub k: usize,
}

/// Windows of 2k+1 consecutive states, each state's output averaged over the windows that
/// contain it: `ε_i = (1/|J_i|) Σ_{j ∈ J_i} ε^{(j)}_{i−j}`, `J_i = {j : j ≤ i ≤ j + 2k}`.
pub struct WindowAverage {
    windows: TemporalWindow,
}

impl WindowAverage {
    /// Windows of `2k + 1` states; `k ≥ 1`.
    pub fn new(cfg: &WindowAverageConfig) -> Result<Self> {
        Ok(Self {
            windows: TemporalWindow::new(cfg.k)?,
        })
    }
}

impl<B: Backend> MarkovBlanket<B> for WindowAverage {
    fn window(&self) -> usize {
        MarkovBlanket::<B>::window(&self.windows)
    }
    fn check_len(&self, len: usize) -> Result<()> {
        MarkovBlanket::<B>::check_len(&self.windows, len)
    }
    fn num_windows(&self, shape: TrajectoryShape) -> usize {
        MarkovBlanket::<B>::num_windows(&self.windows, shape)
    }
    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.windows.unfold(x)
    }
    fn fold(&self, windows: Tensor<B, 3>, shape: TrajectoryShape) -> Tensor<B, 3> {
        let len = shape.len;
        let w = MarkovBlanket::<B>::window(&self.windows);
        let [rows, _, d] = windows.dims();
        let nw = len + 1 - w;
        let n = rows / nw;
        let device = windows.device();
        let windows = windows.reshape([nw, n, w, d]);
        // position p of window j is state j + p: the outputs at position p of all windows
        // fill states p..p+nw, so w shifted copies sum every window's contribution
        let mut sum = Tensor::<B, 3>::zeros([n, len, d], &device);
        for p in 0..w {
            let at_p = windows
                .clone()
                .narrow(2, p, 1)
                .reshape([nw, n, d])
                .swap_dims(0, 1);
            let mut parts = Vec::with_capacity(3);
            if p > 0 {
                parts.push(Tensor::zeros([n, p, d], &device));
            }
            parts.push(at_p);
            if p + 1 < w {
                parts.push(Tensor::zeros([n, w - 1 - p, d], &device));
            }
            sum = sum + Tensor::cat(parts, 1);
        }
        // |J_i| = min(i, nw − 1) − max(0, i − w + 1) + 1
        let inverse_count: Vec<f32> = (0..len)
            .map(|i| 1.0 / (i.min(nw - 1) + 1 - i.saturating_sub(w - 1)) as f32)
            .collect();
        let inverse_count =
            Tensor::<B, 3>::from_data(TensorData::new(inverse_count, [1, len, 1]), &device);
        sum * inverse_count.expand([n, len, d])
    }
    fn describe(&self) -> String {
        format!("window average k={}", self.windows.k())
    }
}

inventory::submit! {
    BlanketPlugin {
        name: "window-average",
        description: "windows of 2k+1 states, each state the mean over the windows holding it: k",
        build: |p| Ok(Box::new(WindowAverage::new(&params(p)?)?)),
    }
}

/// The same CLI as `sda`, with this file's blanket linked in.
#[allow(dead_code)]
fn main() {
    if let Err(e) = sda::cli::run(std::env::args_os()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
