//! `sda resimulate`: the Figure-5 physical check of Kolmogorov samples.

use super::args::read_toml;
use crate::systems::kolmogorov::KolmogorovConfig;
use crate::Result;

/// The paper's Figure-5 physical check of Kolmogorov samples: re-simulate each sample's first
/// state with the solver and compare with the sample and with persistence.
#[derive(clap::Args, Debug)]
pub struct ResimulateArgs {
    /// `samples.npy` of `sda assimilate` (`[N, L, 2, n, n]`).
    samples: String,
    /// How many samples to check (the first ones).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// TOML file of the solver configuration (default: the paper's 256² coarsened 4×).
    #[arg(long)]
    config: Option<String>,
    /// Solver grid size (overrides the config).
    #[arg(long)]
    grid: Option<usize>,
    /// Mean-pooling factor to the learning grid (overrides the config).
    #[arg(long)]
    coarsen: Option<usize>,
    /// Replace an existing `resimulate.json` beside the samples.
    #[arg(long)]
    force: bool,
}

impl ResimulateArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
            samples,
            count,
            config,
            grid,
            coarsen,
            force,
        } = self;
        let mut cfg = match &config {
            Some(path) => read_toml::<KolmogorovConfig>(path)?,
            None => KolmogorovConfig::default(),
        };
        cfg.grid = grid.unwrap_or(cfg.grid);
        cfg.coarsen = coarsen.unwrap_or(cfg.coarsen);
        let system = crate::systems::kolmogorov::Kolmogorov::new(cfg)?;
        let path = std::path::Path::new(&samples);
        let a = crate::data::read_npy(path)?;
        crate::data::check_finite(path, &a)?;
        let [n, len, 2, g, g2] = a.shape[..] else {
            return Err(crate::Error::Shape(format!(
                "{samples}: expected [samples, L, 2, n, n], got {:?}",
                a.shape
            )));
        };
        if g != g2 || g != system.coarse_grid() {
            return Err(crate::Error::Shape(format!(
                "{samples} holds {g}×{g2} fields; the solver configuration coarsens to {}²",
                system.coarse_grid()
            )));
        }
        let out = path.with_file_name("resimulate.json");
        if out.exists() && !force {
            return Err(crate::Error::Invalid(format!(
                "{} exists; give --force to replace it",
                out.display()
            )));
        }
        if count == 0 {
            return Err(crate::Error::Invalid(
                "--count must be ≥ 1 (the number of samples to re-simulate)".into(),
            ));
        }
        let d = len * 2 * g * g;
        let mut results = Vec::new();
        println!("| sample | state | RMS(sample − re-simulation) | RMS(sample − persistence) |");
        println!("|---:|---:|---:|---:|");
        for i in 0..count.min(n) {
            let x: Vec<f64> = a.data[i * d..(i + 1) * d]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let r = crate::experiments::flow::resimulate(&x, len, &system)?;
            for (s, (dist, pers)) in r.distance.iter().zip(&r.persistence).enumerate() {
                println!("| {i} | {} | {dist:.4} | {pers:.4} |", s + 1);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            println!(
                "| {i} | mean | {:.4} | {:.4} |",
                mean(&r.distance),
                mean(&r.persistence)
            );
            results.push(serde_json::json!({
                "sample": i, "distance": r.distance, "persistence": r.persistence,
            }));
        }
        crate::data::write_atomic(
            &out,
            serde_json::to_string_pretty(&results)
                .expect("json")
                .as_bytes(),
        )?;
        println!("wrote {}", out.display());
        Ok(())
    }
}
