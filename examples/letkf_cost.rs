//! The LETKF's cost per cycle against the ring size: the `sakov2008` setup (every site observed
//! every step, R = I) on Lorenz-96 rings of n = 40 … 4096 sites, N = 7, inflation 1.04, radius
//! 4, rotated; the seconds of the cycling (forecast, local analyses, scoring) per cycle, and the
//! ratio to the previous row against the ratio of sizes (linear cost: equal ratios).
//!
//! ```text
//! cargo run --release --example letkf_cost                # n = 40, 256, 1024, 4096; 1000 cycles
//! cargo run --release --example letkf_cost -- 600 40,1024 # other cycles and sizes
//! ```

use sda::experiments::baseline::{run, BaselineOptions, Setup};
use sda::{Error, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cycles: usize = match args.first() {
        Some(c) => c
            .parse()
            .map_err(|e| Error::Invalid(format!("cycles '{c}': {e}")))?,
        None => 1000,
    };
    let sizes: Vec<usize> = match args.get(1) {
        Some(s) => s
            .split(',')
            .map(|v| {
                v.parse()
                    .map_err(|e| Error::Invalid(format!("size '{v}': {e}")))
            })
            .collect::<Result<_>>()?,
        None => vec![40, 256, 1024, 4096],
    };
    let setup = Setup::named("sakov2008")?;
    println!("| n | rmse_a | spread_a | ms per cycle | cost ratio | size ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut previous: Option<(usize, f64)> = None;
    for n in sizes {
        let options = BaselineOptions {
            method: "letkf".into(),
            params: "ensemble = 7, inflation = 1.04, radius = 4, rotate = true".into(),
            system_params: format!("n = {n}"),
            cycles,
            seed: 0,
            ..BaselineOptions::default()
        };
        let r = run(&setup, &options, |_| {})?;
        let ms = 1e3 * r.seconds / r.cycles.len() as f64;
        let (cost, size) = match previous {
            Some((m, t)) => (
                format!("{:.2}", ms / t),
                format!("{:.2}", n as f64 / m as f64),
            ),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {n} | {:.4} | {:.4} | {ms:.3} | {cost} | {size} |",
            r.analysis.rmse, r.analysis.spread
        );
        previous = Some((n, ms));
    }
    Ok(())
}
