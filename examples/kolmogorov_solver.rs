//! The Kolmogorov-flow solver at full size: a 256² run from a random start, 64 burn-in
//! snapshots (12.8 time units), then statistics of the statistically stationary regime over
//! the next snapshots, the time per snapshot interval, and a PNG strip of the vorticity.
//!
//! `cargo run --release --example kolmogorov_solver -- [snapshots=32] [seed=0]`

use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};
use sda::systems::kolmogorov::{vorticity_from_velocity, Kolmogorov, KolmogorovConfig};

fn main() -> sda::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let snapshots: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let sys = Kolmogorov::new(KolmogorovConfig::default())?;
    let cfg = sys.config().clone();
    let s = sys.solver();
    let mut ws = s.workspace();
    let mut w = sys.random_vorticity(&mut StdRng::seed_from_u64(seed), &mut ws);
    let start = Instant::now();
    for _ in 0..64 {
        s.advance(&mut w, cfg.snapshot_dt, cfg.cfl, &mut ws);
    }
    eprintln!(
        "burn-in of 64 snapshots: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut steps = Vec::new();
    let (mut e_sum, mut z_sum) = (0.0, 0.0);
    let mut spectrum = vec![0.0; cfg.grid / 2 + 1];
    let mut strip = Vec::new();
    let nc = sys.coarse_grid();
    for i in 0..snapshots {
        let t0 = Instant::now();
        steps.push(s.advance(&mut w, cfg.snapshot_dt, cfg.cfl, &mut ws));
        times.push(t0.elapsed().as_secs_f64());
        let (e, z) = s.energy_enstrophy(&w, &mut ws);
        e_sum += e;
        z_sum += z;
        for (a, b) in spectrum.iter_mut().zip(s.energy_spectrum(&w)) {
            *a += b / snapshots as f64;
        }
        if i % (snapshots / 8).max(1) == 0 && strip.len() < 8 {
            let uv = sys.coarse_velocity(&w, &mut ws);
            strip.push(vorticity_from_velocity(&uv[..nc * nc], &uv[nc * nc..], nc));
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    // least-squares slope of log E(k) against log k over the enstrophy-cascade range
    let (k_lo, k_hi) = (8usize, 64usize);
    let pts: Vec<(f64, f64)> = (k_lo..=k_hi)
        .filter(|&k| spectrum[k] > 0.0)
        .map(|k| ((k as f64).ln(), spectrum[k].ln()))
        .collect();
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
        / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    println!("| quantity | value |\n|---|---|");
    println!("| grid | {}² |", cfg.grid);
    println!("| snapshots averaged (after 64 burn-in) | {snapshots} |");
    println!("| mean energy ½⟨u²+v²⟩ | {:.4} |", e_sum / snapshots as f64);
    println!("| mean enstrophy ½⟨ω²⟩ | {:.3} |", z_sum / snapshots as f64);
    println!("| spectrum slope, k ∈ [{k_lo}, {k_hi}] | {slope:.2} |");
    println!(
        "| time steps per Δ = 0.2 (min–max) | {}–{} |",
        steps.iter().min().unwrap(),
        steps.iter().max().unwrap()
    );
    println!("| median seconds per Δ = 0.2 | {median:.3} |");
    let per_step = times.iter().sum::<f64>() / steps.iter().sum::<usize>() as f64;
    println!(
        "| mean milliseconds per time step | {:.2} |",
        per_step * 1e3
    );
    let path = std::path::Path::new("runs/kolmogorov_solver/vorticity.png");
    sda::plot::vorticity_strip_png(
        path,
        &strip,
        nc,
        &format!(
            "Kolmogorov flow {}², coarse vorticity every {:.1} time units after burn-in",
            cfg.grid,
            cfg.snapshot_dt * (snapshots / 8).max(1) as f64
        ),
    )?;
    let spath = std::path::Path::new("runs/kolmogorov_solver/spectrum.png");
    // shells beyond n/3 are only partly inside the dealiased square and carry no energy
    sda::plot::spectrum_png(spath, &spectrum[..=cfg.grid / 3], slope, (k_lo, k_hi))?;
    println!("Figures: {} {}", path.display(), spath.display());
    Ok(())
}
