//! The Kolmogorov U-Net: circular-shift equivariance, the receptive field its config states,
//! the paper preset's size, and its use as a composed local score.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};
use sda::backend::{default_device, from_host, to_host, DefaultBackend};
use sda::blanket::TemporalWindow;
use sda::schedule::VpCosine;
use sda::score::precondition::Output;
use sda::score::unet::{UNet, UNetConfig, UNetScore};
use sda::score::{Composed, EpsilonModel};

type B = DefaultBackend;
type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

fn small(grid: usize, forcing: bool) -> UNetConfig {
    UNetConfig {
        k: 1,
        grid,
        channels: vec![8, 16, 32],
        blocks: 1,
        embedding: 16,
        forcing,
        output: Output::Epsilon,
    }
}

fn random(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Circular shift of `[C, n, n]` images by (dy, dx).
fn shift(x: &[f64], c: usize, n: usize, dy: usize, dx: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for ch in 0..c {
        for i in 0..n {
            for j in 0..n {
                out[(ch * n + (i + dy) % n) * n + (j + dx) % n] = x[(ch * n + i) * n + j];
            }
        }
    }
    out
}

fn eps(net: &UNet<Inner>, cfg: &UNetConfig, x: &[f64]) -> Vec<f64> {
    let w = cfg.window();
    let t = from_host::<Inner, 3>(x, [1, w, cfg.state_dim()], &default_device());
    to_host(net.forward_at(cfg, t, 0.4))
}

#[test]
fn network_commutes_with_circular_shifts() {
    let device = default_device();
    for (forcing, dy, dx) in [(false, 4, 12), (false, 28, 4), (true, 8, 4), (true, 16, 20)] {
        let cfg = small(32, forcing);
        let net = UNet::<Inner>::new(&cfg, &device).unwrap();
        let c = 2 * cfg.window();
        let x = random(c * 32 * 32, 1);
        let a = shift(&eps(&net, &cfg, &x), c, 32, dy, dx);
        let b = eps(&net, &cfg, &shift(&x, c, 32, dy, dx));
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
        assert!(
            err < 1e-5 * scale.max(1.0),
            "forcing {forcing}, shift ({dy}, {dx}): error {err} (scale {scale})"
        );
    }
    // an odd shift is not a symmetry of stride-2 downsampling: the check above is not vacuous
    let cfg = small(32, false);
    let net = UNet::<Inner>::new(&cfg, &device).unwrap();
    let c = 2 * cfg.window();
    let x = random(c * 32 * 32, 2);
    let a = shift(&eps(&net, &cfg, &x), c, 32, 1, 0);
    let b = eps(&net, &cfg, &shift(&x, c, 32, 1, 0));
    assert!(a.iter().zip(&b).any(|(u, v)| (u - v).abs() > 1e-4));
}

#[test]
fn receptive_field_is_what_the_config_says() {
    let device = default_device();
    const N: usize = 128;
    for cfg in [
        UNetConfig {
            channels: vec![4, 8],
            ..small(N, false)
        },
        small(N, false),
    ] {
        let (row, col) = (61usize, 66usize);
        let (lo, hi) = cfg.receptive_field(row as i64);
        assert!(
            lo > 0 && hi < N as i64 - 1,
            "choose a grid larger than the field: {lo}..{hi}"
        );
        let net = UNet::<B>::new(&cfg, &device).unwrap();
        let c = 2 * cfg.window();
        let x = from_host::<B, 4>(&random(c * N * N, 3), [1, c, N, N], &device).require_grad();
        let emb = Tensor::<B, 2>::zeros([1, cfg.embedding], &device);
        let out = net.forward_features(x.clone(), emb);
        let pixel = out
            .narrow(1, 0, 1)
            .narrow(2, row, 1)
            .narrow(3, col, 1)
            .sum();
        let g = to_host(x.grad(&pixel.backward()).unwrap());
        let rows: Vec<usize> = (0..N)
            .filter(|&i| (0..c).any(|ch| (0..N).any(|j| g[(ch * N + i) * N + j] != 0.0)))
            .collect();
        let cols: Vec<usize> = (0..N)
            .filter(|&j| (0..c).any(|ch| (0..N).any(|i| g[(ch * N + i) * N + j] != 0.0)))
            .collect();
        assert_eq!(
            (rows[0] as i64, *rows.last().unwrap() as i64),
            (lo, hi),
            "{cfg:?}"
        );
        assert_eq!(rows.len() as i64, hi - lo + 1, "contiguous");
        let (clo, chi) = cfg.receptive_field(col as i64);
        assert_eq!((cols[0] as i64, *cols.last().unwrap() as i64), (clo, chi));
    }
}

#[test]
fn presets_and_composition() {
    let device = default_device();
    let paper = UNet::<Inner>::new(&UNetConfig::paper(), &device).unwrap();
    let params = paper.num_params();
    assert!(
        (1.5e7..2.5e7).contains(&(params as f64)),
        "paper preset has {params} parameters"
    );
    let cpu = UNet::<Inner>::new(&UNetConfig::cpu(), &device).unwrap();
    eprintln!("parameters: paper {params}, cpu {}", cpu.num_params());
    assert!(cpu.num_params() < params / 50);
    // as a local score composed over a trajectory of L = 6 states (k = 1)
    let cfg = small(32, true);
    let score = UNetScore::new(
        UNet::<Inner>::new(&cfg, &device).unwrap(),
        cfg.clone(),
        Arc::new(VpCosine::default()),
    );
    let prior = Composed::new::<Inner>(score, TemporalWindow::new(1).unwrap()).unwrap();
    let x = from_host::<Inner, 3>(&random(2 * 6 * 2048, 4), [2, 6, 2048], &device);
    let e = prior.epsilon(x, 0.5);
    assert_eq!(e.dims(), [2, 6, 2048]);
    assert!(to_host(e).iter().all(|v| v.is_finite()));
    // bad sizes are errors, not panics
    let err = UNetConfig {
        grid: 30,
        ..small(32, true)
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("divisible by 4"), "{err}");
    assert!(UNetConfig::preset("huge").is_err());
}
