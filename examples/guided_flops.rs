//! Achieved GFLOP/s of the guided ε evaluation, beside a plain matrix multiply of the same
//! shapes on the same backend, in the same run (issue: fast kernels).
//!
//! The paper's Lorenz-63 networks (ResMLP, k = 2 width 128 and k = 3 width 256, 5 blocks) on
//! N = 128 trajectories of L = 65 states: 8 320 windows, the batch of the Lorenz protocol.
//! The guided ε is SDA's (Algorithm 3: one forward and one VJP, the network's parameters
//! frozen so the VJP computes input gradients only), evaluated as the samplers do — in pieces
//! of ~1 024 windows on all cores (`Chunked`). Its floating-point work is counted from the
//! linear layers, which dominate: a forward costs `2·B·Σ in·out`, the VJP as much again. The
//! reference is `X[B, w] · W[w, w]` on the inner backend with the same B and w, in the same
//! pieces and on the same cores. Timings are medians of repeated runs (weights are random:
//! the speed does not depend on them).
//!
//! `cargo run --release --example guided_flops`

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Tensor;
use rayon::prelude::*;
use sda::backend::to_host;
use sda::observe::ops::Pick;
use sda::prelude::*;
use sda::score::chunked::Chunked;
use sda::score::mlp::{MlpConfig, MlpScore, ResMlp};

type B = DefaultBackend;
type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

const SAMPLES: usize = 128;
const LEN: usize = 65;
const PIECE: usize = 1024 / LEN;
const REPEATS: usize = 9;

fn median_seconds(mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[REPEATS / 2]
}

fn main() -> Result<()> {
    sda::backend::check_backend()?;
    let device = default_device();
    println!(
        "| network | windows B | guided ε (fwd + VJP) ms | its GFLOP/s | forward alone ms | its GFLOP/s \
         | GEMM B×w·w×w ms | GEMM GFLOP/s | guided / GEMM rate |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for k in [2, 3] {
        let cfg = MlpConfig::paper(k);
        let net = ResMlp::<B>::new(&cfg, &device)?;
        let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
        let local = MlpScore::new(net, cfg, schedule);
        let prior = Composed::new::<B>(local, TemporalWindow::new(k)?)?;
        let shape = TrajectoryShape::new(LEN, 3);
        let states: Vec<usize> = (0..LEN).step_by(8).collect();
        let pick = Pick::new(shape, states.clone(), vec![0, 1, 2], 0.05)?;
        let y = vec![0.0; states.len() * 3];
        let guided =
            Guided::<B, _, _, _>::new(&prior, &pick, &y, SdaGaussian::new(1e-2)?, &device)?;
        let guided = Chunked::new(guided, PIECE);
        let unguided = Chunked::new(&prior, PIECE);
        let x = NoiseSource::new(0).normal::<B, 3>([SAMPLES, LEN, 3], &device);

        let windows = SAMPLES * LEN;
        let (w, io) = (cfg.width, cfg.window() * cfg.state_dim);
        let mults = (io + cfg.embedding) * w + cfg.blocks * 2 * w * w + w * io;
        let forward_flops = 2.0 * windows as f64 * mults as f64;
        let t_guided = median_seconds(|| {
            to_host(guided.epsilon(x.clone(), 0.5));
        });
        let t_forward = median_seconds(|| {
            to_host(unguided.epsilon(x.clone(), 0.5));
        });

        // the reference: the same rows in the same pieces, a w×w weight, as many multiplies
        // as the guided evaluation's linear layers do per row
        let pieces: Vec<Tensor<Inner, 2>> = (0..windows)
            .step_by(PIECE * LEN)
            .map(|s| {
                let rows = (PIECE * LEN).min(windows - s);
                Tensor::<Inner, 2>::random(
                    [rows, w],
                    burn::tensor::Distribution::Normal(0.0, 1.0),
                    &device,
                )
            })
            .collect();
        let weight = Tensor::<Inner, 2>::random(
            [w, w],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let t_gemm = median_seconds(|| {
            let out: Vec<Vec<f64>> = pieces
                .par_iter()
                .map(|p| to_host(p.clone().matmul(weight.clone()).sum()))
                .collect();
            assert_eq!(out.len(), pieces.len());
        });
        let gemm_flops = 2.0 * windows as f64 * (w * w) as f64;
        let (g_guided, g_forward, g_gemm) = (
            2.0 * forward_flops / t_guided / 1e9,
            forward_flops / t_forward / 1e9,
            gemm_flops / t_gemm / 1e9,
        );
        println!(
            "| ResMLP k = {k}, width {w} | {windows} | {:.1} | {g_guided:.1} | {:.1} | {g_forward:.1} \
             | {:.2} | {g_gemm:.1} | {:.0}% |",
            t_guided * 1e3,
            t_forward * 1e3,
            t_gemm * 1e3,
            100.0 * g_guided / g_gemm
        );
    }
    Ok(())
}
