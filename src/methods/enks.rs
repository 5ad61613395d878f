//! The ensemble Kalman smoother (EnKS; Evensen & van Leeuwen 2000), as DAPPER writes it: the
//! ensembles of the last `lag` observation times are stacked into one augmented state, and the
//! filter's analysis of the newest observation — any global [`Analysis`]: perturbed
//! observations, ETKF, DEnKF — updates the whole stack at once (the past states through their
//! ensemble cross-covariances with the observed one). Inflation and rotation act on the newest
//! ensemble only, before it joins the stack. An ensemble leaves the stack `lag` cycles after its own analysis, final: its
//! scores are the smoother's (`rmse_s`).

use std::collections::VecDeque;

use nalgebra::DMatrix;
use rand::RngCore;

use super::ensemble::{Analysis, EnsembleFilter, EnsembleSettings, Update};
use super::window::{trajectories, Window, WindowSmoother};
use super::{Estimate, Filter, GaussianObservation, Prior};
use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// The settings of an [`Enks`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnksSettings {
    /// Ensemble size N (≥ 2).
    pub ensemble: usize,
    /// Observation cycles smoothed back (≥ 1).
    pub lag: usize,
    /// Multiplicative inflation of the newest analysis anomalies (≥ 1).
    #[serde(default = "super::ensemble::no_inflation")]
    pub inflation: f64,
    /// Apply a random mean-preserving rotation to the newest analysis anomalies.
    #[serde(default)]
    pub rotate: bool,
}

/// The ensemble Kalman smoother over `lag` observation cycles.
pub struct Enks {
    filter: EnsembleFilter<Update>,
    lag: usize,
    /// Past observation times and their ensembles, oldest first (at most `lag`).
    past: VecDeque<(usize, DMatrix<f64>)>,
    /// Model steps since the start.
    step: usize,
    /// Ensembles that have left the stack, for [`Filter::take_smoothed`].
    done: Vec<(usize, DMatrix<f64>)>,
}

impl Enks {
    /// An EnKS with the `update` analysis; an error for N < 2, an inflation below 1 or a lag
    /// of 0.
    pub fn new(update: Update, settings: EnksSettings) -> Result<Self> {
        if settings.lag == 0 {
            return Err(Error::Invalid(
                "lag (observation cycles smoothed back) must be at least 1".into(),
            ));
        }
        let filter = EnsembleFilter::new(
            update,
            EnsembleSettings {
                ensemble: settings.ensemble,
                inflation: settings.inflation,
                rotate: settings.rotate,
            },
        )?;
        Ok(Self {
            filter,
            lag: settings.lag,
            past: VecDeque::new(),
            step: 0,
            done: Vec::new(),
        })
    }
}

/// An observation of the last of `blocks` stacked states of `n`: `H(x_last)`.
pub(super) struct Newest<'a> {
    inner: &'a dyn GaussianObservation,
    n: usize,
    blocks: usize,
}

impl GaussianObservation for Newest<'_> {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn observe(&self, x: &[f64]) -> Vec<f64> {
        self.inner.observe(&x[(self.blocks - 1) * self.n..])
    }
    fn sigma(&self) -> &[f64] {
        self.inner.sigma()
    }
    fn jacobian(&self, x: &[f64]) -> DMatrix<f64> {
        let offset = (self.blocks - 1) * self.n;
        let h = self.inner.jacobian(&x[offset..]);
        let mut out = DMatrix::zeros(h.nrows(), self.blocks * self.n);
        out.columns_mut(offset, self.n).copy_from(&h);
        out
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl Filter for Enks {
    fn describe(&self) -> String {
        format!("EnKS (lag {}), {}", self.lag, self.filter.describe())
    }

    fn initialise(&mut self, prior: &Prior, rng: &mut dyn RngCore) -> Result<()> {
        self.past.clear();
        self.done.clear();
        self.step = 0;
        self.filter.initialise(prior, rng)
    }

    fn forecast(&mut self, model: &dyn Dynamics, rng: &mut dyn RngCore) -> Result<()> {
        self.step += 1;
        self.filter.forecast(model, rng)
    }

    fn analyse(
        &mut self,
        y: &[f64],
        observation: &dyn GaussianObservation,
        _model: &dyn Dynamics,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        let Estimate::Ensemble(current) = self.filter.estimate() else {
            unreachable!("an ensemble filter's estimate is an ensemble")
        };
        let (n, members) = current.shape();
        let blocks = self.past.len() + 1;
        let mut stack = DMatrix::zeros(blocks * n, members);
        for (b, (_, e)) in self.past.iter().enumerate() {
            stack.rows_mut(b * n, n).copy_from(e);
        }
        stack.rows_mut((blocks - 1) * n, n).copy_from(current);
        let newest = Newest {
            inner: observation,
            n,
            blocks,
        };
        let updated = self.filter.analysis().analyse(&stack, y, &newest, rng)?;
        for (b, (_, e)) in self.past.iter_mut().enumerate() {
            e.copy_from(&updated.rows(b * n, n));
        }
        let analysed = updated.rows((blocks - 1) * n, n).into_owned();
        self.filter.set_analysis(analysed, rng)?;
        // the newest analysis, inflated and rotated (as DAPPER keeps it), joins the stack
        if let Estimate::Ensemble(e) = self.filter.estimate() {
            self.past.push_back((self.step, e.clone()));
        }
        if self.past.len() > self.lag {
            self.done.extend(self.past.pop_front());
        }
        Ok(())
    }

    fn estimate(&self) -> Estimate<'_> {
        self.filter.estimate()
    }

    fn take_smoothed(&mut self) -> Vec<(usize, DMatrix<f64>)> {
        std::mem::take(&mut self.done)
    }
}

/// The settings of a [`WindowEnks`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowEnksSettings {
    /// The analysis: `"enkf"` (perturbed observations, the default: Evensen & van Leeuwen's
    /// stochastic smoother), `"etkf"` or `"denkf"`.
    #[serde(default = "perturbed")]
    pub analysis: AnalysisName,
    /// Multiplicative inflation of each new analysis's anomalies (≥ 1).
    #[serde(default = "super::ensemble::no_inflation")]
    pub inflation: f64,
}

fn perturbed() -> AnalysisName {
    AnalysisName::Enkf
}

/// A global ensemble analysis by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisName {
    /// Perturbed observations.
    Enkf,
    /// Symmetric square root.
    Etkf,
    /// Deterministic EnKF.
    Denkf,
}

impl From<AnalysisName> for Update {
    fn from(a: AnalysisName) -> Self {
        match a {
            AnalysisName::Enkf => Update::PerturbedObservations,
            AnalysisName::Etkf => Update::Etkf,
            AnalysisName::Denkf => Update::Denkf,
        }
    }
}

/// The ensemble Kalman smoother over a whole window (Evensen & van Leeuwen 2000): the ensemble
/// (one member per trajectory sample, drawn from the background) is forecast state by state
/// with the stochastic model, and each observation's analysis updates every state of the window
/// so far, through their ensemble cross-covariances with the observed one. The members'
/// trajectories are the samples.
#[derive(Debug, Clone)]
pub struct WindowEnks {
    settings: WindowEnksSettings,
}

impl WindowEnks {
    /// The smoother; an error for an inflation below 1.
    pub fn new(settings: WindowEnksSettings) -> Result<Self> {
        EnsembleSettings {
            ensemble: 2,
            inflation: settings.inflation,
            rotate: false,
        }
        .check()?;
        Ok(Self { settings })
    }
}

impl WindowSmoother for WindowEnks {
    fn describe(&self) -> String {
        let analysis: Update = self.settings.analysis.into();
        let mut s = format!("EnKS, {}", analysis.describe());
        if self.settings.inflation != 1.0 {
            s.push_str(&format!(", inflation {}", self.settings.inflation));
        }
        s
    }

    fn smooth(&self, window: &Window, samples: usize, rng: &mut dyn RngCore) -> Result<Vec<f64>> {
        window.check()?;
        if samples < 2 {
            return Err(Error::Invalid(format!(
                "the ensemble smoother needs at least 2 samples (its members), got {samples}"
            )));
        }
        let n = window.dim();
        let first = window.initial_members(samples, rng);
        let analysis: Update = self.settings.analysis.into();
        let states = window.sweep(
            &self.describe(),
            first,
            self.settings.inflation,
            rng,
            |states, h, y, rng| {
                // the window so far stacked into one state, updated by the newest observation
                let blocks = states.len();
                let mut stack = DMatrix::zeros(blocks * n, samples);
                for (b, e) in states.iter().enumerate() {
                    stack.rows_mut(b * n, n).copy_from(e);
                }
                let newest = Newest {
                    inner: h,
                    n,
                    blocks,
                };
                let updated = analysis.analyse(&stack, y, &newest, rng)?;
                for (b, e) in states.iter_mut().enumerate() {
                    e.copy_from(&updated.rows(b * n, n));
                }
                Ok(())
            },
        )?;
        Ok(trajectories(&states))
    }
}
