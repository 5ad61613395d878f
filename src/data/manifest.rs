//! The `manifest.json` of a dataset folder: which system made it, with which parameters and
//! generation settings, and how its trajectories split into train/valid/test.

use std::path::{Path, PathBuf};

use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// What to generate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateOptions {
    /// Output folder (not recorded in the manifest, so moved datasets stay byte-identical).
    #[serde(skip)]
    pub out: PathBuf,
    /// Number of trajectories N (split 80/10/10 by index).
    pub trajectories: usize,
    /// Base seed; trajectory i uses [`crate::experiments::generate::trajectory_seed`]`(seed, i)`.
    pub seed: u64,
    /// Discarded snapshots before the kept ones.
    pub burn_in: usize,
    /// Kept snapshots per trajectory.
    pub keep: usize,
    /// Stop after this many newly simulated trajectories (generation in chunks); `None` = all.
    #[serde(skip)]
    pub max_new: Option<usize>,
    /// Show a progress bar.
    #[serde(skip)]
    pub progress: bool,
    /// Replace a dataset of other settings already in `out` (otherwise refused).
    #[serde(skip)]
    pub force: bool,
}

/// The `manifest.json` of a dataset: how it was made.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The system's registered name.
    pub system: String,
    /// The parameters the system was built with (the plugin's parameters).
    pub system_config: serde_json::Value,
    /// Trajectories, seed, burn-in, kept states.
    pub options: GenerateOptions,
    /// Shape of one state.
    pub state_shape: Vec<usize>,
    /// The stored state's variable names, units and time step (absent in older manifests).
    #[serde(default)]
    pub state: crate::dynamics::StateInfo,
    /// `(split, first trajectory, count)`.
    pub splits: Vec<(String, usize, usize)>,
    /// How trajectory seeds derive from the base seed.
    pub seeds: String,
    /// The file format.
    pub format: String,
}

impl Manifest {
    /// Whether `other` describes the same dataset: the same system, parameters, generation
    /// settings, state shape and splits (the descriptive fields aside, so a manifest written
    /// before they existed still matches).
    pub fn same_dataset(&self, other: &Manifest) -> bool {
        let key = |m: &Manifest| {
            serde_json::json!([
                m.system,
                m.system_config,
                m.options,
                m.state_shape,
                m.splits
            ])
        };
        key(self) == key(other)
    }

    /// The manifest of the dataset folder `dir`; `None` if it has none (data made elsewhere),
    /// an error if it is unreadable.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join("manifest.json");
        if !path.exists() {
            return Ok(None);
        }
        super::read_json(&path).map(Some)
    }

    /// The system that made the dataset, rebuilt by its registered name from the recorded
    /// parameters (for the log-prior of samples or a particle filter); `None` if no system of
    /// that name is registered in this program.
    pub fn system(&self) -> Result<Option<Box<dyn Dynamics>>> {
        let Ok(plugin) = crate::registry::find::<crate::registry::SystemPlugin>(&self.system)
        else {
            return Ok(None);
        };
        let params = toml::Value::try_from(&self.system_config).map_err(|e| {
            Error::Invalid(format!(
                "the manifest's parameters of {} are not a parameter table: {e}",
                self.system
            ))
        })?;
        crate::registry::Build::construct(plugin, &params, ()).map(Some)
    }
}
