//! Criterion benchmarks of the Lorenz-63 experiment (paper §4.1) at the paper's sizes:
//! - one training step (Algorithm 1) of the ResMLP with k = 2, width 256, batch 256
//!   (forward, backward, AdamW update);
//! - the composed local score (Algorithm 2) on 1024 trajectories of 65 states (k = 2, width 128);
//! - one SDA-guided predictor–corrector step (Algorithms 3–4, C = 1) on 128 trajectories of
//!   65 states observed "lo" (ã every 8th state, σ_y = 0.05);
//!   both also through [`Chunked`] (pieces of ≈1024 windows evaluated in parallel), which is
//!   how `sda assimilate` / `sda evaluate` sample;
//! - the bootstrap particle filter with 2^16 particles over 129 transitions (L = 130).
//!
//! `cargo bench --bench lorenz` (or `-- 'composed'` for one of them).

use std::sync::Arc;

use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use criterion::{criterion_group, criterion_main, Criterion};
use sda::backend::to_host;
use sda::experiments::lorenz;
use sda::filter::{ParticleFilter, Smoother};
use sda::observe::ops::Pick;
use sda::prelude::*;
use sda::schedule::VpCosine;
use sda::score::chunked::Chunked;
use sda::score::mlp::{MlpConfig, MlpScore, ResMlp};
use sda::score::train::denoising_loss;
use sda::systems::lorenz63::Lorenz63;

type B = DefaultBackend;
type Inner = <B as AutodiffBackend>::InnerBackend;

fn training_step(c: &mut Criterion) {
    let device = default_device();
    let cfg = MlpConfig {
        width: 256,
        ..MlpConfig::paper(2)
    };
    let row = cfg.window() * cfg.state_dim;
    let n = 256;
    let mut noise = NoiseSource::new(0);
    let mut draw = |len: usize| -> Vec<f32> {
        to_host(noise.normal::<B, 1>([len], &device))
            .into_iter()
            .map(|v| v as f32)
            .collect()
    };
    let batch = (
        draw(n * row),
        draw(n).iter().map(|v| v.abs().min(1.0)).collect::<Vec<_>>(),
        draw(n * row),
    );
    let mut model = Some(ResMlp::<B>::new(&cfg, &device).unwrap());
    let mut optim = AdamWConfig::new()
        .with_weight_decay(1e-3)
        .init::<B, ResMlp<B>>();
    let mut g = c.benchmark_group("lorenz training");
    g.sample_size(30);
    g.bench_function("step k=2 width=256 batch=256", |b| {
        b.iter(|| {
            let m = model.take().unwrap();
            let l = denoising_loss(
                &m,
                &cfg,
                (&batch.0, &batch.1, &batch.2),
                row,
                &VpCosine::default(),
                &device,
            );
            let grads = GradientsParams::from_grads(l.backward(), &m);
            model = Some(optim.step(1e-3, m, grads));
        })
    });
    g.finish();
}

fn sampling(c: &mut Criterion) {
    let device = default_device();
    let cfg = MlpConfig::paper(2);
    let local = MlpScore::<B>::new(
        ResMlp::new(&cfg, &device).unwrap(),
        cfg,
        Arc::new(VpCosine::default()),
    );
    let prior = Composed::new::<B>(local, TemporalWindow::new(2).unwrap()).unwrap();
    let inner_local = MlpScore::<Inner>::new(
        ResMlp::new(&cfg, &device).unwrap(),
        cfg,
        Arc::new(VpCosine::default()),
    );
    let inner_prior = Composed::new::<Inner>(inner_local, TemporalWindow::new(2).unwrap()).unwrap();
    let mut noise = NoiseSource::new(0);
    let x = noise.normal::<Inner, 3>([1024, 65, 3], &device);
    let mut g = c.benchmark_group("lorenz sampling");
    g.sample_size(10);
    g.bench_function("composed ε 1024×65 k=2", |b| {
        b.iter(|| to_host(inner_prior.epsilon(x.clone(), 0.5)))
    });
    let chunked_prior = Chunked::for_rows(&inner_prior, 1024, 65);
    g.bench_function("composed ε 1024×65 k=2, chunked", |b| {
        b.iter(|| to_host(chunked_prior.epsilon(x.clone(), 0.5)))
    });
    let obs =
        Pick::from_config(TrajectoryShape::new(65, 3), lorenz::preset("lo").unwrap()).unwrap();
    let units = sda::data::Standardisation::lorenz63();
    let truth = units.physical(&to_host(noise.normal::<Inner, 3>([1, 65, 3], &device)));
    let y =
        sda::experiments::posterior::observe::<B>(&obs, &units, &truth, None, 0, &device).unwrap();
    let posterior =
        Guided::<B, _, _, _>::new(&prior, &obs, &y, SdaGaussian::new(3e-2).unwrap(), &device)
            .unwrap();
    let pc = PredictorCorrector::new(1, 0.25).unwrap();
    let x = noise.normal::<B, 3>([128, 65, 3], &device);
    g.bench_function("guided PC step C=1 128×65 k=2 lo", |b| {
        b.iter(|| {
            to_host(Sampler::<B>::step(
                &pc,
                &posterior,
                x.clone(),
                0.5,
                0.496,
                &mut noise,
            ))
        })
    });
    let chunked = Chunked::for_rows(&posterior, 1024, 65);
    g.bench_function("guided PC step C=1 128×65 k=2 lo, chunked", |b| {
        b.iter(|| {
            to_host(Sampler::<B>::step(
                &pc,
                &chunked,
                x.clone(),
                0.5,
                0.496,
                &mut noise,
            ))
        })
    });
    g.finish();
}

fn particle_filter(c: &mut Criterion) {
    let sys = Lorenz63::default();
    let len = 130;
    let lik = |i: usize, x: &[f64]| {
        i.is_multiple_of(8)
            .then(|| -0.5 * ((x[0] / 8.0 - 0.3) / 0.05).powi(2))
    };
    let mut g = c.benchmark_group("lorenz ground truth");
    g.sample_size(10);
    g.bench_function("BPF 2^16 particles, 129 transitions", |b| {
        b.iter(|| {
            ParticleFilter {
                particles: 1 << 16,
                burn_in: 64,
                samples: 1024,
                seed: 0,
                smoother: Smoother::Genealogy,
            }
            .run(&sys, len, &lik)
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, training_step, sampling, particle_filter);
criterion_main!(benches);
