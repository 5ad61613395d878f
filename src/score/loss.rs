//! The denoising score-matching loss of **Algorithm 1**, `mean((ε_φ(μ(t) x + σ(t) ε, t) − ε)²)`,
//! on one batch: what a training step ([`super::train`]) and its sharded form
//! ([`super::sharded`]) differentiate.

use burn::tensor::{Tensor, TensorData};

use super::network::ScoreNetwork;
use crate::schedule::NoiseSchedule;

/// One batch of Algorithm 1, borrowed: the noised windows x(t) `[n·(2k+1)·D]`, their times
/// `[n]` and their noise ε `[n·(2k+1)·D]`.
pub type Batch<'a> = (&'a [f32], &'a [f32], &'a [f32]);

/// The denoising score-matching loss of Algorithm 1 on one batch `(x(t), t, ε)` of flattened
/// windows (`[n·(2k+1)·D]`, `[n]`, `[n·(2k+1)·D]`): `mean((ε_φ(x(t), t) − ε)²)`, with ε_φ the
/// network's raw output mapped to ε by its [`ScoreNetwork::output`] under `schedule`.
pub fn denoising_loss<B: burn::tensor::backend::Backend, N: ScoreNetwork<B>>(
    model: &N,
    cfg: &N::Config,
    (xt, ts, eps): Batch<'_>,
    row: usize,
    schedule: &dyn NoiseSchedule,
    device: &B::Device,
) -> Tensor<B, 1> {
    let n = ts.len();
    let x = Tensor::<B, 2>::from_data(TensorData::new(xt.to_vec(), [n, row]), device);
    let t = Tensor::<B, 1>::from_data(TensorData::new(ts.to_vec(), [n]), device);
    let e = Tensor::<B, 2>::from_data(TensorData::new(eps.to_vec(), [n, row]), device);
    let f = model.forward_train(cfg, x.clone(), t);
    let eps_hat = N::output(cfg).epsilon_per_item(f, x, ts, schedule);
    (eps_hat - e).powi_scalar(2).mean()
}

/// The value of a one-element tensor (a loss) as `f32`.
pub(crate) fn scalar<B: burn::tensor::backend::Backend>(x: Tensor<B, 1>) -> f32 {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float")[0]
}
