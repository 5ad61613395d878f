//! The exact-oracle experiment: SDA on the linear-Gaussian system, compared with the Kalman
//! smoother. This is what `sda quickstart` prints and what the test suite checks.
//!
//! Fixed setup (comparable across implementations): D = 2, `F = 0.95 R(0.3)`, `Q = 0.1 I`,
//! stationary prior, L = 16; component 0 observed at states 0, 5, 10, 15 (the paper's
//! 1, 6, 11, 16) with σ_y = 0.1; 256 steps; γ = 1e-2; τ = 0.25; k = 2.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use rand::{rngs::StdRng, SeedableRng};

mod law;
mod quickstart;

pub use law::{ddim_law, sampler_law, SAMPLER_LAW_MAX_DIM};
pub use quickstart::{quickstart, Quickstart, QuickstartMethod};

use crate::backend::{from_host, to_host, DefaultBackend, NoiseSource};
use crate::blanket::MarkovBlanket;
use crate::dynamics::Dynamics;
use crate::guidance::{Guidance, Guided};
use crate::metrics::MomentComparison;
use crate::observe::{linear_matrix, ops::Pick, ObservationModel};
use crate::registry::{
    self, BlanketPlugin, GuidancePlugin, ObservationPlugin, SamplerPlugin, SchedulePlugin,
};
use crate::sampler::{sample, SampleOptions, SampleReport, Sampler};
use crate::schedule::{NoiseSchedule, VpCosine};
use crate::score::gaussian::GaussianEpsilon;
use crate::score::Composed;
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
        Self::with_system::<B>(
            LinearGaussian::oracle(),
            observation,
            schedule,
            seed,
            device,
        )
    }

    /// [`OracleProblem::with_schedule`] on another linear-Gaussian `system` (e.g. the ring
    /// chain [`LinearGaussian::ring`] of the space–time blanket's check). Errors as
    /// [`OracleProblem::new`], the state dimension being the system's.
    pub fn with_system<B: AutodiffBackend>(
        system: LinearGaussian,
        observation: O,
        schedule: Arc<dyn NoiseSchedule>,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self>
    where
        O: ObservationModel<B>,
    {
        let shape = observation.trajectory_shape();
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
        self.sample_row(
            "exact posterior ε",
            &self.posterior_epsilon,
            sampler,
            opts,
            device,
        )
    }

    /// Samples `eps` with `sampler` and compares with the exact posterior.
    fn sample_row<B: AutodiffBackend>(
        &self,
        label: &str,
        eps: &dyn crate::score::EpsilonModel<B>,
        sampler: &dyn Sampler<B>,
        opts: &SampleOptions,
        device: &B::Device,
    ) -> Result<OracleRow> {
        let start = Instant::now();
        let (x, report) = sample(eps, sampler, self.shape(), opts, device)?;
        self.row(label, sampler.describe(), x, &report, start)
    }

    /// Samples the posterior with the **exact prior** ε of the whole trajectory (the
    /// linear-Gaussian chain's, in closed form) guided by `guidance`: what remains against the
    /// exact posterior is the guidance's approximation and the sampler's error, without
    /// Algorithm 2's.
    pub fn run_guided_exact_prior<B, G>(
        &self,
        guidance: G,
        sampler: &dyn Sampler<B>,
        opts: &SampleOptions,
        device: &B::Device,
    ) -> Result<OracleRow>
    where
        B: AutodiffBackend,
        G: Guidance<B>,
        O: ObservationModel<B>,
    {
        let label = format!("{} + exact prior", guidance.describe());
        let prior = self
            .system
            .prior_epsilon(self.shape().len, self.schedule.clone())?;
        let posterior = Guided::new(prior, &self.observation, &self.y, guidance, device)?;
        self.sample_row(&label, &posterior, sampler, opts, device)
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
        let label = format!("{} + {}", guidance.describe(), blanket.describe());
        let posterior = self.guided_epsilon(blanket, guidance, device)?;
        self.sample_row(&label, &posterior, sampler, opts, device)
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
        self.guided_local_epsilon(local, blanket, guidance, device)
    }

    /// [`OracleProblem::guided_epsilon`] with a given analytic local score, e.g. the marginal
    /// of a space–time patch ([`LinearGaussian::marginal_epsilon`]) for a
    /// [`crate::blanket::SpaceTimeWindow`].
    pub fn guided_local_epsilon<'a, B, M, G>(
        &'a self,
        local: GaussianEpsilon,
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
        let prior = Composed::new::<B>(local, blanket)?;
        Guided::new(prior, &self.observation, &self.y, guidance, device)
    }

    fn row<B: AutodiffBackend>(
        &self,
        method: &str,
        sampler: String,
        x: burn::tensor::Tensor<B, 3>,
        report: &SampleReport,
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
            evaluations: report.evaluations,
            passes: report.passes_per_sample(),
            seconds: start.elapsed().as_secs_f64(),
            draws: Draws(draws),
        })
    }
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
    /// Network forwards and VJPs per sample.
    pub passes: (f64, f64),
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
        "| ε | sampler | N | largest mean error / std | var ratio min | var ratio max | var ratio \
         observed | ε evals | forwards + VJPs per sample | s |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
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
            format!("{:.0} + {:.0}", r.passes.0, r.passes.1),
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
    /// The prior ε the guidance is applied to.
    pub prior: OraclePrior,
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

/// The prior ε of a guided oracle run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OraclePrior {
    /// The exact prior ε of the whole trajectory (closed form).
    Exact,
    /// The analytic local score of a `2k+1`-state window composed by the blanket
    /// (Algorithm 2): what SDA samples with a trained network in its place.
    #[default]
    Composed,
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
            match run.prior {
                OraclePrior::Exact => problem.run_guided_exact_prior(
                    guidance,
                    sampler.as_ref(),
                    &run.options,
                    &device,
                ),
                OraclePrior::Composed => {
                    let (name, p) = &run.blanket;
                    let blanket = registry::build::<BlanketPlugin>(name, p)?;
                    problem.run_guided(blanket, guidance, sampler.as_ref(), &run.options, &device)
                }
            }
        }
    }
}
