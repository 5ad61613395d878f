//! Achieved GFLOP/s of the guided ε evaluation, beside a plain matrix multiply of the same
//! shapes on the same backend, in the same run (issue: fast kernels).
//!
//! The paper's Lorenz-63 networks (ResMLP, k = 2 width 128 and k = 3 width 256, 5 blocks) on
//! N = 128 trajectories of L = 65 states (the windows of Algorithm 2 over the batch of the
//! Lorenz protocol). The guided ε is SDA's (Algorithm 3: one forward and one VJP, the network's
//! parameters frozen so the VJP computes input gradients only), evaluated as the samplers do —
//! in pieces of ~1 024 windows on all cores (`Chunked`) — two ways in the same run: by the host
//! kernels (`score::mlp_host`, what CPU builds use) and by burn's tensor operations and
//! autodiff (`MlpScore::without_host_kernels`, what they used before). Its floating-point work
//! is counted from the linear layers on the window values: a forward costs
//! `2·B·(io·w + 2·blocks·w² + w·io)` (the time embedding's product with the input layer is one
//! row per call, not counted; the autodiff path multiplies it for every window, extra work it
//! is not credited for), the VJP as much again. The reference is `X[B, w] · W[w, w]` on the
//! inner backend with the same B and w, in the same pieces and on the same cores. Then a short
//! guided sampling run (the paper's predictor–corrector, C = 2, 32 steps) both ways. Timings
//! are medians of repeated runs (weights are random: the speed does not depend on them).
//!
//! `cargo run --release --example guided_flops`

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Tensor;
use rayon::prelude::*;
use sda::backend::{to_host, to_host_f32};
use sda::observe::ops::Pick;
use sda::prelude::*;
use sda::sampler::sample_posterior;
use sda::score::chunked::Chunked;
use sda::score::mlp::{MlpConfig, MlpScore, ResMlp};

type B = DefaultBackend;
type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

const SAMPLES: usize = 128;
const LEN: usize = 65;
const PIECE: usize = 1024 / LEN;
const REPEATS: usize = 9;
const SAMPLING_STEPS: usize = 32;
const GEMM_REPEATS: usize = 10;

/// Seconds of one call of `f`.
fn seconds(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of each task over `REPEATS` rounds, the tasks interleaved in every round so
/// that a slow spell of the shared machine hits all of them alike; and the median over rounds
/// of `first / task` for each task (paired ratios).
fn interleaved(tasks: &mut [&mut dyn FnMut()]) -> (Vec<f64>, Vec<f64>) {
    for f in tasks.iter_mut() {
        f(); // warm-up
    }
    let rounds: Vec<Vec<f64>> = (0..REPEATS)
        .map(|_| tasks.iter_mut().map(|f| seconds(*f)).collect())
        .collect();
    let times = (0..tasks.len())
        .map(|i| median(rounds.iter().map(|r| r[i]).collect()))
        .collect();
    let ratios = (0..tasks.len())
        .map(|i| median(rounds.iter().map(|r| r[0] / r[i]).collect()))
        .collect();
    (times, ratios)
}

fn main() -> Result<()> {
    sda::backend::check_backend()?;
    let device = default_device();
    println!(
        "| network | ε evaluation | guided ε (fwd + VJP) ms | its GFLOP/s | forward alone ms \
         | its GFLOP/s | guided / GEMM rate |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut sampling = Vec::new();
    let mut references = Vec::new();
    for k in [2, 3] {
        let cfg = MlpConfig::paper(k);
        let net = ResMlp::<B>::new(&cfg, &device)?;
        // parameters are initialised on first use: use them before cloning the network
        net.forward_at(
            Tensor::zeros([1, cfg.window() * cfg.state_dim], &device),
            0.5,
        );
        let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
        let shape = TrajectoryShape::new(LEN, 3);
        let states: Vec<usize> = (0..LEN).step_by(8).collect();
        let pick = Pick::new(shape, states.clone(), vec![0, 1, 2], 0.05)?;
        let y = vec![0.0; states.len() * 3];
        let x = NoiseSource::new(0).normal::<B, 3>([SAMPLES, LEN, 3], &device);
        let windows = SAMPLES * (LEN + 1 - cfg.window());
        let (w, io) = (cfg.width, cfg.window() * cfg.state_dim);
        let mults = io * w + cfg.blocks * 2 * w * w + w * io;
        let forward_flops = 2.0 * windows as f64 * mults as f64;
        let gemm_flops = 2.0 * windows as f64 * (w * w) as f64;

        let priors = [false, true].map(|host| {
            let local = MlpScore::new(net.clone(), cfg, schedule.clone());
            let local = if host {
                local
            } else {
                local.without_host_kernels()
            };
            Composed::new::<B>(local, TemporalWindow::new(k).expect("k ≥ 1")).expect("sizes agree")
        });
        let guided = priors
            .iter()
            .map(|prior| {
                Guided::<B, _, _, _>::new(prior, &pick, &y, SdaGaussian::new(1e-2)?, &device)
                    .map(|g| Chunked::new(g, PIECE))
            })
            .collect::<Result<Vec<_>>>()?;
        let unguided: Vec<_> = priors.iter().map(|p| Chunked::new(p, PIECE)).collect();
        let (mut backend_gemm, mut direct_gemm) = gemm_tasks(windows, w, &device);
        let eval = |e: &dyn EpsilonModel<B>| to_host(e.epsilon(x.clone(), 0.5));
        let (times, ratios) = interleaved(&mut [
            &mut direct_gemm,
            &mut backend_gemm,
            &mut || {
                eval(&guided[0]);
            },
            &mut || {
                eval(&guided[1]);
            },
            &mut || {
                eval(&unguided[0]);
            },
            &mut || {
                eval(&unguided[1]);
            },
        ]);
        let gemm_times = [
            times[0] / GEMM_REPEATS as f64,
            times[1] / GEMM_REPEATS as f64,
        ];
        references.push((k, w, windows, gemm_times.map(|t| gemm_flops / t / 1e9)));
        // the faster GEMM is the reference; rates relative to it from the paired ratios
        let reference_ratio: Vec<f64> = if gemm_times[0] <= gemm_times[1] {
            ratios
        } else {
            ratios.iter().map(|r| r / ratios[1]).collect()
        };
        for (label, i) in [("autodiff (before)", 0), ("host kernels", 1)] {
            let (t_guided, t_forward) = (times[2 + i], times[4 + i]);
            // guided rate / GEMM rate = (2·forward_flops / t_guided) / (gemm_flops / t_gemm)
            let share =
                2.0 * forward_flops / gemm_flops * reference_ratio[2 + i] / GEMM_REPEATS as f64;
            println!(
                "| ResMLP k = {k}, width {w}, {windows} windows | {label} | {:.1} | {:.1} | {:.1} \
                 | {:.1} | {:.0}% |",
                t_guided * 1e3,
                2.0 * forward_flops / t_guided / 1e9,
                t_forward * 1e3,
                forward_flops / t_forward / 1e9,
                100.0 * share
            );
        }
        let mut seconds = Vec::new();
        for prior in &priors {
            // a short guided sampling run at equal settings; σ_y = 1: the random network's
            // Jacobian makes a tight observation's guidance diverge, and the cost does not
            // depend on σ_y
            let loose = Pick::new(shape, states.clone(), vec![0, 1, 2], 1.0)?;
            let sampler = PredictorCorrector::new(2, 0.25)?;
            let opts = SampleOptions {
                samples: SAMPLES,
                steps: SAMPLING_STEPS,
                ..SampleOptions::default()
            };
            let guidance = SdaGaussian::new(1e-2)?;
            let start = Instant::now();
            sample_posterior::<B, _>(
                prior, &loose, &y, &guidance, &sampler, &opts, PIECE, &device,
            )?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        sampling.push((k, w, seconds));
    }
    println!();
    println!("| shapes | GEMM GFLOP/s, gemm crate | GEMM GFLOP/s, backend matmul |");
    println!("|---|---:|---:|");
    for (k, w, windows, rates) in references {
        println!(
            "| k = {k}: [{windows} × {w}] · [{w} × {w}] | {:.1} | {:.1} |",
            rates[0], rates[1]
        );
    }
    println!();
    println!(
        "| network | guided sampling, PC C = 2, {SAMPLING_STEPS} steps, {SAMPLES} × {LEN} states: \
         autodiff s | host kernels s | speed-up |"
    );
    println!("|---|---:|---:|---:|");
    for (k, w, s) in sampling {
        println!(
            "| ResMLP k = {k}, width {w} | {:.2} | {:.2} | {:.2}× |",
            s[0],
            s[1],
            s[0] / s[1]
        );
    }
    Ok(())
}

/// Two timed tasks of `GEMM_REPEATS` multiplies `X[windows, w] · W[w, w]` each, in the
/// samplers' pieces on all cores: by the backend's `matmul` (burn's CPU backend calls the
/// `gemm` crate, with its own dispatch overhead), and by the `gemm` crate called directly, one
/// thread per piece (what the host kernels do). The faster is the reference rate.
fn gemm_tasks(
    windows: usize,
    w: usize,
    device: &<Inner as burn::tensor::backend::BackendTypes>::Device,
) -> (impl FnMut(), impl FnMut()) {
    let rows: Vec<usize> = (0..windows)
        .step_by(PIECE * LEN)
        .map(|s| (PIECE * LEN).min(windows - s))
        .collect();
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let pieces: Vec<Tensor<Inner, 2>> = rows
        .iter()
        .map(|&r| Tensor::<Inner, 2>::random([r, w], normal, device))
        .collect();
    let weight = Tensor::<Inner, 2>::random([w, w], normal, device);
    let host: Vec<Vec<f32>> = pieces.iter().map(|p| to_host_f32(p.clone())).collect();
    let host_weight = to_host_f32(weight.clone());
    let mut outs: Vec<Vec<f32>> = rows.iter().map(|&r| vec![0.0; r * w]).collect();
    let backend = move || {
        for _ in 0..GEMM_REPEATS {
            let out: Vec<Vec<f64>> = pieces
                .par_iter()
                .map(|p| to_host(p.clone().matmul(weight.clone()).sum()))
                .collect();
            assert_eq!(out.len(), rows.len());
        }
    };
    let direct = move || {
        for _ in 0..GEMM_REPEATS {
            outs.par_iter_mut().zip(&host).for_each(|(c, a)| {
                let m = a.len() / w;
                // SAFETY: c is m×w, a is m×w and the weight w×w, all row-major, as addressed.
                unsafe {
                    gemm::gemm(
                        m,
                        w,
                        w,
                        c.as_mut_ptr(),
                        1,
                        w as isize,
                        false,
                        a.as_ptr(),
                        1,
                        w as isize,
                        host_weight.as_ptr(),
                        1,
                        w as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            });
        }
    };
    (backend, direct)
}
