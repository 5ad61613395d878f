//! A filter run through one window, scored beside the smoothers: the filtering mode of an
//! evaluation. The filter starts from draws of the window's background, forecasts from state to
//! state, analyses each observed state, and its ensemble at state `i` — the filter's posterior
//! given the observations of states `0 … i` only — stands for state `i` of the samples: sample
//! j is member j's estimate at each state in turn, which later observations never correct (a
//! smoother's would be).
//!
//! Any registered ensemble filter runs this way (`sda evaluate --smoother ensf`, `letkf`,
//! `etkf`, …): the LETKF and the Ensemble Score Filter (Bao, Zhang & Zhang 2024) beside SDA
//! and the window smoothers, on the same observations.

use rand::RngCore;

use super::window::{trajectories, Window, WindowSmoother};
use super::{Estimate, Filter};
use crate::{Error, Result};

/// What builds a fresh filter for each window (a filter holds the state of one run).
pub type FilterBuilder = Box<dyn Fn() -> Result<Box<dyn Filter>> + Send + Sync>;

/// An ensemble filter as a [`WindowSmoother`] (see the module docs).
pub struct WindowFilter {
    build: FilterBuilder,
    label: String,
    members: usize,
}

impl WindowFilter {
    /// The filter that `build` makes afresh for each window (`filter`, one it made, gives the
    /// description and the ensemble size); an error when it has no ensemble to start from.
    pub fn new(filter: &dyn Filter, build: FilterBuilder) -> Result<Self> {
        let members = filter.members().ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no ensemble: only an ensemble filter runs through a window (it starts \
                 from draws of the window's background)",
                filter.describe()
            ))
        })?;
        Ok(Self {
            label: format!("{} (filter)", filter.describe()),
            build,
            members,
        })
    }
}

impl WindowSmoother for WindowFilter {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn smooth(&self, window: &Window, samples: usize, rng: &mut dyn RngCore) -> Result<Vec<f64>> {
        window.check()?;
        if samples < 2 || self.members < samples {
            return Err(Error::Invalid(format!(
                "{} returns one member per sample: {samples} samples need at least 2 and at \
                 most its {} members",
                self.label, self.members
            )));
        }
        let mut filter = (self.build)()?;
        filter.initialise_members(window.initial_members(self.members, rng))?;
        let mut states = Vec::with_capacity(window.len());
        for (i, observed) in window.observations.iter().enumerate() {
            if i > 0 {
                filter.forecast(window.model, rng)?;
            }
            if let Some((h, y)) = observed {
                filter.analyse(y, *h, window.model, rng)?;
            }
            let Estimate::Ensemble(e) = filter.estimate() else {
                return Err(Error::Invalid(format!(
                    "{} gave no ensemble at state {i}",
                    self.label
                )));
            };
            if e.iter().any(|v| !v.is_finite()) {
                return Err(Error::Numerical(format!(
                    "{}: the estimate of state {i} is not finite",
                    self.label
                )));
            }
            states.push(e.columns(0, samples).into_owned());
        }
        Ok(trajectories(&states))
    }
}
