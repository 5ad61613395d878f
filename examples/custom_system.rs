//! Write your own dynamical system, register it by name, and generate, train, assimilate and
//! evaluate it from the CLI — without forking the crate.
//!
//! ```text
//! cargo run --release --example custom_system -- generate shifted-oracle \
//!     --trajectories 64 --keep 64 --burn-in 16 --out data/shifted
//! cargo run --release --example custom_system -- train --data data/shifted --steps 2000 \
//!     --out runs/shifted
//! cargo run --release --example custom_system -- assimilate --run runs/shifted \
//!     --data data/shifted --len 16 --observation pick \
//!     --observation-params 'states = [0, 5, 10, 15], components = [0], sigma = 0.1'
//! ```
//!
//! The system is the oracle's chain moved and stretched into other units:
//! `x_{i+1} = c + F (x_i − c) + w`, `w ~ N(0, s² Q)`, with `F = 0.95 R(0.3)`, `Q = 0.1 I` and
//! the stationary prior `N(c, s² P)`. Its posterior is exact (a Kalman smoother of `x − c`),
//! and its states sit far from zero with a scale far from one, so it shows that the units a
//! network learns in are found, stored and undone.

use rand::RngCore;
use sda::prelude::*;
use sda::registry::{params, SystemPlugin};
use sda::systems::linear_gaussian::LinearGaussian;

/// Typed parameters; unknown keys (typos) are rejected.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftedOracleConfig {
    /// The stationary mean c (one value per component).
    #[serde(default = "default_centre")]
    pub centre: [f64; 2],
    /// The scale s of the fluctuations.
    #[serde(default = "default_scale")]
    pub scale: f64,
}

fn default_centre() -> [f64; 2] {
    [50.0, -20.0]
}

fn default_scale() -> f64 {
    10.0
}

/// `x = c + z`, with `z` the oracle chain of covariances scaled by `s²`.
pub struct ShiftedOracle {
    centre: [f64; 2],
    /// The chain of `z = x − c`.
    pub fluctuation: LinearGaussian,
}

impl ShiftedOracle {
    /// The system of `cfg`; an error for a scale that is not finite and positive.
    pub fn new(cfg: &ShiftedOracleConfig) -> Result<Self> {
        if !(cfg.scale.is_finite() && cfg.scale > 0.0) || cfg.centre.iter().any(|c| !c.is_finite())
        {
            return Err(Error::Invalid(format!(
                "shifted-oracle needs a finite centre and a finite positive scale, got {cfg:?}"
            )));
        }
        let oracle = LinearGaussian::oracle();
        let fluctuation =
            LinearGaussian::stationary(oracle.f().clone(), oracle.q() * cfg.scale.powi(2))?;
        Ok(Self {
            centre: cfg.centre,
            fluctuation,
        })
    }

    /// The stationary mean c.
    pub fn centre(&self) -> [f64; 2] {
        self.centre
    }

    fn shift(&self, x: &[f64], sign: f64) -> Vec<f64> {
        x.iter()
            .zip(self.centre)
            .map(|(v, c)| v + sign * c)
            .collect()
    }
}

impl Dynamics for ShiftedOracle {
    fn name(&self) -> String {
        "shifted-oracle".into()
    }
    fn state_shape(&self) -> Vec<usize> {
        vec![2]
    }
    fn sample_initial(&self, rng: &mut dyn RngCore) -> Vec<f64> {
        self.shift(&self.fluctuation.sample_initial(rng), 1.0)
    }
    fn step(&self, x: &[f64], rng: &mut dyn RngCore) -> Vec<f64> {
        self.shift(&self.fluctuation.step(&self.shift(x, -1.0), rng), 1.0)
    }
    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        self.fluctuation
            .log_transition(&self.shift(x, -1.0), &self.shift(x_next, -1.0))
    }
}

inventory::submit! {
    SystemPlugin {
        name: "shifted-oracle",
        description: "the oracle chain around c with fluctuations scaled by s: centre, scale",
        build: |p| Ok(Box::new(ShiftedOracle::new(&params(p)?)?)),
    }
}

/// The same CLI as `sda`, with this file's system linked in.
#[allow(dead_code)]
fn main() {
    if let Err(e) = sda::cli::run(std::env::args_os()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
