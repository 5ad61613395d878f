//! Times one circular convolution of the Lorenz-96 ring network two ways, interleaved in the
//! same run: as one matrix product of the shifted copies (`sda::score::ring_conv::ring_conv`,
//! what the network uses) and as burn's `Conv1d` on the circularly padded channels-first input
//! (what it used before). Two workloads: a training step (forward and the gradient with respect
//! to the parameters, batch 64 × 40 sites) and a guided evaluation (forward and the gradient
//! with respect to the input, 488 windows × 80 sites: 8 trajectories of 65 states of a 64-site
//! ring in the preset's space–time blanket).
//!
//! `cargo run --release --example ring_conv_speed -- [CHANNELS ...]` (default 48 96).

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::PaddingConfig1d;
use burn::tensor::Tensor;
use sda::backend::{default_device, DefaultBackend, NoiseSource};
use sda::score::ring_conv::{conv1d_circular, ring_conv};

type B = DefaultBackend;

/// Seconds of one forward and backward; `input_grad` differentiates with respect to the input
/// (guidance), otherwise with respect to the parameters (training).
fn time(layer: &Conv1d<B>, x: &Tensor<B, 3>, gemm: bool, input_grad: bool) -> f64 {
    let start = Instant::now();
    let x = if input_grad {
        x.clone().require_grad()
    } else {
        x.clone()
    };
    let layer = if input_grad {
        layer.clone().no_grad()
    } else {
        layer.clone()
    };
    let out = if gemm {
        ring_conv(&layer, x.clone())
    } else {
        conv1d_circular(&layer, x.clone().swap_dims(1, 2)).swap_dims(1, 2)
    };
    let grads = out.sum().backward();
    if input_grad {
        let _ = x.grad(&grads).unwrap().into_data();
    } else {
        let _ = layer.weight.grad(&grads).unwrap().into_data();
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let channels: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("channels are integers"))
        .collect();
    let channels = if channels.is_empty() {
        vec![48, 96]
    } else {
        channels
    };
    let device = default_device();
    println!("| channels | workload | rows | GEMM form ms | Conv1d ms | Conv1d / GEMM |");
    println!("|---:|---|---:|---:|---:|---:|");
    for c in channels {
        let layer = Conv1dConfig::new(c, c, 3)
            .with_padding(PaddingConfig1d::Valid)
            .init::<B>(&device);
        for (name, n, s, input_grad) in [
            ("training", 64, 40, false),
            ("guided", 488, 80, true),
            ("guided", 51, 80, true),
        ] {
            let x = NoiseSource::new(1).normal::<B, 3>([n, s, c], &device);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for round in 0..12 {
                let (ta, tb) = (
                    time(&layer, &x, true, input_grad),
                    time(&layer, &x, false, input_grad),
                );
                if round >= 2 {
                    a.push(ta);
                    b.push(tb);
                }
            }
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
            println!(
                "| {c} | {name} | {} | {:.2} | {:.2} | {:.2} |",
                n * s,
                ma * 1e3,
                mb * 1e3,
                mb / ma
            );
        }
    }
}
