//! Seconds per Kolmogorov posterior sample on this machine (issue: timing table), for the
//! `cpu` U-Net preset (or `paper`), k = 2, SDA guidance (γ = 1e-2) of the "assimilation"
//! scenario (every 4th state, 8 × 8 pooling, σ_y = 0.1), predictor–corrector with C = 1
//! (τ = 0.5): the sampler is run for `measure` steps on one trajectory of L states and the
//! time per step is scaled to the full `steps`. Timing does not depend on the weights, so an
//! untrained (seeded) network is used. Prints a markdown table.
//!
//! `cargo run --release --example kolmogorov_timing -- [preset=cpu] [measure=4] [steps=256] [L list=8,32]`

use std::sync::Arc;
use std::time::Instant;

use sda::backend::{default_device, DefaultBackend, NoiseSource};
use sda::blanket::TemporalWindow;
use sda::guidance::{Guided, SdaGaussian};
use sda::observe::{field::FieldScenario, ObservationModel};
use sda::sampler::{PredictorCorrector, Sampler};
use sda::schedule::VpCosine;
use sda::score::unet::{UNet, UNetConfig, UNetScore};
use sda::score::Composed;

type B = DefaultBackend;

fn main() -> sda::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let preset = args.get(1).map(String::as_str).unwrap_or("cpu");
    let measure: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(256);
    let lens: Vec<usize> = args
        .get(4)
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![8, 32]);
    let cfg = UNetConfig::preset(preset)?;
    sda::backend::check_backend()?;
    let device = default_device();
    <B as burn::tensor::backend::Backend>::seed(&device, 0);
    let score = UNetScore::new(
        UNet::<B>::new(&cfg, &device)?,
        cfg.clone(),
        Arc::new(VpCosine::default()),
    );
    let prior = Composed::new::<B>(score, TemporalWindow::new(cfg.k)?)?;
    let pc = PredictorCorrector::new(1, 0.5)?;
    println!(
        "| U-Net `{preset}` ({} channels, {} block(s)), k = {}, SDA + PC C = 1 | windows per ε | ε evaluations per sample ({steps} steps) | s per step (mean of {measure}) | s per posterior sample |",
        cfg.channels.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("/"),
        cfg.blocks,
        cfg.k
    );
    println!("|---|---:|---:|---:|---:|");
    for &len in &lens {
        let obs = FieldScenario::Assimilation.build(len, cfg.grid)?;
        let m = ObservationModel::<B>::output_dim(&obs);
        let y = vec![0.0; m];
        let posterior =
            Guided::<B, _, _, _>::new(&prior, &obs, &y, SdaGaussian::new(1e-2)?, &device)?;
        let mut noise = NoiseSource::new(1);
        let mut x = noise.normal::<B, 3>([1, len, cfg.state_dim()], &device);
        // one warm-up step, then the measured ones
        x = Sampler::<B>::step(
            &pc,
            &posterior,
            x,
            1.0,
            1.0 - 1.0 / steps as f64,
            &mut noise,
        );
        let start = Instant::now();
        for s in 1..=measure {
            let t = 1.0 - s as f64 / steps as f64;
            x = Sampler::<B>::step(&pc, &posterior, x, t, t - 1.0 / steps as f64, &mut noise);
        }
        let _ = sda::backend::to_host(x);
        let per_step = start.elapsed().as_secs_f64() / measure as f64;
        println!(
            "| L = {len} | {} | {} | {per_step:.2} | {:.0} |",
            len - 2 * cfg.k,
            2 * steps,
            per_step * steps as f64
        );
    }
    Ok(())
}
