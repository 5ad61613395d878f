//! The U-Net local score of the Kolmogorov experiment (paper §4.2, reference setup): windows of
//! `2k+1` states of `(u, v)` on an n × n torus, stacked as `2(2k+1)` channels, plus the fixed
//! forcing channel `sin(4y)`.
//!
//! Architecture: a 3 × 3 input convolution; per level `l` (channels `c_l`) `blocks` residual
//! blocks `x + Conv(SiLU(Conv(LN_c(x + Linear(emb)))))` (LN_c: LayerNorm over channels, no
//! affine), then a stride-2 convolution down to level `l + 1`; back up, nearest ×2 upsampling and
//! a convolution to `c_l`, the level's skip added, `blocks` residual blocks; a 3 × 3 output
//! convolution. **Every convolution pads circularly** (the domain is periodic), so the network
//! commutes with circular shifts of its input by multiples of `2^(levels−1)` pixels (a stride-2
//! convolution cannot commute with odd shifts), the forcing channel aside.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Int, Tensor, TensorData};

use super::embed::TimeEmbedding;
use super::precondition::Output;
use super::LocalScore;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// Architecture of a [`UNet`] (stored with every checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Blanket half-width k (window of 2k+1 states).
    pub k: usize,
    /// Grid size n of a state (`2 × n × n`).
    pub grid: usize,
    /// Channels per level, finest first (paper: 96, 192, 384).
    pub channels: Vec<usize>,
    /// Residual blocks per level and direction (paper: 3).
    pub blocks: usize,
    /// Time-embedding size (paper: 64).
    pub embedding: usize,
    /// Append the fixed forcing channel `sin(4y)` to the input (paper: yes).
    pub forcing: bool,
    /// How the raw output becomes ε (default: directly, as in the paper).
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
}

impl UNetConfig {
    /// The paper's network: (96, 192, 384) channels, 3 blocks, embedding 64, k = 2, 64² grid
    /// (≈ 2e7 parameters).
    pub fn paper() -> Self {
        Self {
            k: 2,
            grid: 64,
            channels: vec![96, 192, 384],
            blocks: 3,
            embedding: 64,
            forcing: true,
            output: Output::Epsilon,
        }
    }

    /// A network small enough to train on 2 CPU cores: (16, 32, 64) channels, 1 block per
    /// level, embedding 32, k = 2, 64² grid, and the preconditioned output
    /// ([`Output::Preconditioned`]): after a CPU-length training the direct ε output is not
    /// accurate enough near t = 1 to sample from (see the Kolmogorov chapter of the book).
    pub fn cpu() -> Self {
        Self {
            channels: vec![16, 32, 64],
            blocks: 1,
            embedding: 32,
            output: Output::Preconditioned,
            ..Self::paper()
        }
    }

    /// A preset by name (`paper` or `cpu`).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(Self::paper()),
            "cpu" => Ok(Self::cpu()),
            other => Err(Error::UnknownPlugin {
                kind: "U-Net preset",
                name: other.into(),
                known: vec!["cpu".into(), "paper".into()],
            }),
        }
    }

    /// Checks the sizes: k ≥ 1, ≥ 1 level, positive channels, and a grid divisible by
    /// `2^(levels−1)`.
    pub fn validate(&self) -> Result<()> {
        let levels = self.channels.len();
        if self.k == 0
            || levels == 0
            || self.blocks == 0
            || self.embedding == 0
            || self.channels.contains(&0)
        {
            return Err(Error::Invalid(format!(
                "U-Net sizes must be positive (k ≥ 1, ≥ 1 level): {self:?}"
            )));
        }
        let step = 1usize << (levels - 1);
        if self.grid < 2 * step || !self.grid.is_multiple_of(step) {
            return Err(Error::Shape(format!(
                "a {}-level U-Net needs a grid divisible by {step} (and ≥ {}), got {}",
                levels,
                2 * step,
                self.grid
            )));
        }
        Ok(())
    }

    /// Window length 2k+1.
    pub fn window(&self) -> usize {
        2 * self.k + 1
    }

    /// Flattened dimension of one state, `2 n²`.
    pub fn state_dim(&self) -> usize {
        2 * self.grid * self.grid
    }

    /// Input channels: `2(2k+1)`, plus one for the forcing.
    pub fn in_channels(&self) -> usize {
        2 * self.window() + usize::from(self.forcing)
    }

    /// The rows `(lo, hi)` of the input that output row `row` depends on (inclusive, before
    /// wrapping around the torus), by propagating the interval back through every layer: a
    /// 3 × 3 convolution widens it by one pixel each side, a stride-2 convolution maps output
    /// `i` to inputs `2i − 1 … 2i + 1`, nearest upsampling maps `i` to `⌊i/2⌋`; a skip takes
    /// the union of both branches. Columns behave the same.
    pub fn receptive_field(&self, row: i64) -> (i64, i64) {
        fn blocks(iv: (i64, i64), n: usize) -> (i64, i64) {
            (iv.0 - 2 * n as i64, iv.1 + 2 * n as i64)
        }
        fn union(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
            (a.0.min(b.0), a.1.max(b.1))
        }
        // `iv`: rows of level l's up-path input (its skip added) → rows of level l's input
        // (the features before its down blocks)
        fn level(cfg: &UNetConfig, l: usize, iv: (i64, i64)) -> (i64, i64) {
            // the skip is the output of level l's down blocks
            let skip = iv;
            let below = if l + 1 < cfg.channels.len() {
                // up: conv (±1) of nearest-upsampled level l+1 features
                let up = (iv.0 - 1, iv.1 + 1);
                let coarse = (up.0.div_euclid(2), up.1.div_euclid(2));
                // level l+1 up blocks, then down to level l+1's input
                let deeper = level(cfg, l + 1, blocks(coarse, cfg.blocks));
                // level l+1's input is the stride-2 convolution of level l's skip
                Some((2 * deeper.0 - 1, 2 * deeper.1 + 1))
            } else {
                None
            };
            let here = match below {
                Some(b) => union(skip, b),
                None => skip,
            };
            // level l down blocks
            blocks(here, cfg.blocks)
        }
        // output conv, level-0 up blocks
        let iv = blocks((row - 1, row + 1), self.blocks);
        let iv = level(self, 0, iv);
        // input conv
        (iv.0 - 1, iv.1 + 1)
    }
}

/// `x` padded by `p` on both sides of its last two axes, circularly.
///
/// One index selection per axis (`[n−p, …, n−1, 0, …, n−1, 0, …, p−1]`): on the flex backend
/// this is faster than concatenating slices, and its gradient is the matching scatter-add.
pub fn circular_pad<B: Backend>(x: Tensor<B, 4>, p: usize) -> Tensor<B, 4> {
    if p == 0 {
        return x;
    }
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let wrap = |n: usize| {
        let index: Vec<i64> = (0..n + 2 * p)
            .map(|i| ((i + n * p - p) % n) as i64)
            .collect();
        Tensor::<B, 1, Int>::from_ints(index.as_slice(), &device)
    };
    x.select(2, wrap(h)).select(3, wrap(w))
}

/// A 3 × 3 convolution with circular padding (stride 1 or 2).
#[derive(Module, Debug)]
struct CircConv<B: Backend> {
    conv: Conv2d<B>,
}

impl<B: Backend> CircConv<B> {
    fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .init(device),
        }
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv.forward(circular_pad(x, 1))
    }
}

/// LayerNorm over the channel axis of `[N, C, H, W]`, no affine parameters:
/// `(x − mean_c x) / √(var_c x + 1e-5)`.
///
/// The channel mean, variance and the broadcast back over channels are written as small
/// matrix products on `[N, C, H·W]` (`(I − 11ᵀ/C) x`, `(1ᵀ/C) x²`, `1 v`): on the flex
/// backend a broadcast over the middle axis takes a slow strided path, a matrix product does
/// not.
fn channel_norm<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let centre = (Tensor::<B, 2>::eye(c, &device) - 1.0 / c as f64).reshape([1, c, c]);
    let centred = centre.matmul(x.reshape([n, c, h * w]));
    let average = Tensor::<B, 3>::full([1, 1, c], 1.0 / c as f64, &device);
    let var = average.matmul(centred.clone().powi_scalar(2));
    let scale = Tensor::<B, 3>::ones([1, c, 1], &device).matmul((var + 1e-5).sqrt().recip());
    (centred * scale).reshape([n, c, h, w])
}

#[derive(Module, Debug)]
struct ResBlock<B: Backend> {
    emb: Linear<B>,
    first: CircConv<B>,
    second: CircConv<B>,
}

impl<B: Backend> ResBlock<B> {
    fn new(c: usize, e: usize, device: &B::Device) -> Self {
        Self {
            emb: LinearConfig::new(e, c).init(device),
            first: CircConv::new(c, c, 1, device),
            second: CircConv::new(c, c, 1, device),
        }
    }
    /// `x + Conv(SiLU(Conv(LN_c(x + Linear(emb)))))`.
    fn forward(&self, x: Tensor<B, 4>, emb: Tensor<B, 2>) -> Tensor<B, 4> {
        let [n, c, _, _] = x.dims();
        let e = self.emb.forward(emb).reshape([n, c, 1, 1]);
        let h = channel_norm(x.clone() + e);
        x + self.second.forward(silu(self.first.forward(h)))
    }
}

#[derive(Module, Debug)]
struct Level<B: Backend> {
    down_blocks: Vec<ResBlock<B>>,
    /// Stride-2 convolution to the next level (absent on the coarsest).
    down: Option<CircConv<B>>,
    /// Convolution after nearest upsampling from the next level (absent on the coarsest).
    up: Option<CircConv<B>>,
    up_blocks: Vec<ResBlock<B>>,
}

/// The U-Net ε-network.
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    embed: TimeEmbedding<B>,
    input: CircConv<B>,
    levels: Vec<Level<B>>,
    output: CircConv<B>,
}

/// Nearest-neighbour ×2 upsampling of `[N, C, H, W]`.
fn upsample<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w])
}

impl<B: Backend> UNet<B> {
    /// A freshly initialised network.
    pub fn new(cfg: &UNetConfig, device: &B::Device) -> Result<Self> {
        cfg.validate()?;
        let (cs, e) = (&cfg.channels, cfg.embedding);
        let levels = (0..cs.len())
            .map(|l| {
                let next = cs.get(l + 1).copied();
                Level {
                    down_blocks: (0..cfg.blocks)
                        .map(|_| ResBlock::new(cs[l], e, device))
                        .collect(),
                    down: next.map(|c| CircConv::new(cs[l], c, 2, device)),
                    up: next.map(|c| CircConv::new(c, cs[l], 1, device)),
                    up_blocks: (0..cfg.blocks)
                        .map(|_| ResBlock::new(cs[l], e, device))
                        .collect(),
                }
            })
            .collect();
        Ok(Self {
            embed: TimeEmbedding::new(e, device),
            input: CircConv::new(cfg.in_channels(), cs[0], 1, device),
            levels,
            output: CircConv::new(cs[0], 2 * cfg.window(), 1, device),
        })
    }

    /// ε on image stacks `[N, C_in, n, n]` (the window's `2(2k+1)` channels, plus the forcing
    /// channel when configured) with time features `[N, E]`.
    pub fn forward_features(&self, x: Tensor<B, 4>, emb: Tensor<B, 2>) -> Tensor<B, 4> {
        let mut h = self.input.forward(x);
        let mut skips = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            for b in &level.down_blocks {
                h = b.forward(h, emb.clone());
            }
            skips.push(h.clone());
            if let Some(down) = &level.down {
                h = down.forward(h);
            }
        }
        for (level, skip) in self.levels.iter().zip(skips).rev() {
            if let Some(up) = &level.up {
                h = up.forward(upsample(h)) + skip;
            }
            for b in &level.up_blocks {
                h = b.forward(h, emb.clone());
            }
        }
        self.output.forward(h)
    }

    /// ε on windows `[N, 2k+1, 2n²]` at per-item times `[N]` (training) or one shared time.
    pub fn forward(
        &self,
        cfg: &UNetConfig,
        windows: Tensor<B, 3>,
        t: Tensor<B, 1>,
    ) -> Tensor<B, 3> {
        let emb = self.embed.forward(t);
        self.forward_windows(cfg, windows, emb)
    }

    /// As [`UNet::forward`] with every window at the same time `t` (sampling).
    pub fn forward_at(&self, cfg: &UNetConfig, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let n = windows.dims()[0];
        let emb = self
            .embed
            .forward(Tensor::<B, 1>::full([1], t, &windows.device()));
        let e = emb.dims()[1];
        self.forward_windows(cfg, windows, emb.expand([n, e]))
    }

    fn forward_windows(
        &self,
        cfg: &UNetConfig,
        windows: Tensor<B, 3>,
        emb: Tensor<B, 2>,
    ) -> Tensor<B, 3> {
        let [n, w, d] = windows.dims();
        let g = cfg.grid;
        let mut x = windows.reshape([n, 2 * w, g, g]);
        if cfg.forcing {
            let f = forcing::<B>(g, &x.device()).expand([n, 1, g, g]);
            x = Tensor::cat(vec![x, f], 1);
        }
        self.forward_features(x, emb).reshape([n, w, d])
    }
}

/// The forcing channel `sin(4y)` on an n × n grid (`y = 2π i / n` for row i), `[1, 1, n, n]`.
pub fn forcing<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 4> {
    let values: Vec<f32> = (0..n * n)
        .map(|p| (4.0 * 2.0 * std::f64::consts::PI * (p / n) as f64 / n as f64).sin() as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 1, n, n]), device)
}

/// A trained [`UNet`] as a [`LocalScore`]; parameters frozen (see [`super::mlp::MlpScore`]).
pub struct UNetScore<B: Backend> {
    net: UNet<B>,
    config: UNetConfig,
    schedule: std::sync::Arc<dyn NoiseSchedule>,
}

impl<B: Backend> UNetScore<B> {
    /// A local score from a network (parameters frozen for guidance).
    pub fn new(
        net: UNet<B>,
        config: UNetConfig,
        schedule: std::sync::Arc<dyn NoiseSchedule>,
    ) -> Self {
        Self {
            net: net.no_grad(),
            config,
            schedule,
        }
    }

    /// The network's architecture.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }
}

impl<B: Backend> LocalScore<B> for UNetScore<B> {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn window(&self) -> usize {
        self.config.window()
    }
    fn state_dim(&self) -> usize {
        self.config.state_dim()
    }
    fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let f = self.net.forward_at(&self.config, windows.clone(), t);
        self.config
            .output
            .epsilon(f, windows, t, self.schedule.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::Distribution;

    type T = Flex;

    fn values(x: Tensor<T, 4>) -> Vec<f32> {
        x.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn circular_pad_wraps_each_axis() {
        let (h, w) = (3, 4);
        let ramp: Vec<f32> = (0..2 * h * w).map(|v| v as f32).collect();
        let x =
            Tensor::<T, 1>::from_floats(ramp.as_slice(), &Default::default()).reshape([1, 2, h, w]);
        for p in [1usize, 2] {
            let padded = circular_pad(x.clone(), p);
            assert_eq!(padded.dims(), [1, 2, h + 2 * p, w + 2 * p]);
            let got = values(padded);
            let (hp, wp) = (h + 2 * p, w + 2 * p);
            for c in 0..2 {
                for i in 0..hp {
                    for j in 0..wp {
                        let (si, sj) = ((i + h - p % h) % h, (j + w - p % w) % w);
                        let want = (c * h * w + si * w + sj) as f32;
                        assert_eq!(got[(c * hp + i) * wp + j], want, "p={p} c={c} i={i} j={j}");
                    }
                }
            }
        }
    }

    #[test]
    fn channel_norm_is_layer_norm_over_channels() {
        let (n, c, h, w) = (2, 5, 3, 4);
        let x = Tensor::<T, 4>::random(
            [n, c, h, w],
            Distribution::Normal(1.0, 3.0),
            &Default::default(),
        );
        let input = values(x.clone());
        let got = values(channel_norm(x));
        for b in 0..n {
            for p in 0..h * w {
                let at = |ch: usize| (b * c + ch) * h * w + p;
                let mean = (0..c).map(|ch| input[at(ch)] as f64).sum::<f64>() / c as f64;
                let var = (0..c)
                    .map(|ch| (input[at(ch)] as f64 - mean).powi(2))
                    .sum::<f64>()
                    / c as f64;
                for ch in 0..c {
                    let want = (input[at(ch)] as f64 - mean) / (var + 1e-5).sqrt();
                    assert!(
                        (got[at(ch)] as f64 - want).abs() < 1e-4,
                        "{} vs {want}",
                        got[at(ch)]
                    );
                }
            }
        }
    }
}
