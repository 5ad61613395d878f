//! The quickstart's oracle comparison: the exact posterior ε, SDA and DPS on the fixed oracle.

use crate::backend::DefaultBackend;
use crate::blanket::TemporalWindow;
use crate::observe::{ops::Pick, ObservationModel};
use crate::sampler::SampleOptions;
use crate::{Error, Result};

use super::{format_table, oracle_observation, OracleProblem, OracleRow};

/// The methods of the quickstart table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickstartMethod {
    /// The exact posterior ε.
    Exact,
    /// SDA: analytic local score k = 2, Algorithm 2, Algorithm 3 with γ = 1e-2.
    Sda,
    /// DPS (ζ = 1) on the same composed prior.
    Dps,
}

/// The quickstart comparison: exact-ε sampler, SDA (k = 2, γ = 1e-2) and DPS (ζ = 1), each
/// with C ∈ `corrections` Langevin corrections (τ = 0.25), on the fixed oracle. Runs are
/// independent and spread over the available cores; each has its own seed, so the table does
/// not depend on the number of threads.
pub fn quickstart(
    samples: usize,
    steps: usize,
    seed: u64,
    corrections: &[usize],
    progress: bool,
) -> Result<Quickstart> {
    use crate::guidance::{Dps, SdaGaussian};
    use crate::sampler::PredictorCorrector;
    use rayon::prelude::*;
    let device = crate::backend::default_device();
    let problem = OracleProblem::new::<DefaultBackend>(oracle_observation(), seed, &device)?;
    let jobs: Vec<(usize, QuickstartMethod)> = corrections
        .iter()
        .flat_map(|&c| {
            [
                QuickstartMethod::Exact,
                QuickstartMethod::Sda,
                QuickstartMethod::Dps,
            ]
            .map(|m| (c, m))
        })
        .collect();
    let bar = crate::progress::Progress::new(
        jobs.len() as u64,
        "oracle",
        "runs",
        "oracle runs [{bar:30}] {pos}/{len}, ETA {eta}",
        progress,
    );
    let rows = jobs
        .par_iter()
        .map(|&(c, method)| {
            let device = crate::backend::default_device();
            let sampler = PredictorCorrector::new(c, 0.25)?;
            let opts = SampleOptions {
                samples,
                steps,
                grid: Default::default(),
                seed: seed.wrapping_add(100 + c as u64),
                progress: false,
            };
            let row = match method {
                QuickstartMethod::Exact => {
                    problem.run_exact::<DefaultBackend>(&sampler, &opts, &device)
                }
                QuickstartMethod::Sda => problem.run_guided::<DefaultBackend, _, _>(
                    TemporalWindow::new(2)?,
                    SdaGaussian::new(1e-2)?,
                    &sampler,
                    &opts,
                    &device,
                ),
                QuickstartMethod::Dps => problem.run_guided::<DefaultBackend, _, _>(
                    TemporalWindow::new(2)?,
                    Dps { zeta: 1.0 },
                    &sampler,
                    &opts,
                    &device,
                ),
            };
            bar.inc(1);
            Ok((c, method, row?))
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish();
    Ok(Quickstart { problem, rows })
}

/// The quickstart's problem and its rows `(C, method, row)`, in table order.
pub struct Quickstart {
    /// The oracle problem (truth, y, exact posterior).
    pub problem: OracleProblem<Pick>,
    /// One row per (C, method).
    pub rows: Vec<(usize, QuickstartMethod, OracleRow)>,
}

impl Quickstart {
    /// The rows alone.
    pub fn table(&self) -> String {
        format_table(self.rows.iter().map(|r| &r.2))
    }

    /// Writes the posterior marginals of the SDA run with the most corrections up to 2 against
    /// the Kalman smoother as a PNG.
    pub fn figure(&self, path: &std::path::Path) -> Result<()> {
        let Some((c, _, row)) = self
            .rows
            .iter()
            .filter(|r| r.1 == QuickstartMethod::Sda && r.0 <= 2)
            .max_by_key(|r| r.0)
        else {
            return Err(Error::Invalid("no SDA run with C ≤ 2 to plot".into()));
        };
        let p = &self.problem;
        let shape = p.shape();
        let pick = &p.observation;
        let std = ObservationModel::<DefaultBackend>::noise_std(pick);
        let observations = pick
            .states()
            .iter()
            .flat_map(|&s| pick.components().iter().map(move |&c| (s, c)))
            .zip(p.y.iter().zip(&std))
            .map(|((s, c), (&v, &sd))| (s, c, v, sd))
            .collect();
        crate::plot::posterior_png(
            path,
            &crate::plot::PosteriorFigure {
                title: format!("Linear-Gaussian oracle: SDA (k = 2, C = {c}) vs Kalman smoother"),
                len: shape.len,
                dim: shape.dim,
                reference_mean: &p.posterior_mean,
                reference_var: &p.posterior_var,
                reference_label: "Kalman-RTS",
                draws: &row.draws.0,
                method_label: "SDA",
                truth: &p.truth,
                observations,
            },
        )
    }
}
