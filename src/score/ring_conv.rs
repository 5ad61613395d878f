//! The local score of a space–time window on a periodic ring (Lorenz-96 and its kin): a
//! residual stack of **circular 1-D convolutions over the sites**, the 2k+1 states of the window
//! as input and output channels.
//!
//! `Conv(w → C) → B × [h + Conv(SiLU(Conv(LN(h) + E_b(t))))] → Conv(C → w)`, every convolution
//! of odd kernel K padded circularly, LN the affine-free normalisation over the channels at each
//! site, `E_b(t)` a learned projection of the time embedding added to every site. With
//! [`RingConvConfig::gated`] each block's inner activation is gated, `SiLU(Conv(z)) ⊙ Conv_g(z)`
//! with `z = LN(h) + E_b(t)` (a gated linear unit, Dauphin et al. 2017, over the ring): a
//! product of two convolutions of the same neighbourhood, the form of Lorenz-96's advection
//! term `(x_{i+1} − x_{i−2}) x_{i−1}`, which one block of ungated convolutions can only
//! approximate. The two convolutions of `z` run separately: one convolution with their kernels
//! stacked along the output channels, split after, was slower in both layouts (800 training
//! steps of the gated preset 64 s against 57 s; a 16-step sampling run 19.5 s against 16.3 s).
//!
//! Nothing depends on the number of sites: the network is **translation-equivariant** and its
//! output at a site depends only on the sites within its receptive half-width
//! `(2B + 2)(K − 1)/2` ([`RingConvConfig::radius`]). Trained on whole small rings, it therefore
//! runs unchanged on the patches of a [`crate::blanket::SpaceTimeWindow`] of any large ring
//! whose spatial half-width r is at least that radius: the patch's circular padding only
//! changes the outputs within the radius of its edges, which the blanket discards.
//!
//! Training runs the activations channels-last, `[N, S, C]`, each convolution one matrix
//! product ([`ring_conv`]: the K circularly shifted copies of the input side by side,
//! `[N·S, K·C_in]`, times the kernel laid out as `[K·C_in, C_out]`), which is faster for the
//! parameters' gradient; sampling runs them channels-first through burn's `Conv1d`
//! ([`conv1d_circular`]), whose gradient with respect to the input is the faster one. Both use
//! the same `Conv1d` parameters, so checkpoints are unchanged.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::{activation::silu, backend::Backend, Tensor};

use super::embed::{normalise_axis, TimeEmbedding};
use super::precondition::Output;
use super::LocalScore;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// Architecture of a [`RingConv`] (stored with every checkpoint; `kernel` tells it apart from
/// the other networks in a training config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingConvConfig {
    /// Time half-width k (windows of 2k+1 states).
    pub k: usize,
    /// Sites of the rings it is trained on (the training windows' state dimension).
    pub sites: usize,
    /// Hidden channels C.
    pub channels: usize,
    /// Residual blocks B.
    pub blocks: usize,
    /// Odd kernel size K of every convolution.
    pub kernel: usize,
    /// Time-embedding size E.
    pub embedding: usize,
    /// How the raw output becomes ε (default: directly).
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
    /// Gated blocks (default: off): each block's inner activation multiplied by a third
    /// convolution of the same input (see the module docs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gated: bool,
}

impl RingConvConfig {
    /// Checks the sizes: all positive, K odd, and the training ring at least as wide as one
    /// convolution's padding.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0
            || self.sites == 0
            || self.channels == 0
            || self.blocks == 0
            || self.embedding == 0
            || self.kernel.is_multiple_of(2)
        {
            return Err(Error::Invalid(format!(
                "ring convolution sizes must be positive, k ≥ 1 and the kernel odd: {self:?}"
            )));
        }
        if self.sites < self.kernel / 2 {
            return Err(Error::Invalid(format!(
                "a ring of {} sites is narrower than the kernel's padding {}",
                self.sites,
                self.kernel / 2
            )));
        }
        Ok(())
    }

    /// Window length 2k+1.
    pub fn window(&self) -> usize {
        2 * self.k + 1
    }

    /// The receptive half-width in sites, `(2B + 2)(K − 1)/2`: the spatial half-width r a
    /// space–time blanket needs for the network's outputs on its kept sites to be exact.
    pub fn radius(&self) -> usize {
        (2 * self.blocks + 2) * (self.kernel / 2)
    }
}

#[derive(Module, Debug)]
struct Block<B: Backend> {
    time: Linear<B>,
    first: Conv1d<B>,
    second: Conv1d<B>,
    gate: Option<Conv1d<B>>,
}

/// The ring-convolution ε-network.
#[derive(Module, Debug)]
pub struct RingConv<B: Backend> {
    embed: TimeEmbedding<B>,
    input: Conv1d<B>,
    blocks: Vec<Block<B>>,
    output: Conv1d<B>,
}

fn conv<B: Backend>(inputs: usize, outputs: usize, kernel: usize, device: &B::Device) -> Conv1d<B> {
    Conv1dConfig::new(inputs, outputs, kernel)
        .with_padding(PaddingConfig1d::Valid)
        .init(device)
}

/// `x` padded circularly by `pad` entries on each side of `axis` (the sites).
fn circular<B: Backend>(x: Tensor<B, 3>, pad: usize, axis: usize) -> Tensor<B, 3> {
    if pad == 0 {
        return x;
    }
    let s = x.dims()[axis];
    Tensor::cat(
        vec![
            x.clone().narrow(axis, s - pad, pad),
            x.clone(),
            x.narrow(axis, 0, pad),
        ],
        axis,
    )
}

/// The circular convolution of channels-first activations `[N, C_in, S]` → `[N, C_out, S]`:
/// burn's `Conv1d` (valid padding) on the circularly padded input.
pub fn conv1d_circular<B: Backend>(layer: &Conv1d<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    layer.forward(circular(x, layer.kernel_size / 2, 2))
}

/// The circular convolution over the sites of channels-last activations, `[N, S, C_in]` →
/// `[N, S, C_out]`, with `layer`'s kernel `w[o, c, j]` (cross-correlation, as `Conv1d`:
/// `out[s, o] = b[o] + Σ_{c, j} w[o, c, j] · x[(s + j − K/2) mod S, c]`) — as one matrix
/// product of the shifted copies `[N·S, K·C_in]` (column `j·C_in + c`) with `[K·C_in, C_out]`,
/// which runs at the backend's GEMM rate where its `conv1d` does not.
pub fn ring_conv<B: Backend>(layer: &Conv1d<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [n, s, c] = x.dims();
    let [o, ci, k] = layer.weight.dims();
    debug_assert_eq!(c, ci, "channels of the input and the kernel");
    let padded = circular(x, k / 2, 1);
    let columns = if k == 1 {
        padded
    } else {
        Tensor::cat((0..k).map(|j| padded.clone().narrow(1, j, s)).collect(), 2)
    };
    let kernel = layer.weight.val().permute([2, 1, 0]).reshape([k * c, o]);
    let out = columns
        .reshape([n * s, k * c])
        .matmul(kernel)
        .reshape([n, s, o]);
    match &layer.bias {
        Some(b) => out + b.val().reshape([1, 1, o]),
        None => out,
    }
}

impl<B: Backend> RingConv<B> {
    /// A freshly initialised network.
    pub fn new(cfg: &RingConvConfig, device: &B::Device) -> Result<Self> {
        cfg.validate()?;
        let (w, c, kk) = (cfg.window(), cfg.channels, cfg.kernel);
        Ok(Self {
            embed: TimeEmbedding::new(cfg.embedding, device),
            input: conv(w, c, kk, device),
            blocks: (0..cfg.blocks)
                .map(|_| Block {
                    time: LinearConfig::new(cfg.embedding, c).init(device),
                    first: conv(c, c, kk, device),
                    second: conv(c, c, kk, device),
                    gate: cfg.gated.then(|| conv(c, c, kk, device)),
                })
                .collect(),
            output: conv(c, w, kk, device),
        })
    }

    /// ε (or the raw output) on windows `[N, 2k+1, S]` (states as channels, S sites of a
    /// ring) with the time embedding `[N or 1, E]`, computed in either layout (the same
    /// function to rounding).
    fn trunk(&self, x: Tensor<B, 3>, emb: Tensor<B, 2>, layout: Layout) -> Tensor<B, 3> {
        let last = layout == Layout::ChannelsLast;
        let axis = layout.channel_axis();
        let conv = |layer: &Conv1d<B>, x| layout.conv(layer, x);
        let mut h = conv(&self.input, if last { x.swap_dims(1, 2) } else { x });
        for b in &self.blocks {
            let c = h.dims()[axis];
            let e = b.time.forward(emb.clone());
            let e = if last {
                e.reshape([emb.dims()[0], 1, c])
            } else {
                e.reshape([emb.dims()[0], c, 1])
            };
            let z = normalise_axis(h.clone(), axis) + e.expand(h.dims());
            let inner = match &b.gate {
                Some(gate) => silu(conv(&b.first, z.clone())) * conv(gate, z),
                None => silu(conv(&b.first, z)),
            };
            h = h + conv(&b.second, inner);
        }
        let out = conv(&self.output, h);
        if last {
            out.swap_dims(1, 2)
        } else {
            out
        }
    }

    /// The raw output on windows `[N, 2k+1, S]` at per-item times `[N]` (training: channels
    /// last, each convolution one matrix product, 2.3× (48 channels) and 2.8× (96) faster than
    /// `Conv1d` for a layer's forward and parameter gradient; `cargo run --release --example
    /// ring_conv_speed`).
    pub fn forward(&self, x: Tensor<B, 3>, t: Tensor<B, 1>) -> Tensor<B, 3> {
        let emb = self.embed.forward(t);
        self.trunk(x, emb, Layout::ChannelsLast)
    }

    /// The raw output on windows `[N, 2k+1, S]` all at time `t` (sampling: channels first,
    /// burn's `Conv1d`, whose gradient with respect to the input — what guidance takes — made
    /// the whole sampler faster: 51–58 s against 69 s for 8 samples of a 64-site ring, L = 65,
    /// 64 DDIM steps, 48 channels; per layer the matrix product is 0.7–1.5× its speed).
    pub fn forward_at(&self, x: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let emb = self.embed.at(t, x.dims()[0], &x.device());
        self.trunk(x, emb, Layout::ChannelsFirst)
    }
}

/// How [`RingConv`]'s activations are laid out, and so which convolution it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `[N, C, S]`, burn's `Conv1d` on the circularly padded input ([`conv1d_circular`]).
    ChannelsFirst,
    /// `[N, S, C]`, one matrix product per convolution ([`ring_conv`]).
    ChannelsLast,
}

impl Layout {
    /// The axis of the channels.
    fn channel_axis(self) -> usize {
        match self {
            Self::ChannelsFirst => 1,
            Self::ChannelsLast => 2,
        }
    }

    /// One circular convolution in this layout.
    fn conv<B: Backend>(self, layer: &Conv1d<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match self {
            Self::ChannelsFirst => conv1d_circular(layer, x),
            Self::ChannelsLast => ring_conv(layer, x),
        }
    }
}

/// A trained [`RingConv`] as a [`LocalScore`] on windows of `sites` sites — the training
/// ring's, or the `P + 2r` of a space–time blanket's patches.
pub struct RingConvScore<B: Backend> {
    net: RingConv<B>,
    config: RingConvConfig,
    sites: usize,
    schedule: Arc<dyn NoiseSchedule>,
}

impl<B: Backend> RingConvScore<B> {
    /// A local score on windows of `sites` sites (parameters frozen, as for every trained
    /// score: guidance differentiates with respect to x(t) only); `sites` must cover one
    /// convolution's circular padding.
    pub fn new(
        net: RingConv<B>,
        config: RingConvConfig,
        sites: usize,
        schedule: Arc<dyn NoiseSchedule>,
    ) -> Result<Self> {
        if sites < config.kernel / 2 || sites == 0 {
            return Err(Error::Shape(format!(
                "ring convolution windows of {sites} sites are narrower than the kernel's \
                 padding {}",
                config.kernel / 2
            )));
        }
        Ok(Self {
            net: net.no_grad(),
            config,
            sites,
            schedule,
        })
    }

    /// The network's architecture.
    pub fn config(&self) -> &RingConvConfig {
        &self.config
    }
}

impl<B: Backend> LocalScore<B> for RingConvScore<B> {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn window(&self) -> usize {
        self.config.window()
    }
    fn state_dim(&self) -> usize {
        self.sites
    }
    fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let f = self.net.forward_at(windows.clone(), t);
        self.config
            .output
            .epsilon(f, windows, t, self.schedule.as_ref())
    }
}

/// A small network over windows of 3 states on `sites` sites, for unit tests.
#[cfg(test)]
pub(crate) fn small(sites: usize) -> RingConvConfig {
    RingConvConfig {
        k: 1,
        sites,
        channels: 8,
        blocks: 2,
        kernel: 3,
        embedding: 8,
        output: Default::default(),
        gated: false,
    }
}

/// Asserts `max |a − b| ≤ rel · max |b|`, for unit tests.
#[cfg(test)]
pub(crate) fn assert_close(a: &[f64], b: &[f64], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= rel * scale, "{what}: {diff} of {scale}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{default_device, to_host, DefaultBackend, NoiseSource};

    type B = DefaultBackend;

    /// The GEMM form against burn's `Conv1d` on the circularly padded channels-first input.
    #[test]
    fn ring_conv_is_burn_s_conv1d_with_circular_padding() {
        let device = default_device();
        for (k, cin, cout, sites) in [(3, 5, 7, 11), (5, 4, 4, 6), (1, 3, 2, 5)] {
            let layer = conv::<B>(cin, cout, k, &device);
            let x = NoiseSource::new(k as u64).normal::<B, 3>([3, sites, cin], &device);
            let fast = to_host(ring_conv(&layer, x.clone()));
            let reference = to_host(conv1d_circular(&layer, x.swap_dims(1, 2)).swap_dims(1, 2));
            assert_close(&fast, &reference, 1e-5, &format!("K = {k}"));
        }
    }

    /// The network's two layouts (training's and sampling's) against each other.
    #[test]
    fn both_layouts_compute_the_same_network() {
        let device = default_device();
        for gated in [false, true] {
            let cfg = RingConvConfig { gated, ..small(12) };
            let net = RingConv::<B>::new(&cfg, &device).unwrap();
            let x = NoiseSource::new(9).normal::<B, 3>([4, 3, 12], &device);
            for t in [0.1, 0.7] {
                let times = Tensor::<B, 1>::full([4], t, &device);
                let last = to_host(net.forward(x.clone(), times));
                let first = to_host(net.forward_at(x.clone(), t));
                assert_close(&last, &first, 1e-5, &format!("t = {t}, gated {gated}"));
            }
        }
    }
}
