//! The local ensemble transform Kalman smoother (LETKS) over one window: the LETKF (Hunt,
//! Kostelich & Szunyogh 2007) run forward through the window, each analysis's local weights
//! applied also to the earlier states of the window — the "no-cost" smoother of Kalnay & Yang
//! (2010), the ensemble Kalman smoother (Evensen & van Leeuwen 2000) with R-localisation. At
//! site `s` the transform of an observation time multiplies the members' values of site `s` at
//! every earlier state: the same linear combination of members that the filter makes there, so
//! each member's trajectory stays one trajectory.
//!
//! This is the localised ensemble smoother that SDA is compared with on Lorenz-96 rings far
//! larger than the ensemble, where the global smoother ([`super::enks::WindowEnks`]) fails for
//! want of members.

use rand::RngCore;

use super::ensemble::EnsembleSettings;
use super::letkf::{apply_transforms, Localised};
use super::window::{trajectories, Window, WindowSmoother};
use crate::{Error, Result};

/// The settings of a [`WindowLetks`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowLetksSettings {
    /// Localisation radius in sites (> 0; the Gaspari–Cohn half-width is `√(10/3) · radius`,
    /// as for the LETKF).
    pub radius: f64,
    /// Multiplicative inflation of each new analysis's anomalies (≥ 1).
    #[serde(default = "super::ensemble::no_inflation")]
    pub inflation: f64,
    /// Members N (default: the number of samples asked for); with more members than samples,
    /// the first members' trajectories are the samples (members are exchangeable).
    #[serde(default)]
    pub ensemble: Option<usize>,
}

/// The local ensemble transform Kalman smoother over a whole window.
#[derive(Debug, Clone)]
pub struct WindowLetks {
    settings: WindowLetksSettings,
}

impl WindowLetks {
    /// The smoother; an error for a radius that is not positive and finite, an inflation below 1
    /// or fewer than 2 members.
    pub fn new(settings: WindowLetksSettings) -> Result<Self> {
        super::letkf::letkf(super::letkf::LetkfSettings {
            ensemble: settings.ensemble.unwrap_or(2),
            inflation: settings.inflation,
            rotate: false,
            radius: settings.radius,
        })?;
        Ok(Self { settings })
    }
}

impl WindowSmoother for WindowLetks {
    fn describe(&self) -> String {
        let mut s = format!("LETKS, radius {}", self.settings.radius);
        if self.settings.inflation != 1.0 {
            s.push_str(&format!(", inflation {}", self.settings.inflation));
        }
        if let Some(n) = self.settings.ensemble {
            s.push_str(&format!(", N = {n}"));
        }
        s
    }

    fn smooth(&self, window: &Window, samples: usize, rng: &mut dyn RngCore) -> Result<Vec<f64>> {
        window.check()?;
        let members = self.settings.ensemble.unwrap_or(samples);
        if samples < 2 || members < samples {
            return Err(Error::Invalid(format!(
                "the local ensemble smoother returns one member per sample: {samples} samples \
                 need at least 2 and at most its ensemble of {members} members"
            )));
        }
        EnsembleSettings {
            ensemble: members,
            inflation: self.settings.inflation,
            rotate: false,
        }
        .check()?;
        let first = window.initial_members(members, rng);
        let analysis = Localised {
            radius: self.settings.radius,
        };
        let mut states = window.sweep(
            &self.describe(),
            first,
            self.settings.inflation,
            rng,
            |states, h, y, _| {
                let newest = states.len() - 1;
                let transforms = analysis.transforms(&states[newest], y, h)?;
                for e in states.iter_mut() {
                    apply_transforms(e, &transforms);
                }
                Ok(())
            },
        )?;
        for e in states.iter_mut() {
            *e = e.columns(0, samples).into_owned();
        }
        Ok(trajectories(&states))
    }
}
