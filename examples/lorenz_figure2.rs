//! The paper's Figure 2 statistics for a trained Lorenz-63 local score: for test observations
//! of the "lo" (ã every 8th state, σ_y = 0.05) or "hi" (ã every state, σ_y = 0.25) process on
//! the first 65 states, SDA posteriors (Algorithm 2 + Algorithm 3 with γ = 3e-2 + Algorithm 4
//! with τ = 0.25) against two bootstrap particle filters, reporting per C the median over
//! observations of W1(SDA, BPF) / W1(BPF, BPF′), E[log p(y | x)] and E[log p(x_{2:L} | x_1)].
//!
//! ```text
//! cargo run --release --example lorenz_figure2 -- RUN_DIR DATA_DIR [lo|hi] [observations=16]
//!     [samples=128] [C list=0,1,2,4] [particles=16384]
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use sda::backend::{default_device, from_host, to_host, DefaultBackend, NoiseSource};
use sda::blanket::TemporalWindow;
use sda::data::load_split;
use sda::filter::{ParticleFilter, Smoother};
use sda::guidance::{Guided, SdaGaussian};
use sda::metrics::expected_log_prior;
use sda::observe::{ops::Pick, ObservationModel};
use sda::sampler::{sample, PredictorCorrector, SampleOptions};
use sda::schedule::{NoiseSchedule, VpCosine};
use sda::score::mlp::MlpScore;
use sda::score::train::load_trained;
use sda::score::Composed;
use sda::systems::lorenz63::Lorenz63;
use sda::transport::wasserstein1;
use sda::TrajectoryShape;

type B = DefaultBackend;
const LEN: usize = 65;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn standardised(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(3)
        .flat_map(|s| Lorenz63::standardise([s[0], s[1], s[2]]))
        .collect()
}

fn physical(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(3)
        .flat_map(|s| Lorenz63::unstandardise([s[0], s[1], s[2]]))
        .collect()
}

fn main() -> sda::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: lorenz_figure2 RUN_DIR DATA_DIR [lo|hi] [observations] [samples] [C,..] [particles]");
        std::process::exit(2);
    }
    let run = PathBuf::from(&args[1]);
    let data = PathBuf::from(&args[2]);
    let scenario = args.get(3).map(String::as_str).unwrap_or("lo");
    let observations: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(16);
    let samples: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(128);
    let cs: Vec<usize> = args
        .get(6)
        .map(|s| s.split(',').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 1, 2, 4]);
    let particles: usize = args.get(7).and_then(|s| s.parse().ok()).unwrap_or(1 << 14);
    let (every, sigma) = match scenario {
        "lo" => (8, 0.05),
        "hi" => (1, 0.25),
        other => {
            return Err(sda::Error::Invalid(format!(
                "unknown scenario '{other}' (lo or hi)"
            )))
        }
    };
    let device = default_device();
    let (net, cfg) = load_trained::<B>(&run, &device)?;
    let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
    let local = MlpScore {
        net,
        config: cfg,
        schedule,
    };
    let prior = Composed::new::<B>(local, TemporalWindow::new(cfg.k)?)?;
    let test = load_split(&data, "test", &[3])?;
    let t_len = test.shape[1];
    if t_len < LEN || test.shape[0] < observations {
        return Err(sda::Error::Shape(format!(
            "test split {:?} has fewer than {observations} trajectories of {LEN} states",
            test.shape
        )));
    }
    let shape = TrajectoryShape::new(LEN, 3);
    let obs = Pick::from_config(
        shape,
        sda::observe::ops::PickConfig {
            states: None,
            every: Some(every),
            components: vec![0],
            sigma,
        },
    )?;
    let sys = Lorenz63::default();
    let mut rows: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); cs.len()];
    let mut bpf_rows = Vec::new();
    for j in 0..observations {
        let off = j * t_len * 3;
        let truth: Vec<f64> = test.data[off..off + LEN * 3]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mut noise = NoiseSource::new(1000 + j as u64);
        let y = to_host(ObservationModel::<B>::sample(
            &obs,
            from_host::<B, 3>(&standardised(&truth), [1, LEN, 3], &device),
            &mut noise,
        ));
        let states = obs.states().to_vec();
        let yy = y.clone();
        let lik = move |i: usize, x: &[f64]| {
            states
                .iter()
                .position(|&s| s == i)
                .map(|m| -0.5 * ((x[0] / 8.0 - yy[m]) / sigma).powi(2))
        };
        let bpf = |seed: u64| {
            ParticleFilter {
                particles,
                burn_in: 64,
                samples,
                seed,
                smoother: Smoother::Genealogy,
            }
            .run(&sys, LEN, &lik)
        };
        let (g1, g2) = (bpf(2 * j as u64)?, bpf(2 * j as u64 + 1)?);
        let floor = wasserstein1(&g1, &g2, LEN * 3)?;
        let loglik = |x: &[f64]| -> f64 {
            let t = ObservationModel::<B>::log_likelihood(
                &obs,
                &y,
                from_host::<B, 3>(&standardised(x), [x.len() / (LEN * 3), LEN, 3], &device),
            );
            let v = to_host(t);
            v.iter().sum::<f64>() / v.len() as f64
        };
        bpf_rows.push((1.0, loglik(&g1), expected_log_prior(&sys, &g1, LEN)?));
        let posterior =
            Guided::<B, _, _, _>::new(&prior, &obs, &y, SdaGaussian::new(3e-2)?, &device)?;
        for (ci, &c) in cs.iter().enumerate() {
            let start = std::time::Instant::now();
            let (x, _) = sample::<B>(
                &posterior,
                &PredictorCorrector::new(c, 0.25)?,
                shape,
                &SampleOptions {
                    samples,
                    steps: 256,
                    seed: 7 + j as u64,
                    progress: true,
                },
                &device,
            )?;
            let x = physical(&to_host(x));
            let w = wasserstein1(&x, &g1, LEN * 3)? / floor;
            let row = (w, loglik(&x), expected_log_prior(&sys, &x, LEN)?);
            eprintln!(
                "observation {j}, C = {c}: W1 ratio {:.2}, E[log p(y|x)] {:.2} (BPF {:.2}), \
                 E[log prior] {:.1} (BPF {:.1}), {:.0} s",
                row.0,
                row.1,
                bpf_rows[j].1,
                row.2,
                bpf_rows[j].2,
                start.elapsed().as_secs_f64()
            );
            rows[ci].push(row);
        }
    }
    println!(
        "| {scenario}, k = {}, {samples} samples, {observations} observations | median W1(SDA, BPF)/W1(BPF, BPF′) | median E[log p(y|x)] | median E[log p(x_2:L|x_1)] |",
        cfg.k
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| BPF ({particles} particles) | 1 | {:.2} | {:.1} |",
        median(bpf_rows.iter().map(|r| r.1).collect()),
        median(bpf_rows.iter().map(|r| r.2).collect())
    );
    for (ci, c) in cs.iter().enumerate() {
        println!(
            "| SDA C = {c} | {:.2} | {:.2} | {:.1} |",
            median(rows[ci].iter().map(|r| r.0).collect()),
            median(rows[ci].iter().map(|r| r.1).collect()),
            median(rows[ci].iter().map(|r| r.2).collect())
        );
    }
    Ok(())
}
