//! Criterion benchmarks of the Kolmogorov-flow solver: one IMEX time step at 256² and 64², and
//! one snapshot interval Δ = 0.2 at 256² from a random start with max velocity 3 (the CFL
//! rule then takes 49 steps; the turbulent regime takes 53–73, see
//! `examples/kolmogorov_solver.rs` for the median there).
//!
//! FLOP count per step (n = 256): 5 stages × 5 real 2-D FFTs. One transform costs about
//! n·2.5 n log₂n (real row FFTs) + c·5 n log₂n (complex column FFTs on the c = 86 dealiased
//! x-wavenumber columns) ≈ 1.31 + 0.88 = 2.2 MFLOP, so 55 MFLOP of FFTs plus ≈ 13 MFLOP of
//! pointwise work: ≈ 68 MFLOP per step. At n = 64: ≈ 3.4 MFLOP per step. The achieved rate is
//! this count divided by the measured time (see the issue notes for the numbers).
//!
//! `cargo bench --bench kolmogorov`

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{rngs::StdRng, SeedableRng};
use sda::systems::kolmogorov::{Kolmogorov, KolmogorovConfig};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("kolmogorov");
    g.sample_size(10);
    for n in [64usize, 256] {
        let sys = Kolmogorov::new(KolmogorovConfig {
            grid: n,
            coarsen: 1,
            ..KolmogorovConfig::default()
        })
        .unwrap();
        let s = sys.solver();
        let mut ws = s.workspace();
        let w0 = sys.random_vorticity(&mut StdRng::seed_from_u64(0), &mut ws);
        let dt = s.cfl_dt(&w0, 0.5, &mut ws);
        let mut w = w0.clone();
        g.bench_function(format!("one step {n}²"), |b| {
            b.iter(|| s.step(&mut w, dt, &mut ws))
        });
        if n == 256 {
            g.bench_function("one interval Δ=0.2 at 256²", |b| {
                b.iter(|| {
                    let mut w = w0.clone();
                    s.advance(&mut w, 0.2, 0.5, &mut ws)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
