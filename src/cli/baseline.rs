//! `sda baseline`: a classical method on a named, published twin-experiment setup, one
//! summary row (or JSON object), and with `--out` the per-cycle scores.

use std::path::PathBuf;

use crate::experiments::baseline::{
    cycles_array, cycles_csv, run, summary_json, BaselineOptions, Setup,
};
use crate::experiments::markdown::cell;
use crate::progress::Progress;
use crate::{Error, Result};

/// Runs a registered classical method (`sda list`) on a named twin experiment: the truth and
/// its observations from `--seed`, the method cycled over them, and the averages after the
/// burn-in (analysis RMSE and spread, forecast RMSE, CRPS, 90% coverage, rank histogram).
#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// The system (must be the setup's).
    system: String,
    /// The named setup: sakov2008 (Lorenz-96, n = 40, every site observed every step,
    /// R = I), sakov2008-dto4 (every 4th step).
    #[arg(long, default_value = "sakov2008")]
    setup: String,
    /// The method (`sda list`: enkf, etkf, denkf, var3d, climatology, …).
    #[arg(long)]
    method: String,
    /// Method parameters, as the inside of a TOML inline table, over the setup's published
    /// tuning of the method (var3d on sakov2008: "background = 0.02").
    #[arg(long, default_value = "")]
    params: String,
    /// System parameters over the setup's, as a TOML inline table (e.g. 'n = 1024': the same
    /// setup on a larger ring).
    #[arg(long, default_value = "")]
    system_params: String,
    /// The observation over the setup's, as a TOML inline table: `sites` (observe every
    /// how many sites), `every` (every how many model steps), `sigma`, `operator`
    /// ("identity" or "arctan") (e.g. 'sites = 4, every = 4' for every 4th site every 4th
    /// step).
    #[arg(long, default_value = "")]
    observe: String,
    /// Observation cycles (the setup's number by default: 10 000).
    #[arg(long)]
    cycles: Option<usize>,
    /// Seed of the truth and the observations (the method draws from seed + 1).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of the table row.
    #[arg(long)]
    json: bool,
    /// Also write the per-cycle scores (`cycles.csv`, and `cycles.npy` as `[cycles, 10]` float32 in
    /// the CSV's column order) and `summary.json` into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the files of an existing `--out`.
    #[arg(long)]
    force: bool,
}

impl BaselineArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let setup = Setup::named(&self.setup)?;
        if self.system != setup.system.0 {
            return Err(Error::Invalid(format!(
                "setup {} is a {} experiment, not {}",
                setup.name, setup.system.0, self.system
            )));
        }
        let cycles = self.cycles.unwrap_or(setup.cycles);
        // one writer per folder, and an earlier run kept unless --force
        let _lock = match &self.out {
            Some(out) => {
                let lock = crate::data::lock::FolderLock::acquire(out, "sda baseline")?;
                if out.join("summary.json").exists() && !self.force {
                    return Err(Error::Invalid(format!(
                        "{} already holds a baseline run (summary.json); pass --force to \
                         replace it",
                        out.display()
                    )));
                }
                Some(lock)
            }
            None => None,
        };
        let steps = (cycles as u64).saturating_mul(setup.observing(&self.observe)?.every as u64);
        let bar = Progress::new(
            steps,
            &format!("{} on {}", self.method, setup.name),
            "steps",
            "{msg} [{bar:30}] {pos}/{len} model steps, ETA {eta}",
            true,
        );
        let options = BaselineOptions {
            method: self.method.clone(),
            params: self.params.clone(),
            system_params: self.system_params.clone(),
            observe: self.observe.clone(),
            cycles,
            seed: self.seed,
        };
        let result = run(&setup, &options, |k| {
            if k % 100 == 0 {
                bar.set_position(k as u64)
            }
        })?;
        bar.finish();
        let summary = summary_json(&result, cycles, self.seed);
        if let Some(out) = &self.out {
            crate::data::write_atomic(&out.join("cycles.csv"), cycles_csv(&result).as_bytes())?;
            crate::data::write_npy(&out.join("cycles.npy"), &cycles_array(&result))?;
            let text = serde_json::to_string_pretty(&summary).expect("json");
            crate::data::write_atomic(&out.join("summary.json"), text.as_bytes())?;
        }
        if self.json {
            println!("{summary}");
        } else {
            print_row(&result, cycles);
        }
        match result.lost {
            (0, _) => Ok(()),
            (count, first) => Err(Error::Numerical(format!(
                "{} lost track of the truth: its analysis RMSE exceeds the climatological spread \
                 {:.2} and three times its own spread at {count} of {} averaged analysis times \
                 (the first at model step {}); the averages above describe a diverged filter",
                result.method,
                result.climate_spread,
                result.averaged,
                first.unwrap_or(0)
            ))),
        }
    }
}

/// The summary as one markdown table row under its header.
fn print_row(result: &crate::experiments::baseline::BaselineRun, cycles: usize) {
    let a = &result.analysis;
    println!(
        "| setup | method | cycles | rmse_a | spread_a | spread/rmse | rmse_f | crps_a | \
             coverage90_a | seconds | ms per cycle |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {cycles} | {:.4} | {:.4} | {:.3} | {:.4} | {:.4} | {:.3} | {:.2} | {:.3} |",
        cell(&result.setup),
        cell(&result.method),
        a.rmse,
        a.spread,
        a.spread / a.rmse,
        result.forecast.rmse,
        a.crps,
        a.coverage90,
        result.seconds,
        1e3 * result.seconds / result.cycles.len().max(1) as f64,
    );
    if let Some(s) = &result.smoothed {
        println!(
            "smoothed (final, after the lag): rmse_s {:.4}, spread_s {:.4}",
            s.rmse, s.spread
        );
    }
}
