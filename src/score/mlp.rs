//! The ResMLP local score of the Lorenz experiment: input the `(2k+1)·3` standardised window
//! values concatenated with the time embedding, `Linear → 5 × [x + Linear(SiLU(Linear(LN(x))))]
//! → Linear` with LayerNorm **without** affine parameters, output ε of the window.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Tensor};

use super::embed::{normalise_axis1, TimeEmbedding};
use super::precondition::Output;
use super::LocalScore;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// Architecture of a [`ResMlp`] (stored with every checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Blanket half-width k (window of 2k+1 states).
    pub k: usize,
    /// State dimension D.
    pub state_dim: usize,
    /// Hidden width (paper: 128 for k ≤ 2, 256 for k ≥ 3).
    pub width: usize,
    /// Number of residual blocks (paper: 5).
    pub blocks: usize,
    /// Time-embedding size E.
    pub embedding: usize,
    /// How the raw output becomes ε (default: directly, as in the paper).
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
}

impl MlpConfig {
    /// The paper's network for a given k on Lorenz-63 (D = 3).
    pub fn paper(k: usize) -> Self {
        Self {
            k,
            state_dim: 3,
            width: if k <= 2 { 128 } else { 256 },
            blocks: 5,
            embedding: 64,
            output: Output::Epsilon,
        }
    }

    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0
            || self.state_dim == 0
            || self.width == 0
            || self.blocks == 0
            || self.embedding == 0
        {
            return Err(Error::Invalid(format!(
                "network sizes must be positive (k ≥ 1): {self:?}"
            )));
        }
        Ok(())
    }

    /// Window length 2k+1.
    pub fn window(&self) -> usize {
        2 * self.k + 1
    }
}

#[derive(Module, Debug)]
struct Block<B: Backend> {
    first: Linear<B>,
    second: Linear<B>,
}

/// The ResMLP ε-network.
#[derive(Module, Debug)]
pub struct ResMlp<B: Backend> {
    embed: TimeEmbedding<B>,
    input: Linear<B>,
    blocks: Vec<Block<B>>,
    output: Linear<B>,
}

impl<B: Backend> ResMlp<B> {
    /// A freshly initialised network.
    pub fn new(cfg: &MlpConfig, device: &B::Device) -> Result<Self> {
        cfg.validate()?;
        let io = cfg.window() * cfg.state_dim;
        Ok(Self {
            embed: TimeEmbedding::new(cfg.embedding, device),
            input: LinearConfig::new(io + cfg.embedding, cfg.width).init(device),
            blocks: (0..cfg.blocks)
                .map(|_| Block {
                    first: LinearConfig::new(cfg.width, cfg.width).init(device),
                    second: LinearConfig::new(cfg.width, cfg.width).init(device),
                })
                .collect(),
            output: LinearConfig::new(cfg.width, io).init(device),
        })
    }

    /// ε on flattened windows `[N, (2k+1)·D]` at per-item times `[N]` (training: every
    /// item has its own t).
    pub fn forward(&self, x: Tensor<B, 2>, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let emb = self.embed.forward(t);
        self.trunk(x, emb)
    }

    /// ε on flattened windows `[N, (2k+1)·D]` all at the same time `t` (sampling): the
    /// embedding is computed once and broadcast, instead of N times.
    pub fn forward_at(&self, x: Tensor<B, 2>, t: f64) -> Tensor<B, 2> {
        let emb = self.embed.at(t, x.dims()[0], &x.device());
        self.trunk(x, emb)
    }

    fn trunk(&self, x: Tensor<B, 2>, emb: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = self.input.forward(Tensor::cat(vec![x, emb], 1));
        for b in &self.blocks {
            h = h.clone() + b.second.forward(silu(b.first.forward(normalise_axis1(h))));
        }
        self.output.forward(h)
    }
}

/// A trained [`ResMlp`] as a [`LocalScore`] on standardised windows.
pub struct MlpScore<B: Backend> {
    net: ResMlp<B>,
    config: MlpConfig,
    schedule: Arc<dyn NoiseSchedule>,
}

impl<B: Backend> MlpScore<B> {
    /// A local score from a trained network. Its parameters are frozen (`no_grad`): guidance
    /// differentiates with respect to the input x(t) only, so the backward pass of Algorithm 3
    /// computes no parameter gradients.
    pub fn new(net: ResMlp<B>, config: MlpConfig, schedule: Arc<dyn NoiseSchedule>) -> Self {
        Self {
            net: net.no_grad(),
            config,
            schedule,
        }
    }

    /// The network's architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }
}

impl<B: Backend> LocalScore<B> for MlpScore<B> {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn window(&self) -> usize {
        self.config.window()
    }
    fn state_dim(&self) -> usize {
        self.config.state_dim
    }
    fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let [n, w, d] = windows.dims();
        let f = self
            .net
            .forward_at(windows.clone().reshape([n, w * d]), t)
            .reshape([n, w, d]);
        self.config
            .output
            .epsilon(f, windows, t, self.schedule.as_ref())
    }
}
