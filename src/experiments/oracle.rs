//! The exact-oracle experiment: SDA on the linear-Gaussian system, compared with the Kalman
//! smoother. This is what `sda quickstart` prints and what the test suite checks.
//!
//! Fixed setup (comparable across implementations): D = 2, `F = 0.95 R(0.3)`, `Q = 0.1 I`,
//! stationary prior, L = 16; component 0 observed at states 0, 5, 10, 15 (the paper's
//! 1, 6, 11, 16) with σ_y = 0.1; 256 steps; γ = 1e-2; τ = 0.25; k = 2.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::backend::{AutodiffBackend, Backend};
use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, SeedableRng};

use crate::backend::{from_host, to_host, DefaultBackend, NoiseSource};
use crate::blanket::{MarkovBlanket, TemporalWindow};
use crate::dynamics::Dynamics;
use crate::guidance::{Guidance, Guided};
use crate::metrics::MomentComparison;
use crate::observe::{linear_matrix, ops::Pick, ObservationModel};
use crate::registry::{
    self, BlanketPlugin, GuidancePlugin, ObservationPlugin, SamplerPlugin, SchedulePlugin,
};
use crate::sampler::{sample, time_grid, PredictorCorrector, SampleOptions, Sampler};
use crate::schedule::{NoiseSchedule, VpCosine};
use crate::score::gaussian::GaussianEpsilon;
use crate::score::{Composed, EpsilonModel};
use crate::systems::linear_gaussian::{split_by_state, LinearGaussian};
use crate::{Error, Result, TrajectoryShape};

/// Trajectory length of the fixed oracle.
pub const ORACLE_LEN: usize = 16;

/// The fixed oracle observation: component 0 at states 0, 5, 10, 15, σ_y = 0.1.
pub fn oracle_observation() -> Pick {
    Pick::new(
        TrajectoryShape::new(ORACLE_LEN, 2),
        vec![0, 5, 10, 15],
        vec![0],
        0.1,
    )
    .expect("fixed oracle observation is valid")
}

/// The largest trajectory size `L·D` an [`OracleProblem`] accepts. Its exact posterior and
/// posterior ε are dense `L·D × L·D` matrices, conditioned and diagonalised in `O((L·D)³)`:
/// at `L·D = 4096` that takes about two minutes and 0.4 GB on 2 cores, and the cost grows
/// eightfold with each doubling.
pub const ORACLE_MAX_DIM: usize = 4096;

/// One oracle problem: a true trajectory, its observation, and the exact posterior.
pub struct OracleProblem<O> {
    /// The linear-Gaussian system.
    pub system: LinearGaussian,
    /// The diffusion schedule (VP cosine, η = 1e-3, unless chosen with
    /// [`OracleProblem::with_schedule`]).
    pub schedule: Arc<dyn NoiseSchedule>,
    /// The observation model (linear).
    pub observation: O,
    /// The trajectory that was observed (flattened, `[L·D]`).
    pub truth: Vec<f64>,
    /// The observation y.
    pub y: Vec<f64>,
    /// Exact posterior marginal means (Kalman–RTS smoother when A acts state by state,
    /// dense conditioning otherwise).
    pub posterior_mean: Vec<f64>,
    /// Exact posterior marginal variances.
    pub posterior_var: Vec<f64>,
    /// Exact posterior ε in closed form (dense conditioning).
    pub posterior_epsilon: GaussianEpsilon,
    /// Flat coordinates that A reads directly (columns of H that are not zero).
    pub observed: Vec<usize>,
}

impl<O> OracleProblem<O> {
    /// Draws the true trajectory and y (seeded) and computes the exact posterior, for the
    /// paper's schedule (VP cosine, η = 1e-3).
    /// Errors if the observation is not linear, not built for D = 2 trajectories, or built for
    /// trajectories larger than [`ORACLE_MAX_DIM`].
    pub fn new<B: AutodiffBackend>(observation: O, seed: u64, device: &B::Device) -> Result<Self>
    where
        O: ObservationModel<B>,
    {
        Self::with_schedule::<B>(observation, Arc::new(VpCosine::default()), seed, device)
    }

    /// [`OracleProblem::new`] with another diffusion schedule: the analytic local score, the
    /// exact posterior ε and the samplers all follow `schedule`'s μ(t), σ(t). The exact
    /// posterior itself does not depend on it.
    pub fn with_schedule<B: AutodiffBackend>(
        observation: O,
        schedule: Arc<dyn NoiseSchedule>,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self>
    where
        O: ObservationModel<B>,
    {
        let shape = observation.trajectory_shape();
        let system = LinearGaussian::oracle();
        if shape.dim != system.state_dim() {
            return Err(Error::Shape(format!(
                "the oracle has states of dimension {}, the observation expects {}",
                system.state_dim(),
                shape.dim
            )));
        }
        if shape.len * shape.dim > ORACLE_MAX_DIM {
            return Err(Error::Invalid(format!(
                "the oracle's exact posterior is dense in the L·D = {}·{} = {} trajectory \
                 values; it is meant for small problems (L·D ≤ {ORACLE_MAX_DIM}, so \
                 L ≤ {} here)",
                shape.len,
                shape.dim,
                shape.len * shape.dim,
                ORACLE_MAX_DIM / shape.dim
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let truth = system.trajectory(shape.len, 0, &mut rng);
        let mut noise = NoiseSource::new(seed.wrapping_add(1));
        let y = to_host(observation.sample(
            from_host::<B, 3>(&truth, [1, shape.len, shape.dim], device),
            &mut noise,
        ));
        let h = linear_matrix::<B>(&observation, device)?;
        let std = observation.noise_std();
        let (mean, cov) = system.posterior(shape.len, &h, &std, &y)?;
        let (posterior_mean, posterior_var) = match split_by_state(&h, &std, &y, shape) {
            Ok(obs) => {
                let (m, c) = system.kalman_smoother(shape.len, &obs)?;
                (
                    m.iter().flat_map(|v| v.iter().copied()).collect(),
                    c.iter()
                        .flat_map(|c| c.diagonal().iter().copied().collect::<Vec<_>>())
                        .collect(),
                )
            }
            Err(_) => (mean.as_slice().to_vec(), cov.diagonal().as_slice().to_vec()),
        };
        let observed = (0..h.ncols())
            .filter(|&j| h.column(j).iter().any(|v| *v != 0.0))
            .collect();
        Ok(Self {
            posterior_epsilon: GaussianEpsilon::new(shape, mean, cov, schedule.clone())?,
            system,
            schedule,
            observation,
            truth,
            y,
            posterior_mean,
            posterior_var,
            observed,
        })
    }

    /// The trajectory shape.
    pub fn shape(&self) -> TrajectoryShape {
        self.posterior_epsilon.shape()
    }

    /// Samples the posterior with the **exact** posterior ε (no approximation but the
    /// sampler's) and compares with the exact posterior.
    pub fn run_exact<B: AutodiffBackend>(
        &self,
        sampler: &dyn Sampler<B>,
        opts: &SampleOptions,
        device: &B::Device,
    ) -> Result<OracleRow> {
        let start = Instant::now();
        let (x, report) = sample(&self.posterior_epsilon, sampler, self.shape(), opts, device)?;
        self.row(
            "exact posterior ε",
            sampler.describe(),
            x,
            report.evaluations,
            start,
        )
    }

    /// Samples the posterior with SDA: the analytic local score of a `(2k+1)`-state window,
    /// composed by `blanket` (Algorithm 2), guided by `guidance` (Algorithm 3 or DPS).
    pub fn run_guided<B, M, G>(
        &self,
        blanket: M,
        guidance: G,
        sampler: &dyn Sampler<B>,
        opts: &SampleOptions,
        device: &B::Device,
    ) -> Result<OracleRow>
    where
        B: AutodiffBackend,
        M: MarkovBlanket<B>,
        G: Guidance<B>,
        O: ObservationModel<B>,
    {
        let start = Instant::now();
        let label = format!("{} + {}", guidance.describe(), blanket.describe());
        let posterior = self.guided_epsilon(blanket, guidance, device)?;
        let (x, report) = sample(&posterior, sampler, self.shape(), opts, device)?;
        self.row(&label, sampler.describe(), x, report.evaluations, start)
    }

    /// SDA's approximate posterior ε: the analytic local score of a `(2k+1)`-state window,
    /// composed by `blanket` (Algorithm 2) and guided by `guidance` (Algorithm 3 or DPS).
    pub fn guided_epsilon<'a, B, M, G>(
        &'a self,
        blanket: M,
        guidance: G,
        device: &B::Device,
    ) -> Result<Guided<B, Composed<GaussianEpsilon, M>, &'a O, G>>
    where
        B: AutodiffBackend,
        M: MarkovBlanket<B>,
        G: Guidance<B>,
        O: ObservationModel<B>,
    {
        let w = blanket.window();
        if w % 2 == 0 {
            return Err(Error::Invalid(format!("window of {w} states is not 2k+1")));
        }
        let local = self
            .system
            .window_epsilon((w - 1) / 2, self.schedule.clone())?;
        let prior = Composed::new::<B>(local, blanket)?;
        Guided::new(prior, &self.observation, &self.y, guidance, device)
    }

    fn row<B: AutodiffBackend>(
        &self,
        method: &str,
        sampler: String,
        x: burn::tensor::Tensor<B, 3>,
        evaluations: usize,
        start: Instant,
    ) -> Result<OracleRow> {
        let n = x.dims()[0];
        let draws = to_host(x);
        let cmp = MomentComparison::new(&draws, &self.posterior_mean, &self.posterior_var)?;
        let (var_min, var_max) = cmp.variance_ratio_range(None);
        let (obs_min, obs_max) = cmp.variance_ratio_range(Some(&self.observed));
        Ok(OracleRow {
            method: method.to_string(),
            sampler,
            samples: n,
            max_mean_error: cmp.max_mean_error(),
            var_ratio_min: var_min,
            var_ratio_max: var_max,
            var_ratio_observed: (obs_min, obs_max),
            evaluations,
            seconds: start.elapsed().as_secs_f64(),
            draws: Draws(draws),
        })
    }
}

/// The largest trajectory size `L·D` [`sampler_law`] accepts: it takes each step on `L·D + 2`
/// points and multiplies dense `L·D × L·D` matrices at every step.
pub const SAMPLER_LAW_MAX_DIM: usize = 2048;

/// The exact law of deterministic DDIM samples (Algorithm 4's predictor alone, C = 0): the
/// [`sampler_law`] of [`PredictorCorrector::ddim`]. For a noise model `eps` that is **affine**
/// in `x(t)` — the exact Gaussian ε, Algorithm 2's composition of it, and SDA guidance
/// (Algorithm 3) with a linear A all are — each step `x ← r x + c (E_t x + f_t)` is affine,
/// so the samples are exactly Gaussian. This separates a method's bias, noise-free, from what
/// sampling adds to it: the law is what infinitely many DDIM samples would give.
pub fn ddim_law<B: Backend>(
    eps: &dyn EpsilonModel<B>,
    shape: TrajectoryShape,
    steps: usize,
    device: &B::Device,
) -> Result<(DVector<f64>, DMatrix<f64>)> {
    sampler_law(eps, &PredictorCorrector::ddim(), shape, steps, device)
}

/// The exact law of the samples of any **deterministic** `sampler` whose step is affine in
/// `x(t)` — DDIM, or a higher-order ODE solver, with an affine `eps` (see [`ddim_law`]) — on
/// [`sample`]'s time grid from `x(1) ~ N(0, I)`: each step `x ← M_s x + b_s` maps the mean and
/// covariance as `m ← M_s m + b_s`, `P ← M_s P M_sᵀ`, from `m = 0`, `P = I`.
///
/// `M_s` and `b_s` are read off the step itself, taken on 0 and on the `L·D` unit vectors (one
/// batch); the same batch holds one more point at which affinity is checked (to 1e-3 of the
/// step's move, above float rounding), so a step that is not affine (DPS's ε, Langevin
/// corrections, any injected noise) is an error rather than a wrong law.
pub fn sampler_law<B: Backend>(
    eps: &dyn EpsilonModel<B>,
    sampler: &dyn Sampler<B>,
    shape: TrajectoryShape,
    steps: usize,
    device: &B::Device,
) -> Result<(DVector<f64>, DMatrix<f64>)> {
    if steps == 0 {
        return Err(Error::Invalid("the sampler law needs steps ≥ 1".into()));
    }
    let p = shape.len * shape.dim;
    if p > SAMPLER_LAW_MAX_DIM {
        return Err(Error::Invalid(format!(
            "the sampler law propagates a dense {p}×{p} covariance; it is meant for small \
             problems (L·D ≤ {SAMPLER_LAW_MAX_DIM})"
        )));
    }
    eps.check_shape(shape.len, shape.dim)?;
    // probe rows (row-major): 0, the unit vectors, then a spread-out check point
    let check: Vec<f64> = (0..p).map(|j| ((j + 1) as f64 * 0.7).sin()).collect();
    let mut probes = vec![0.0; (p + 2) * p];
    for j in 0..p {
        probes[(j + 1) * p + j] = 1.0;
    }
    probes[(p + 1) * p..].copy_from_slice(&check);
    let probes = from_host::<B, 3>(&probes, [p + 2, shape.len, shape.dim], device);
    let check_point = DVector::from_column_slice(&check);
    let mut noise = NoiseSource::new(0);
    let mut mean = DVector::zeros(p);
    let mut cov = DMatrix::identity(p, p);
    for (t, t_next) in time_grid(steps) {
        let next = to_host(sampler.step(eps, probes.clone(), t, t_next, &mut noise));
        if next.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "the sampler law needs a deterministic step affine in x(t); at t = {t:.4} the \
                 step of {} is not finite at the probe points (0 and the unit vectors)",
                sampler.describe()
            )));
        }
        let next = DMatrix::from_row_slice(p + 2, p, &next);
        let b = next.row(0).transpose();
        let mut m = DMatrix::zeros(p, p);
        for j in 0..p {
            m.set_column(j, &(next.row(j + 1).transpose() - &b));
        }
        let predicted = &m * &check_point + &b;
        let actual = next.row(p + 1).transpose();
        // relative to the size of the step's move, which is small with many steps (a step
        // near the identity would hide a non-affine ε: its increment is c·ε with c ≈
        // 1/steps), above the float rounding of the step's output
        let moved = (&actual - &check_point).amax().max(b.amax());
        let rounding = 1e-5 * actual.amax().max(1.0);
        let off = (&predicted - &actual).amax();
        if off > 1e-3 * moved + rounding {
            return Err(Error::Invalid(format!(
                "the sampler law needs a deterministic step affine in x(t) (an affine ε and no \
                 injected noise); at t = {t:.4} the step of {} is not (off by {off:.3e} at a \
                 check point)",
                sampler.describe(),
            )));
        }
        mean = &m * mean + b;
        cov = &m * cov * m.transpose();
    }
    Ok((mean, cov))
}

/// One line of the oracle table.
#[derive(Debug, Clone)]
pub struct OracleRow {
    /// Which ε: exact posterior, or guidance + blanket.
    pub method: String,
    /// Which sampler.
    pub sampler: String,
    /// Number of samples.
    pub samples: usize,
    /// `max_j |mean_j − m_j| / std_j` over all states and components.
    pub max_mean_error: f64,
    /// Smallest variance ratio over all coordinates.
    pub var_ratio_min: f64,
    /// Largest variance ratio over all coordinates.
    pub var_ratio_max: f64,
    /// (min, max) variance ratio over the observed coordinates.
    pub var_ratio_observed: (f64, f64),
    /// ε evaluations.
    pub evaluations: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The samples themselves (`N × L·D`, row-major).
    pub draws: Draws,
}

/// Posterior samples on the host; `Debug` prints only their count.
#[derive(Clone, Default)]
pub struct Draws(pub Vec<f64>);

impl std::fmt::Debug for Draws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Draws({} values)", self.0.len())
    }
}

/// Formats rows as a markdown table.
pub fn format_table<'a>(rows: impl IntoIterator<Item = &'a OracleRow>) -> String {
    use crate::experiments::markdown::row;
    let mut s = String::from(
        "| ε | sampler | N | max \\|Δmean\\|/std | var ratio min | var ratio max | var ratio observed \
         | ε evals | s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &row(&[
            r.method.clone(),
            r.sampler.clone(),
            r.samples.to_string(),
            format!("{:.3}", r.max_mean_error),
            format!("{:.3}", r.var_ratio_min),
            format!("{:.3}", r.var_ratio_max),
            format!(
                "{:.3}–{:.3}",
                r.var_ratio_observed.0, r.var_ratio_observed.1
            ),
            r.evaluations.to_string(),
            format!("{:.1}", r.seconds),
        ]);
    }
    s
}

/// One oracle run with every component chosen **by registered name** (what `sda oracle` runs).
#[derive(Debug, Clone)]
pub struct NamedRun {
    /// Observation plugin name and its parameters.
    pub observation: (String, toml::Value),
    /// Guidance plugin name and parameters; `None` samples with the exact posterior ε.
    pub guidance: Option<(String, toml::Value)>,
    /// Blanket plugin name and parameters.
    pub blanket: (String, toml::Value),
    /// Schedule plugin name and parameters (`vp-cosine` is the paper's).
    pub schedule: (String, toml::Value),
    /// Sampler plugin name and parameters.
    pub sampler: (String, toml::Value),
    /// Trajectory length L.
    pub len: usize,
    /// Sampling options.
    pub options: SampleOptions,
    /// Seed of the true trajectory and of y.
    pub problem_seed: u64,
}

/// Runs a [`NamedRun`] on [`DefaultBackend`].
pub fn run_named(run: &NamedRun) -> Result<OracleRow> {
    let device = crate::backend::default_device();
    let shape = TrajectoryShape::new(run.len, 2);
    let (o, s, sc) = (&run.observation, &run.sampler, &run.schedule);
    let observation = registry::build_for::<ObservationPlugin>(&o.0, &o.1, shape)?;
    let sampler = registry::build::<SamplerPlugin>(&s.0, &s.1)?;
    let schedule = registry::build::<SchedulePlugin>(&sc.0, &sc.1)?;
    let problem = OracleProblem::with_schedule::<DefaultBackend>(
        observation,
        schedule,
        run.problem_seed,
        &device,
    )?;
    match &run.guidance {
        None => problem.run_exact(sampler.as_ref(), &run.options, &device),
        Some((name, p)) => {
            let guidance = registry::build::<GuidancePlugin>(name, p)?;
            let blanket = registry::build::<BlanketPlugin>(&run.blanket.0, &run.blanket.1)?;
            problem.run_guided(blanket, guidance, sampler.as_ref(), &run.options, &device)
        }
    }
}

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
