//! Classical data-assimilation methods, the baselines SDA is compared against: objects
//! separate from the model, as DAPPER's `xp.assimilate(HMM, xx, yy)` (Raanes et al.). A
//! [`Filter`] is cycled by [`assimilate`] over a twin experiment: the model forecasts its
//! estimate to the next time, and at each observation time the analysis updates it with
//! `y = H(x) + N(0, R)`.
//!
//! - [`ensemble`]: the ensemble Kalman filters of Sakov & Oke (2008) — the stochastic EnKF with
//!   perturbed observations (Burgers et al. 1998), the ETKF (symmetric square root, Bishop et
//!   al. 2001; Hunt et al. 2007) with an optional mean-preserving random rotation, the DEnKF
//!   (Sakov & Oke 2008) — each with multiplicative inflation.
//! - [`enks`]: the ensemble Kalman smoother (Evensen & van Leeuwen 2000) over a lag of
//!   observation cycles, with any of the global analyses.
//! - [`ensf`]: the Ensemble Score Filter (Bao, Zhang & Zhang 2024), a training-free diffusion
//!   filter whose prior score comes from the forecast ensemble.
//! - [`letkf`]: the local ETKF (Hunt et al. 2007) with Gaspari–Cohn localisation on a periodic
//!   1-D domain, its local analyses in parallel.
//! - [`letks`]: the local ensemble transform Kalman smoother over a window (the LETKF's
//!   weights applied to the earlier states; Kalnay & Yang 2010).
//! - [`mod@reference`]: the lower bounds — climatology and 3D-Var (Kalman analysis with a fixed
//!   background covariance, a multiple of the climatological one).
//! - [`var4d`]: strong-constraint 4D-Var over sliding windows (L-BFGS from `argmin`, the
//!   gradient by the model's adjoint).
//! - [`var4d_weak`]: weak-constraint 4D-Var over one window, the model's noise allowed, with
//!   its Laplace (Gauss–Newton) posterior.
//! - [`window`]: the classical methods as samplers of one window's trajectories given its
//!   observations ([`window::WindowSmoother`]), scored beside SDA and the particle filter;
//!   [`window_filter`] runs any ensemble filter through a window the same way.
//! - [`scores`]: RMSE, spread, CRPS, rank histogram and coverage of an estimate against the truth.
//!
//! Simulation here is plain `f64` (nalgebra for the small dense algebra); the observation is a
//! [`GaussianObservation`] on the host.

use nalgebra::DMatrix;
use rand::RngCore;

use crate::dynamics::Dynamics;
use crate::{Error, Result};

pub mod enks;
pub mod ensemble;
pub mod ensf;
pub mod letkf;
pub mod letks;
pub mod reference;
pub mod scores;
pub mod var4d;
pub mod var4d_weak;
pub mod window;
pub mod window_filter;

pub use scores::Scores;

/// An observation with Gaussian noise, on the host: `y = H(x) + η`, `η ~ N(0, diag(σ²))`.
/// The classical methods see only this; the Kalman-type analyses linearise `H` with
/// [`jacobian`](Self::jacobian).
pub trait GaussianObservation: Send + Sync {
    /// Number of observed values p.
    fn len(&self) -> usize;
    /// Whether nothing is observed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `H(x)` of one state.
    fn observe(&self, x: &[f64]) -> Vec<f64>;
    /// The noise standard deviations σ (length p).
    fn sigma(&self) -> &[f64];
    /// The Jacobian `∂H/∂x` at `x` (p × n).
    fn jacobian(&self, x: &[f64]) -> DMatrix<f64>;
    /// The vector–Jacobian product `(∂H/∂x)ᵀ v` at `x` (length n); by default through the
    /// dense [`jacobian`](Self::jacobian), which an observation of many values should avoid.
    fn vjp(&self, x: &[f64], v: &[f64]) -> Vec<f64> {
        (self.jacobian(x).transpose() * nalgebra::DVector::from_column_slice(v))
            .as_slice()
            .to_vec()
    }
    /// The site of each observed value on a periodic 1-D domain, for localisation; `None` if
    /// the values are not attached to sites.
    fn sites(&self) -> Option<Vec<usize>> {
        None
    }
    /// A short description for tables.
    fn describe(&self) -> String;
}

/// Chosen sites of the state observed directly: `y_j = x_{s_j} + N(0, σ²)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialIdentity {
    /// Number of sites n of the state.
    pub n: usize,
    /// The observed sites s_j.
    pub indices: Vec<usize>,
    /// Noise standard deviation of each value.
    sigma: Vec<f64>,
}

impl PartialIdentity {
    /// Every `every`-th site of `n`, from site 0, with noise σ: `every = 1` observes all.
    pub fn every(n: usize, every: usize, sigma: f64) -> Result<Self> {
        if every == 0 || every > n {
            return Err(Error::Invalid(format!(
                "observe every {every}-th site of {n}: the stride must be in 1..={n}"
            )));
        }
        Self::new(n, (0..n).step_by(every).collect(), sigma)
    }

    /// The sites `indices` of a state of `n` with noise σ > 0.
    pub fn new(n: usize, indices: Vec<usize>, sigma: f64) -> Result<Self> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::Invalid(format!(
                "observation noise sigma must be positive and finite, got {sigma}"
            )));
        }
        if let Some(i) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::Invalid(format!(
                "observed site {i} is outside the state's {n} sites"
            )));
        }
        if indices.is_empty() {
            return Err(Error::Invalid(
                "an observation needs at least one site".into(),
            ));
        }
        let sigma = vec![sigma; indices.len()];
        Ok(Self { n, indices, sigma })
    }
}

impl GaussianObservation for PartialIdentity {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn observe(&self, x: &[f64]) -> Vec<f64> {
        self.indices.iter().map(|&i| x[i]).collect()
    }
    fn sigma(&self) -> &[f64] {
        &self.sigma
    }
    fn jacobian(&self, _x: &[f64]) -> DMatrix<f64> {
        let mut h = DMatrix::zeros(self.indices.len(), self.n);
        for (j, &i) in self.indices.iter().enumerate() {
            h[(j, i)] = 1.0;
        }
        h
    }
    fn vjp(&self, _x: &[f64], v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        for (&i, vj) in self.indices.iter().zip(v) {
            out[i] += vj;
        }
        out
    }
    fn sites(&self) -> Option<Vec<usize>> {
        Some(self.indices.clone())
    }
    fn describe(&self) -> String {
        format!(
            "{} of {} sites, sigma {}",
            self.indices.len(),
            self.n,
            self.sigma[0]
        )
    }
}

/// What a site observation applies to the observed values (`--observe 'operator = …'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteOperator {
    /// `y_j = x_{s_j} + η_j`.
    #[default]
    Identity,
    /// `y_j = arctan(x_{s_j}) + η_j`, the non-linear observation of the EnSF paper (Bao, Zhang &
    /// Zhang 2024), under which the Kalman methods' Gaussian assumption is wrong.
    Arctan,
}

/// Chosen sites observed through arctan: `y_j = arctan(x_{s_j}) + N(0, σ²)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArctanSites {
    sites: PartialIdentity,
}

impl ArctanSites {
    /// arctan of the sites of `sites`, with its noise.
    pub fn new(sites: PartialIdentity) -> Self {
        Self { sites }
    }
}

impl GaussianObservation for ArctanSites {
    fn len(&self) -> usize {
        self.sites.len()
    }
    fn observe(&self, x: &[f64]) -> Vec<f64> {
        self.sites.indices.iter().map(|&i| x[i].atan()).collect()
    }
    fn sigma(&self) -> &[f64] {
        self.sites.sigma()
    }
    fn jacobian(&self, x: &[f64]) -> DMatrix<f64> {
        let mut h = DMatrix::zeros(self.sites.len(), self.sites.n);
        for (j, &i) in self.sites.indices.iter().enumerate() {
            h[(j, i)] = 1.0 / (1.0 + x[i] * x[i]);
        }
        h
    }
    fn vjp(&self, x: &[f64], v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.sites.n];
        for (&i, vj) in self.sites.indices.iter().zip(v) {
            out[i] += vj / (1.0 + x[i] * x[i]);
        }
        out
    }
    fn sites(&self) -> Option<Vec<usize>> {
        self.sites.sites()
    }
    fn describe(&self) -> String {
        format!("arctan of {}", self.sites.describe())
    }
}

/// What a method knows before the first cycle: the law of the initial state and the
/// climatology (the long-run mean and covariance of the system, estimated from the truth as
/// DAPPER does, for the methods that use it).
#[derive(Debug, Clone)]
pub struct Prior {
    /// Mean of the initial state.
    pub mean: Vec<f64>,
    /// Variance of each initial component.
    pub var: f64,
    /// Climatological mean.
    pub climate_mean: Vec<f64>,
    /// Climatological covariance (n × n).
    pub climate_cov: DMatrix<f64>,
}

/// A method's estimate of the state at one time.
pub enum Estimate<'a> {
    /// An ensemble, one member per column (n × N).
    Ensemble(&'a DMatrix<f64>),
    /// A Gaussian: mean and marginal variances.
    Gaussian {
        /// The mean.
        mean: &'a [f64],
        /// The marginal variances.
        var: &'a [f64],
    },
}

/// A sequential data-assimilation method (a filter): it holds an estimate of the current state,
/// moves it forward with the model and updates it with each observation.
pub trait Filter: Send {
    /// A short description with the settings, for tables.
    fn describe(&self) -> String;
    /// Sets the estimate at time 0 from the prior.
    fn initialise(&mut self, prior: &Prior, rng: &mut dyn RngCore) -> Result<()>;
    /// The number of members of an ensemble method (what [`initialise_members`](Self::initialise_members)
    /// takes); `None` (the default) for a method without an ensemble.
    fn members(&self) -> Option<usize> {
        None
    }
    /// Sets the estimate at time 0 to the ensemble `members` (n × N, a member per column,
    /// N = [`members`](Self::members)): how a filter starts inside a window from draws of its
    /// background. An error for a method without an ensemble (the default) or another N.
    fn initialise_members(&mut self, members: DMatrix<f64>) -> Result<()> {
        Err(Error::Invalid(format!(
            "{} does not start from an ensemble of {} members",
            self.describe(),
            members.ncols()
        )))
    }
    /// Moves the estimate one model step forward.
    fn forecast(&mut self, model: &dyn Dynamics, rng: &mut dyn RngCore) -> Result<()>;
    /// Updates the estimate with the observation `y` of the current state (the model is there
    /// for the methods that integrate it in their analysis, as 4D-Var).
    fn analyse(
        &mut self,
        y: &[f64],
        observation: &dyn GaussianObservation,
        model: &dyn Dynamics,
        rng: &mut dyn RngCore,
    ) -> Result<()>;
    /// The current estimate.
    fn estimate(&self) -> Estimate<'_>;
    /// For a smoother: the ensembles of past observation times that no later observation will
    /// change any more, with their model steps, handed over once; a filter has none.
    fn take_smoothed(&mut self) -> Vec<(usize, DMatrix<f64>)> {
        Vec::new()
    }
}

/// The scores of one observation time: of the forecast (before the analysis) and of the
/// analysis.
#[derive(Debug, Clone)]
pub struct CycleScores {
    /// Model step k of the observation.
    pub step: usize,
    /// Scores of the forecast estimate.
    pub forecast: Scores,
    /// Scores of the analysis estimate.
    pub analysis: Scores,
    /// Scores of the smoothed estimate (a smoother's, once final).
    pub smoothed: Option<Scores>,
}

/// The twin experiment a filter is run on: the truth `x_0 … x_K` (one state per model step)
/// and an observation at some steps (`None` elsewhere).
pub struct Twin<'a> {
    /// The model.
    pub model: &'a dyn Dynamics,
    /// The observation.
    pub observation: &'a dyn GaussianObservation,
    /// The true states `x_0 … x_K`.
    pub truth: &'a [Vec<f64>],
    /// `y_k` at the observed steps (same length as the truth; `y_0` is not used).
    pub observations: &'a [Option<Vec<f64>>],
    /// The prior of the initial state and the climatology.
    pub prior: &'a Prior,
}

/// Cycles `filter` over the twin experiment (DAPPER's `assimilate`): at every model step k ≥ 1
/// a forecast, and where `y_k` exists the forecast's scores, the analysis and its scores.
/// A non-finite estimate stops the run with an error naming the step (the filter diverged).
pub fn assimilate(
    filter: &mut dyn Filter,
    twin: &Twin,
    rng: &mut dyn RngCore,
    mut progress: impl FnMut(usize),
) -> Result<Vec<CycleScores>> {
    if twin.truth.len() != twin.observations.len() || twin.truth.is_empty() {
        return Err(Error::Shape(format!(
            "a twin experiment needs one observation slot per true state ({} states, {} slots)",
            twin.truth.len(),
            twin.observations.len()
        )));
    }
    filter.initialise(twin.prior, rng)?;
    let mut out = Vec::new();
    for k in 1..twin.truth.len() {
        filter.forecast(twin.model, rng)?;
        let Some(y) = &twin.observations[k] else {
            continue;
        };
        let forecast = scores::score(&filter.estimate(), &twin.truth[k]);
        filter.analyse(y, twin.observation, twin.model, rng)?;
        let analysis = scores::score(&filter.estimate(), &twin.truth[k]);
        if !(analysis.rmse.is_finite() && analysis.spread.is_finite()) {
            return Err(Error::Numerical(format!(
                "{} diverged at model step {k}: its analysis is not finite (RMSE {}, spread {})",
                filter.describe(),
                analysis.rmse,
                analysis.spread
            )));
        }
        out.push(CycleScores {
            step: k,
            forecast,
            analysis,
            smoothed: None,
        });
        for (step, ensemble) in filter.take_smoothed() {
            // the cycles are in step order: find the one of this step
            if let Ok(i) = out.binary_search_by_key(&step, |c| c.step) {
                out[i].smoothed = Some(scores::score(
                    &Estimate::Ensemble(&ensemble),
                    &twin.truth[step],
                ));
            }
        }
        progress(k);
    }
    Ok(out)
}
