//! The oracle's biases without sampling noise: the exact law of DDIM samples (C = 0), pushed
//! through the affine DDIM map in closed form ([`sda::experiments::oracle::ddim_law`]), against the exact
//! posterior (Kalman smoother), for each registered VP schedule, the exact posterior ε, SDA
//! (k = 2, Algorithm 2, Algorithm 3) and Algorithm 3 on the exact trajectory prior (SDA without
//! the composition), and several step counts.
//!
//! ```text
//! cargo run --release --example oracle_law                 # 256 and 1024 steps, γ = 1e-2
//! cargo run --release --example oracle_law -- 64,256 0.1   # other steps, another γ
//! ```
//!
//! Columns: the largest |law mean − posterior mean| / posterior std over the 32 coordinates,
//! and the range of law variance / posterior variance (all, and at the observed coordinates).
//! A second table does the same for the prior alone: Algorithm 2's composition of the analytic
//! local score for k = 1 … 7 against the exact trajectory prior.

use sda::experiments::oracle::{ddim_law, oracle_observation, OracleProblem};
use sda::metrics::MomentComparison;
use sda::prelude::*;
use sda::registry::{build, parse_params, SchedulePlugin};

type B = DefaultBackend;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: Vec<usize> = match args.first() {
        Some(s) => s
            .split(',')
            .map(|v| {
                v.parse()
                    .map_err(|e| Error::Invalid(format!("steps '{v}': {e}")))
            })
            .collect::<Result<_>>()?,
        None => vec![256, 1024],
    };
    let gamma: f64 = match args.get(1) {
        Some(g) => g
            .parse()
            .map_err(|e| Error::Invalid(format!("gamma '{g}': {e}")))?,
        None => 1e-2,
    };
    sda::backend::check_backend()?;
    let device = default_device();
    println!("| schedule | ε | steps | max |Δmean|/std | var ratio | var ratio observed |");
    println!("|---|---|---:|---:|---:|---:|");
    for name in ["vp-cosine", "vp-exp", "vp-linear"] {
        let schedule = build::<SchedulePlugin>(name, &parse_params("")?)?;
        let p = OracleProblem::with_schedule::<B>(oracle_observation(), schedule, 0, &device)?;
        let sda = p.guided_epsilon::<B, _, _>(
            TemporalWindow::new(2)?,
            SdaGaussian::new(gamma)?,
            &device,
        )?;
        // Algorithm 3 on the exact trajectory prior: SDA without Algorithm 2's approximation
        let full_prior = p.system.prior_epsilon(p.shape().len, p.schedule.clone())?;
        let guided_full = Guided::new(
            full_prior,
            &p.observation,
            &p.y,
            SdaGaussian::new(gamma)?,
            &device,
        )?;
        let label = format!("SDA k = 2, γ = {gamma}");
        let label_full = format!("Algorithm 3 on the exact prior, γ = {gamma}");
        let models: [(&str, &dyn EpsilonModel<B>); 3] = [
            ("exact posterior", &p.posterior_epsilon),
            (&label, &sda),
            (&label_full, &guided_full),
        ];
        for (what, eps) in models {
            for &s in &steps {
                let (mean, cov) = ddim_law::<B>(eps, p.shape(), s, &device)?;
                let var: Vec<f64> = cov.diagonal().iter().copied().collect();
                let cmp = MomentComparison::of_moments(
                    mean.as_slice(),
                    &var,
                    &p.posterior_mean,
                    &p.posterior_var,
                )?;
                let err = cmp.max_mean_error();
                let (lo, hi) = cmp.variance_ratio_range(None);
                let (olo, ohi) = cmp.variance_ratio_range(Some(&p.observed));
                println!(
                    "| {name} | {what} | {s} | {err:.3} | {lo:.3}–{hi:.3} | {olo:.3}–{ohi:.3} |"
                );
            }
        }
    }

    // Algorithm 2 alone: the composed analytic prior (no observation) against the exact prior
    println!();
    println!("| schedule | prior ε | steps | max |Δmean|/std | var ratio |");
    println!("|---|---|---:|---:|---:|");
    let p = OracleProblem::new::<B>(oracle_observation(), 0, &device)?;
    let (m, c) = p.system.trajectory_prior(p.shape().len);
    let prior_var: Vec<f64> = c.diagonal().iter().copied().collect();
    for k in [1usize, 2, 3, 5, 7] {
        let local = p.system.window_epsilon(k, p.schedule.clone())?;
        let composed = Composed::new::<B>(local, TemporalWindow::new(k)?)?;
        for &s in &steps {
            let (mean, cov) = ddim_law::<B>(&composed, p.shape(), s, &device)?;
            let var: Vec<f64> = cov.diagonal().iter().copied().collect();
            let cmp =
                MomentComparison::of_moments(mean.as_slice(), &var, m.as_slice(), &prior_var)?;
            let err = cmp.max_mean_error();
            let (lo, hi) = cmp.variance_ratio_range(None);
            println!("| vp-cosine | Algorithm 2, k = {k} | {s} | {err:.3} | {lo:.3}–{hi:.3} |");
        }
    }
    Ok(())
}
