//! The space–time window of a spatially extended chain on a periodic ring of sites (Lorenz-96
//! and its kin): the ring analogue of the paper's Algorithm 2.
//!
//! In a chain whose state `x_i ∈ ℝⁿ` lives on a ring of n sites and whose transition couples each
//! site only to its neighbours, the noisy score of site m at state i depends (approximately) on
//! the states within k steps in time **and** r sites in space. A window is therefore 2k+1
//! states × a patch of `P + 2r` consecutive sites (indices taken modulo n); its outputs are kept
//! for the P central sites only, and in time exactly as [`TemporalWindow`] keeps them. A local
//! score trained on small rings then runs unchanged on any ring whose size is a multiple of P,
//! and memory grows linearly in n.

use burn::tensor::{backend::Backend, Tensor};

use super::{MarkovBlanket, TemporalWindow};
use crate::{Error, Result, TrajectoryShape};

/// Parameters of a [`SpaceTimeWindow`] (registered as `space-time-window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceTimeWindowConfig {
    /// Half-width in time: windows of 2k+1 states (k ≥ 1).
    pub k: usize,
    /// Half-width in space: each kept site sees r sites on either side (r ≥ 1).
    pub r: usize,
    /// Sites kept per patch, P ≥ 1; the ring's size must be a multiple of P.
    pub patch: usize,
    /// Stride in time, as [`TemporalWindow::strided`]'s (1, Algorithm 2's, by default).
    #[serde(default = "super::default_stride")]
    pub stride: usize,
}

/// Windows of `2k + 1` states × `P + 2r` sites on a periodic ring (see the module docs).
///
/// Layout: `unfold` cuts `[N, L, n]` first in time as [`TemporalWindow`] does
/// (`[W·N, w, n]`), then every time window into the `S = n / P` patches of sites
/// `s·P − r … s·P + P + r − 1 (mod n)`, patch-major: rows `s·W·N + j·N + trajectory`, each
/// `[w, P + 2r]`. `fold` keeps the P central sites of each patch (site `s·P + c` from patch s,
/// offset `r + c`) and then selects in time as Algorithm 2 does.
///
/// When `P + 2r > n` a patch holds some sites twice (a circular padding of the ring): right
/// for a local score whose receptive field in space is at most r sites, such as a circular
/// convolution; a Gaussian local score then has a singular (but valid) covariance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceTimeWindow {
    time: TemporalWindow,
    r: usize,
    patch: usize,
}

impl SpaceTimeWindow {
    /// A space–time window; errors if k, r or P is 0.
    pub fn new(cfg: SpaceTimeWindowConfig) -> Result<Self> {
        if cfg.r == 0 {
            return Err(Error::Invalid(
                "space–time window: the spatial half-width r must be at least 1 (r = 0 would \
                 ignore the coupling between sites)"
                    .into(),
            ));
        }
        if cfg.patch == 0 {
            return Err(Error::Invalid(
                "space–time window: the patch of kept sites P must be at least 1".into(),
            ));
        }
        Ok(Self {
            time: TemporalWindow::strided(cfg.k, cfg.stride)?,
            r: cfg.r,
            patch: cfg.patch,
        })
    }

    /// The parameters.
    pub fn config(&self) -> SpaceTimeWindowConfig {
        SpaceTimeWindowConfig {
            k: self.time.k(),
            r: self.r,
            patch: self.patch,
            stride: self.time.stride(),
        }
    }

    /// Sites of one window's states, `P + 2r`.
    pub fn patch_sites(&self) -> usize {
        self.patch + 2 * self.r
    }

    /// Number of patches of a ring of `sites` sites (which must be a multiple of P).
    pub fn patches(&self, sites: usize) -> usize {
        sites / self.patch
    }
}

impl<B: Backend> MarkovBlanket<B> for SpaceTimeWindow {
    fn window(&self) -> usize {
        MarkovBlanket::<B>::window(&self.time)
    }

    fn window_dim(&self, dim: usize) -> Result<usize> {
        if dim == 0 || !dim.is_multiple_of(self.patch) {
            return Err(Error::Shape(format!(
                "space–time window: a ring of {dim} sites is not a whole number of patches of \
                 P = {} sites (choose a patch that divides the ring's size)",
                self.patch
            )));
        }
        if self.r > dim {
            return Err(Error::Shape(format!(
                "space–time window: the spatial half-width r = {} exceeds the ring's {dim} sites",
                self.r
            )));
        }
        Ok(self.patch_sites())
    }

    fn check_len(&self, len: usize) -> Result<()> {
        MarkovBlanket::<B>::check_len(&self.time, len)
    }

    fn num_windows(&self, shape: TrajectoryShape) -> usize {
        MarkovBlanket::<B>::num_windows(&self.time, shape) * self.patches(shape.dim)
    }

    fn unfold(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let n = x.dims()[2];
        let windows = MarkovBlanket::<B>::unfold(&self.time, x);
        let r = self.r;
        // the ring with r sites of circular padding on each side: [W·N, w, n + 2r]
        let padded = Tensor::cat(
            vec![
                windows.clone().narrow(2, n - r, r),
                windows.clone(),
                windows.narrow(2, 0, r),
            ],
            2,
        );
        let patches = (0..self.patches(n))
            .map(|s| padded.clone().narrow(2, s * self.patch, self.patch_sites()))
            .collect();
        Tensor::cat(patches, 0)
    }

    fn fold(&self, windows: Tensor<B, 3>, shape: TrajectoryShape) -> Tensor<B, 3> {
        let [rows, w, _] = windows.dims();
        let patches = self.patches(shape.dim);
        let per_patch = rows / patches;
        // keep the P central sites: [S, W·N, w, P] → [W·N, w, S, P] → [W·N, w, n]
        let kept = windows
            .narrow(2, self.r, self.patch)
            .reshape([patches, per_patch, w, self.patch])
            .permute([1, 2, 0, 3])
            .reshape([per_patch, w, shape.dim]);
        MarkovBlanket::<B>::fold(&self.time, kept, shape)
    }

    fn describe(&self) -> String {
        let stride = match self.time.stride() {
            1 => String::new(),
            s => format!(", stride {s}"),
        };
        format!(
            "space–time window k={} r={} P={} ({}×{} values){stride}",
            self.time.k(),
            self.r,
            self.patch,
            2 * self.time.k() + 1,
            self.patch_sites()
        )
    }
}
