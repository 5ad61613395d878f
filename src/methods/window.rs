//! Smoothing one window: the classical methods as posterior samplers of a whole trajectory
//! `x_{1:L}` given its observations — what SDA and the particle filter produce in the paper's
//! Figure-2 evaluation, so that the three are scored alike.
//!
//! A [`Window`] holds the model, the observation of each state (Gaussian, possibly none) and
//! draws of the first state's prior (the background); a [`WindowSmoother`] returns trajectory
//! samples of the window. Built in: the ensemble Kalman smoother over the whole window
//! ([`super::enks::WindowEnks`]) and weak-constraint 4D-Var with its Laplace posterior
//! ([`super::var4d_weak::WeakVar4d`]).

use nalgebra::DMatrix;
use rand::RngCore;

use super::GaussianObservation;
use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// One window to smooth: `x_1 ~` the background, `x_{i+1} ~ model(x_i)`, and at the observed
/// states `y_i = H_i(x_i) + N(0, diag(σ_i²))`.
pub struct Window<'a> {
    /// The model of the transitions.
    pub model: &'a dyn Dynamics,
    /// Per state of the window (its length L): the observation of that state and its value.
    pub observations: Vec<Option<(&'a dyn GaussianObservation, Vec<f64>)>>,
    /// Draws of the first state's prior, one per column (n × M): the background.
    pub background: &'a DMatrix<f64>,
}

impl Window<'_> {
    /// Number of states L.
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// Whether the window has no state.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// Values per state n.
    pub fn dim(&self) -> usize {
        self.background.nrows()
    }

    /// Checks the shapes: a state count ≥ 1, a background of the model's states with at least two
    /// draws, every observation's value of its length and finite.
    pub fn check(&self) -> Result<()> {
        let n = self.model.state_dim();
        if self.is_empty() {
            return Err(Error::Shape("a window needs at least one state".into()));
        }
        if self.background.nrows() != n || self.background.ncols() < 2 {
            return Err(Error::Shape(format!(
                "the background must hold at least 2 draws of the model's {n}-value states, \
                 got {} × {}",
                self.background.nrows(),
                self.background.ncols()
            )));
        }
        for (i, o) in self.observations.iter().enumerate() {
            if let Some((h, y)) = o {
                if y.len() != h.len() || y.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Shape(format!(
                        "the observation of state {i} needs {} finite values, got {} ({})",
                        h.len(),
                        y.len(),
                        if y.iter().all(|v| v.is_finite()) {
                            "all finite"
                        } else {
                            "some not finite"
                        }
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Window<'_> {
    /// `members` draws of the first state, one per column: the background's first draws, or
    /// draws resampled from it (with replacement) when it holds fewer — the starting ensemble of
    /// the ensemble smoothers.
    pub fn initial_members(&self, members: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
        let (n, drawn) = self.background.shape();
        let mut first = DMatrix::zeros(n, members);
        for s in 0..members {
            let j = if drawn >= members {
                s
            } else {
                rand::Rng::random_range(rng, 0..drawn)
            };
            first.set_column(s, &self.background.column(j));
        }
        first
    }

    /// The sweep of an ensemble smoother through the window: each state's ensemble is the
    /// previous one forecast by the model (the first is `first`); at each observed state,
    /// `analyse(states, i, h, y, rng)` updates the ensembles of states 0 … i, then the newest is
    /// inflated by `inflation` (≥ 1). An error names the `method` and a state whose analysis
    /// is not finite.
    pub(crate) fn sweep(
        &self,
        method: &str,
        first: DMatrix<f64>,
        inflation: f64,
        rng: &mut dyn RngCore,
        mut analyse: impl FnMut(
            &mut [DMatrix<f64>],
            &dyn GaussianObservation,
            &[f64],
            &mut dyn RngCore,
        ) -> Result<()>,
    ) -> Result<Vec<DMatrix<f64>>> {
        let mut states: Vec<DMatrix<f64>> = Vec::with_capacity(self.len());
        for (i, observed) in self.observations.iter().enumerate() {
            let mut next = states.last().unwrap_or(&first).clone();
            if i > 0 {
                super::ensemble::forecast_ensemble(&mut next, self.model, rng);
            }
            states.push(next);
            let Some((h, y)) = observed else { continue };
            analyse(&mut states, *h, y, rng)?;
            if states[i].iter().any(|v| !v.is_finite()) {
                return Err(Error::Numerical(format!(
                    "{method}: the analysis of state {i} is not finite"
                )));
            }
            super::ensemble::inflate_and_rotate(&mut states[i], inflation, false, rng)?;
        }
        Ok(states)
    }
}

/// A classical method that samples the trajectories of a [`Window`] given its observations.
pub trait WindowSmoother: Send + Sync {
    /// The method with its settings, for tables (distinct settings, distinct descriptions).
    fn describe(&self) -> String;
    /// `samples` trajectories of the window, `[samples, L, n]` row-major.
    fn smooth(&self, window: &Window, samples: usize, rng: &mut dyn RngCore) -> Result<Vec<f64>>;
}

/// `[S, L, n]` row-major from one `n × S` ensemble per state.
pub(crate) fn trajectories(states: &[DMatrix<f64>]) -> Vec<f64> {
    let (n, samples) = states.first().map_or((0, 0), |e| e.shape());
    let len = states.len();
    let mut out = vec![0.0; samples * len * n];
    for (i, e) in states.iter().enumerate() {
        for s in 0..samples {
            let at = (s * len + i) * n;
            out[at..at + n].copy_from_slice(e.column(s).as_slice());
        }
    }
    out
}
