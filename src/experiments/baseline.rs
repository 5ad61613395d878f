//! Twin experiments of the classical methods on named, published setups (DAPPER's
//! `mods/Lorenz96/sakov2008.py`, after Sakov & Oke 2008): the truth is simulated from the
//! setup's initial law, observed with Gaussian noise, and a registered method
//! ([`crate::methods`]) is cycled over it; the scores are averaged over the analysis times after
//! the burn-in, as DAPPER's `rmse.a` and `rmv.a` are.
//!
//! | setup | model | observed | burn-in |
//! |---|---|---|---|
//! | `sakov2008` | Lorenz-96, n = 40, F = 8, Δt = 0.05 | every site every step, R = I | 20 time units |
//! | `sakov2008-dto4` | the same | every site every 4th step (Δt_obs = 0.2), R = I | 20 time units |

use std::time::Instant;

use nalgebra::DMatrix;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::dynamics::Dynamics;
use crate::methods::scores::{summarise, Scores};
use crate::methods::{
    assimilate, ArctanSites, CycleScores, GaussianObservation, PartialIdentity, Prior,
    SiteOperator, Twin,
};
use crate::registry::{self, parse_params, MethodPlugin, SystemPlugin};
use crate::{Error, Result};

/// A named, published twin-experiment setup.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Its name (`--setup`).
    pub name: &'static str,
    /// The registered system and its parameters.
    pub system: (&'static str, &'static str),
    /// Model steps between observations.
    pub every: usize,
    /// Observe every `sites`-th site.
    pub sites: usize,
    /// Observation noise standard deviation.
    pub sigma: f64,
    /// Time excluded from the averages.
    pub burn_in: f64,
    /// Observation cycles by default.
    pub cycles: usize,
    /// Variance of the initial law `N(e_0, var I)` (truth and methods alike).
    pub initial_var: f64,
    /// Methods whose published tuning on this setup is their default here: (method, params).
    pub tuned: &'static [(&'static str, &'static str)],
    /// What the observed sites go through (identity, or arctan).
    pub operator: SiteOperator,
}

/// The named setups.
pub const SETUPS: &[Setup] = &[
    Setup {
        name: "sakov2008",
        system: ("lorenz96", "n = 40, forcing = 8.0, dt = 0.05"),
        every: 1,
        sites: 1,
        sigma: 1.0,
        burn_in: 20.0,
        cycles: 10_000,
        initial_var: 0.001,
        tuned: &[("var3d", "background = 0.02")],
        operator: SiteOperator::Identity,
    },
    Setup {
        name: "sakov2008-dto4",
        system: ("lorenz96", "n = 40, forcing = 8.0, dt = 0.05"),
        every: 4,
        sites: 1,
        sigma: 1.0,
        burn_in: 20.0,
        cycles: 10_000,
        initial_var: 0.001,
        // the published 4D-Var figures (Bocquet & Sakov 2013, as DAPPER lists them) scale B = I
        tuned: &[("var4d", "covariance = \"identity\"")],
        operator: SiteOperator::Identity,
    },
];

/// `--observe`: the observation of a setup changed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Observe {
    sites: Option<usize>,
    every: Option<usize>,
    sigma: Option<f64>,
    operator: Option<SiteOperator>,
}

impl Setup {
    /// This setup observed as `observe` says (a TOML inline table of `sites`, `every`, `sigma`,
    /// `operator = "identity" | "arctan"`; empty keeps the setup's). The stride in sites is checked against the state when the
    /// observation is built; `every` must be ≥ 1.
    pub fn observing(&self, observe: &str) -> Result<Self> {
        let o: Observe = registry::params(&parse_params(observe)?)
            .map_err(|e| Error::Invalid(format!("--observe '{observe}': {e}")))?;
        if o.every == Some(0) {
            return Err(Error::Invalid(
                "--observe: every (model steps between observations) must be at least 1".into(),
            ));
        }
        Ok(Self {
            sites: o.sites.unwrap_or(self.sites),
            every: o.every.unwrap_or(self.every),
            sigma: o.sigma.unwrap_or(self.sigma),
            operator: o.operator.unwrap_or(self.operator),
            ..*self
        })
    }

    /// The setup named `name`, or an error listing them.
    pub fn named(name: &str) -> Result<Self> {
        SETUPS
            .iter()
            .find(|s| s.name == name)
            .copied()
            .ok_or_else(|| Error::UnknownPlugin {
                kind: "setup",
                name: name.into(),
                known: SETUPS.iter().map(|s| s.name.to_string()).collect(),
            })
    }

    /// The parameters of `method` on this setup: its published tuning, if any, under `given`.
    pub fn method_params(&self, method: &str, given: &str) -> Result<toml::Value> {
        let mut params = parse_params(
            self.tuned
                .iter()
                .find(|t| t.0 == method)
                .map_or("", |t| t.1),
        )?;
        let given = parse_params(given)?;
        if let (Some(base), toml::Value::Table(over)) = (params.as_table_mut(), given) {
            base.extend(over);
        }
        Ok(params)
    }
}

/// What a twin run produced: per-cycle scores and their averages after the burn-in.
#[derive(Debug, Clone)]
pub struct BaselineRun {
    /// The setup's name.
    pub setup: String,
    /// The method with its settings.
    pub method: String,
    /// Scores at every observation time.
    pub cycles: Vec<CycleScores>,
    /// Mean analysis scores after the burn-in (rank histogram summed).
    pub analysis: Scores,
    /// Mean forecast scores after the burn-in.
    pub forecast: Scores,
    /// A smoother's mean smoothed scores after the burn-in (the cycles it finished).
    pub smoothed: Option<Scores>,
    /// Analysis times averaged.
    pub averaged: usize,
    /// Of those, the analysis times whose RMSE exceeds the climatological spread (the error of
    /// knowing nothing) and three times the method's own spread (it believes itself close): the
    /// filter lost track of the truth there. With the model step of the first.
    pub lost: (usize, Option<usize>),
    /// The climatological spread `sqrt(mean_i C_ii)`.
    pub climate_spread: f64,
    /// Wall-clock seconds of the cycling (not the truth simulation).
    pub seconds: f64,
    /// Time between model steps.
    pub dt: f64,
}

/// What a twin run of a setup is asked for.
#[derive(Debug, Clone, Default)]
pub struct BaselineOptions {
    /// The registered method.
    pub method: String,
    /// Its parameters (a TOML inline table), over the setup's published tuning.
    pub params: String,
    /// System parameters over the setup's (e.g. `n = 1024` for a larger ring).
    pub system_params: String,
    /// The observation over the setup's, as a TOML inline table: `sites` (every how many
    /// sites), `every` (every how many model steps), `sigma`.
    pub observe: String,
    /// Observation cycles.
    pub cycles: usize,
    /// Seed of the truth and the observations; the method draws from `seed + 1`.
    pub seed: u64,
}

/// A twin experiment of `setup`: the truth and the observations from the seed, then the method
/// cycled over them with its own random stream.
pub fn run(
    setup: &Setup,
    options: &BaselineOptions,
    progress: impl FnMut(usize),
) -> Result<BaselineRun> {
    let (method, cycles, seed) = (options.method.as_str(), options.cycles, options.seed);
    let mut system = parse_params(setup.system.1)?;
    if let (Some(base), toml::Value::Table(over)) =
        (system.as_table_mut(), parse_params(&options.system_params)?)
    {
        base.extend(over);
    }
    let model = registry::build::<SystemPlugin>(setup.system.0, &system)?;
    let setup = &setup.observing(&options.observe)?;
    let params = setup.method_params(method, &options.params)?;
    let mut filter = registry::build::<MethodPlugin>(method, &params)?;
    let n = model.state_dim();
    let dt = model.state_info().dt.unwrap_or(1.0);
    let sites = PartialIdentity::every(n, setup.sites, setup.sigma)?;
    let observation: Box<dyn GaussianObservation> = match setup.operator {
        SiteOperator::Identity => Box::new(sites),
        SiteOperator::Arctan => Box::new(ArctanSites::new(sites)),
    };
    let steps = cycles
        .checked_mul(setup.every)
        .filter(|s| (1..=100_000_000).contains(s))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--cycles {cycles} × {} steps per cycle must be between 1 and 1e8 model steps",
                setup.every
            ))
        })?;
    crate::resources::check_memory(
        "the truth and observations",
        (steps as u128 + 1).checked_mul((n + observation.len()) as u128 * 8),
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x0 = vec![0.0; n];
    x0[0] = 1.0;
    let (truth, observations) = simulate(
        model.as_ref(),
        observation.as_ref(),
        &x0,
        setup.initial_var,
        steps,
        setup.every,
        &mut rng,
    )?;
    let prior = climatology(&truth, x0, setup.initial_var);
    let twin = Twin {
        model: model.as_ref(),
        observation: observation.as_ref(),
        truth: &truth,
        observations: &observations,
        prior: &prior,
    };
    let mut method_rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(1));
    let start = Instant::now();
    let scores = assimilate(filter.as_mut(), &twin, &mut method_rng, progress)?;
    let seconds = start.elapsed().as_secs_f64();
    let kept: Vec<&CycleScores> = scores
        .iter()
        .filter(|c| c.step as f64 * dt > setup.burn_in)
        .collect();
    if kept.is_empty() {
        return Err(Error::Invalid(format!(
            "--cycles {cycles} ends before the burn-in of {} time units: nothing to average",
            setup.burn_in
        )));
    }
    let climate_spread = (prior.climate_cov.trace() / n as f64).sqrt();
    let lost: Vec<usize> = kept
        .iter()
        .filter(|c| c.analysis.rmse > climate_spread && c.analysis.rmse > 3.0 * c.analysis.spread)
        .map(|c| c.step)
        .collect();
    Ok(BaselineRun {
        lost: (lost.len(), lost.first().copied()),
        climate_spread,
        setup: setup.name.into(),
        method: filter.describe(),
        analysis: summarise(kept.iter().map(|c| &c.analysis)),
        forecast: summarise(kept.iter().map(|c| &c.forecast)),
        smoothed: kept
            .iter()
            .any(|c| c.smoothed.is_some())
            .then(|| summarise(kept.iter().filter_map(|c| c.smoothed.as_ref()))),
        averaged: kept.len(),
        cycles: scores,
        seconds,
        dt,
    })
}

/// The truth `x_0 … x_K` from `N(x0, var I)` and `y_k = H x_k + N(0, R)` every `every` steps.
type Simulated = (Vec<Vec<f64>>, Vec<Option<Vec<f64>>>);

fn simulate(
    model: &dyn Dynamics,
    observation: &dyn GaussianObservation,
    x0: &[f64],
    var: f64,
    steps: usize,
    every: usize,
    rng: &mut dyn RngCore,
) -> Result<Simulated> {
    let sd = var.sqrt();
    let mut x: Vec<f64> = x0
        .iter()
        .map(|m| {
            let z: f64 = StandardNormal.sample(&mut *rng);
            m + sd * z
        })
        .collect();
    let mut truth = Vec::with_capacity(steps + 1);
    let mut observations = Vec::with_capacity(steps + 1);
    truth.push(x.clone());
    observations.push(None);
    for k in 1..=steps {
        x = model.step(&x, rng);
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(format!(
                "the true trajectory left the finite numbers at step {k}"
            )));
        }
        let y = (k % every == 0).then(|| {
            observation
                .observe(&x)
                .iter()
                .zip(observation.sigma())
                .map(|(h, s)| {
                    let z: f64 = StandardNormal.sample(&mut *rng);
                    h + s * z
                })
                .collect()
        });
        truth.push(x.clone());
        observations.push(y);
    }
    Ok((truth, observations))
}

/// The initial law and the climatology of the truth (its mean and covariance over all times),
/// as DAPPER estimates it.
fn climatology(truth: &[Vec<f64>], x0: Vec<f64>, var: f64) -> Prior {
    let (k, n) = (truth.len(), truth[0].len());
    let data = DMatrix::from_fn(n, k, |i, j| truth[j][i]);
    let mean = data.column_mean();
    let mut centred = data;
    for mut col in centred.column_iter_mut() {
        col -= &mean;
    }
    let cov = &centred * centred.transpose() / (k as f64 - 1.0).max(1.0);
    Prior {
        mean: x0,
        var,
        climate_mean: mean.as_slice().to_vec(),
        climate_cov: cov,
    }
}

/// The row `sda baseline` prints and `--json` writes.
pub fn summary_json(run: &BaselineRun, cycles: usize, seed: u64) -> serde_json::Value {
    let a = &run.analysis;
    serde_json::json!({
        "setup": run.setup,
        "method": run.method,
        "cycles": cycles,
        "seed": seed,
        "averaged_cycles": run.averaged,
        "lost_track_cycles": run.lost.0,
        "rmse_a": a.rmse,
        "spread_a": a.spread,
        "spread_over_rmse_a": a.spread / a.rmse,
        "rmse_f": run.forecast.rmse,
        "spread_f": run.forecast.spread,
        "crps_a": a.crps,
        "rmse_s": run.smoothed.as_ref().map(|s| s.rmse),
        "spread_s": run.smoothed.as_ref().map(|s| s.spread),
        "coverage90_a": a.coverage90,
        "rank_histogram_a": a.ranks,
        "seconds": run.seconds,
        "ms_per_cycle": 1e3 * run.seconds / run.cycles.len().max(1) as f64,
    })
}

/// The columns of the per-cycle scores: model step, time, then forecast and analysis RMSE,
/// spread, CRPS and 90% coverage.
pub const CYCLE_COLUMNS: [&str; 10] = [
    "step",
    "time",
    "rmse_f",
    "spread_f",
    "crps_f",
    "coverage90_f",
    "rmse_a",
    "spread_a",
    "crps_a",
    "coverage90_a",
];

fn cycle_values(run: &BaselineRun) -> impl Iterator<Item = [f64; 10]> + '_ {
    run.cycles.iter().map(|c| {
        let (f, a) = (&c.forecast, &c.analysis);
        [
            c.step as f64,
            c.step as f64 * run.dt,
            f.rmse,
            f.spread,
            f.crps,
            f.coverage90,
            a.rmse,
            a.spread,
            a.crps,
            a.coverage90,
        ]
    })
}

/// The per-cycle scores as CSV, columns [`CYCLE_COLUMNS`].
pub fn cycles_csv(run: &BaselineRun) -> String {
    let mut s = CYCLE_COLUMNS.join(",") + "\n";
    for v in cycle_values(run) {
        let line: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        s += &(line.join(",") + "\n");
    }
    s
}

/// The per-cycle scores as a `[cycles, 10]` array (NumPy `float32`), columns [`CYCLE_COLUMNS`].
pub fn cycles_array(run: &BaselineRun) -> crate::data::Array {
    crate::data::Array {
        shape: vec![run.cycles.len(), CYCLE_COLUMNS.len()],
        data: cycle_values(run).flatten().map(|x| x as f32).collect(),
    }
}
