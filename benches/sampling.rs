//! Criterion benchmarks of the sampling path on the exact oracle (D = 2, L = 16, N = 2048):
//! the composed local score (Algorithm 2), the SDA-guided ε (Algorithm 3, one backward pass)
//! and one predictor–corrector step with C = 1 (Algorithm 4).
//!
//! `cargo bench --bench sampling`

use criterion::{criterion_group, criterion_main, Criterion};
use sda::backend::to_host;
use sda::experiments::oracle::{oracle_observation, OracleProblem};
use sda::prelude::*;

type B = DefaultBackend;

fn bench(c: &mut Criterion) {
    let device = default_device();
    let problem = OracleProblem::new::<B>(oracle_observation(), 0, &device).unwrap();
    let local = problem
        .system
        .window_epsilon(2, problem.schedule.clone())
        .unwrap();
    let prior = Composed::new::<B>(local, TemporalWindow::new(2).unwrap()).unwrap();
    let posterior = Guided::<B, _, _, _>::new(
        &prior,
        &problem.observation,
        &problem.y,
        SdaGaussian::new(1e-2).unwrap(),
        &device,
    )
    .unwrap();
    let mut noise = NoiseSource::new(0);
    let x = noise.normal::<B, 3>([2048, 16, 2], &device);
    let pc = PredictorCorrector::new(1, 0.25).unwrap();

    let mut g = c.benchmark_group("oracle N=2048 L=16 k=2");
    g.sample_size(20);
    g.bench_function("composed ε", |b| {
        b.iter(|| to_host(prior.epsilon(x.clone(), 0.5)))
    });
    g.bench_function("SDA-guided ε", |b| {
        b.iter(|| to_host(posterior.epsilon(x.clone(), 0.5)))
    });
    g.bench_function("PC step C=1 (guided)", |b| {
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
