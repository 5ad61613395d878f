//! Time embedding of the diffusion time t ∈ [0, 1] (reference choice): 16 frequencies
//! `f ∈ π·{1, …, 16}`, features `[cos(f t), sin(f t)]` (32 values) → Linear(32, 256) → SiLU →
//! Linear(256, E).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Tensor, TensorData};

/// Number of frequencies of the embedding.
pub const FREQUENCIES: usize = 16;

/// The time-embedding network.
#[derive(Module, Debug)]
pub struct TimeEmbedding<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
}

impl<B: Backend> TimeEmbedding<B> {
    /// An embedding of size `dim`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            hidden: LinearConfig::new(2 * FREQUENCIES, 256).init(device),
            out: LinearConfig::new(256, dim).init(device),
        }
    }

    /// `[N]` times → `[N, E]` features.
    pub fn forward(&self, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let n = t.dims()[0];
        let freqs: Vec<f32> = (1..=FREQUENCIES)
            .map(|k| std::f32::consts::PI * k as f32)
            .collect();
        let freqs =
            Tensor::<B, 2>::from_data(TensorData::new(freqs, [1, FREQUENCIES]), &t.device());
        let phase = t.reshape([n, 1]) * freqs;
        let features = Tensor::cat(vec![phase.clone().cos(), phase.sin()], 1);
        self.out.forward(silu(self.hidden.forward(features)))
    }

    /// The features of one time `t` for `n` items, computed once and broadcast (`[n, E]`):
    /// what a sampler's batch, all at the same t, needs.
    pub fn at(&self, t: f64, n: usize, device: &B::Device) -> Tensor<B, 2> {
        let emb = self.forward(Tensor::<B, 1>::full([1], t, device));
        let e = emb.dims()[1];
        emb.expand([n, e])
    }
}

/// Normalisation over axis 1 without affine parameters: `(x − mean) / √(var + 1e-5)` — the
/// LayerNorm of a ResMLP's features `[N, F]`, or of a ring convolution's channels at each site
/// `[N, C, S]`.
pub fn normalise_axis1<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    normalise_axis(x, 1)
}

/// The same normalisation over any one axis (a ring convolution's channels, last in its
/// `[N, S, C]` activations).
pub fn normalise_axis<B: Backend, const D: usize>(x: Tensor<B, D>, axis: usize) -> Tensor<B, D> {
    let mean = x.clone().mean_dim(axis);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(axis);
    centred / (var + 1e-5).sqrt()
}
