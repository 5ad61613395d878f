//! The local score of a space–time window on a periodic ring (Lorenz-96 and its kin): a
//! residual stack of **circular 1-D convolutions over the sites**, the 2k+1 states of the window
//! as input and output channels.
//!
//! `Conv(w → C) → B × [h + Conv(SiLU(Conv(LN(h) + E_b(t))))] → Conv(C → w)`, every convolution
//! of odd kernel K padded circularly, LN the affine-free normalisation over the channels at each
//! site, `E_b(t)` a learned projection of the time embedding added to every site. Nothing
//! depends on the number of sites: the network is **translation-equivariant** and its output at
//! a site depends only on the sites within its receptive half-width
//! `(2B + 2)(K − 1)/2` ([`RingConvConfig::radius`]). Trained on whole small rings, it therefore
//! runs unchanged on the patches of a [`crate::blanket::SpaceTimeWindow`] of any large ring
//! whose spatial half-width r is at least that radius: the patch's circular padding only
//! changes the outputs within the radius of its edges, which the blanket discards.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::{activation::silu, backend::Backend, Tensor};

use super::embed::{normalise_axis1, TimeEmbedding};
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
}

/// The ring-convolution ε-network.
#[derive(Module, Debug)]
pub struct RingConv<B: Backend> {
    embed: TimeEmbedding<B>,
    input: Conv1d<B>,
    blocks: Vec<Block<B>>,
    output: Conv1d<B>,
    pad: usize,
}

fn conv<B: Backend>(inputs: usize, outputs: usize, kernel: usize, device: &B::Device) -> Conv1d<B> {
    Conv1dConfig::new(inputs, outputs, kernel)
        .with_padding(PaddingConfig1d::Valid)
        .init(device)
}

/// `[N, C, S]` padded circularly by `pad` sites on each side.
fn circular<B: Backend>(x: Tensor<B, 3>, pad: usize) -> Tensor<B, 3> {
    if pad == 0 {
        return x;
    }
    let s = x.dims()[2];
    Tensor::cat(
        vec![
            x.clone().narrow(2, s - pad, pad),
            x.clone(),
            x.narrow(2, 0, pad),
        ],
        2,
    )
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
                })
                .collect(),
            output: conv(c, w, kk, device),
            pad: kk / 2,
        })
    }

    fn conv(&self, layer: &Conv1d<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        layer.forward(circular(x, self.pad))
    }

    /// ε (or the raw output) on windows `[N, 2k+1, S]` (states as channels, S sites of a
    /// ring) with the time embedding `[N or 1, E]`.
    fn trunk(&self, x: Tensor<B, 3>, emb: Tensor<B, 2>) -> Tensor<B, 3> {
        let [n, _, s] = x.dims();
        let mut h = self.conv(&self.input, x);
        for b in &self.blocks {
            let c = h.dims()[1];
            let e = b.time.forward(emb.clone()).reshape([emb.dims()[0], c, 1]);
            let e = e.expand([n, c, s]);
            let inner = silu(self.conv(&b.first, normalise_axis1(h.clone()) + e));
            h = h + self.conv(&b.second, inner);
        }
        self.conv(&self.output, h)
    }

    /// The raw output on windows `[N, 2k+1, S]` at per-item times `[N]` (training).
    pub fn forward(&self, x: Tensor<B, 3>, t: Tensor<B, 1>) -> Tensor<B, 3> {
        let emb = self.embed.forward(t);
        self.trunk(x, emb)
    }

    /// The raw output on windows `[N, 2k+1, S]` all at time `t` (sampling).
    pub fn forward_at(&self, x: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let emb = self.embed.at(t, x.dims()[0], &x.device());
        self.trunk(x, emb)
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
