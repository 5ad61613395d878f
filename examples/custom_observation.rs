//! Write your own observation model, register it by name, and run it from the CLI — without
//! forking the crate.
//!
//! ```text
//! cargo run --release --example custom_observation -- list
//! cargo run --release --example custom_observation -- oracle \
//!     --observation component-sum --observation-params 'every = 3, sigma = 0.1'
//! ```
//!
//! The model observes the sum of the two components of every n-th state:
//! `y_j = x_{i_j, 0} + x_{i_j, 1} + η_j`, `η ~ N(0, σ² I)`, `i_j = 0, n, 2n, …`.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use sda::prelude::*;
use sda::registry::{params, ObservationPlugin};

/// Typed parameters; unknown keys (typos) are rejected.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSumConfig {
    /// Observe every n-th state, starting at state 0.
    pub every: usize,
    /// Observation noise standard deviation.
    pub sigma: f64,
}

/// `y = (Σ_c x_{i,c})_{i = 0, n, 2n, …} + N(0, σ² I)`.
pub struct ComponentSum {
    shape: TrajectoryShape,
    states: Vec<usize>,
    sigma: f64,
}

impl ComponentSum {
    /// Validates the parameters against the trajectory shape once, at construction.
    pub fn new(shape: TrajectoryShape, cfg: ComponentSumConfig) -> Result<Self> {
        if cfg.every == 0 {
            return Err(Error::Invalid("component-sum: every must be ≥ 1".into()));
        }
        if !(cfg.sigma.is_finite() && cfg.sigma > 0.0) {
            return Err(Error::Invalid(
                "component-sum: sigma must be positive".into(),
            ));
        }
        Ok(Self {
            shape,
            states: (0..shape.len).step_by(cfg.every).collect(),
            sigma: cfg.sigma,
        })
    }
}

impl<B: Backend> ObservationModel<B> for ComponentSum {
    fn trajectory_shape(&self) -> TrajectoryShape {
        self.shape
    }

    fn output_dim(&self) -> usize {
        self.states.len()
    }

    /// A(x): sum over components, then pick the observed states. Written with tensor ops only,
    /// so guidance can differentiate through it.
    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [n, l, _] = x.dims();
        let idx: Vec<i64> = self.states.iter().map(|&i| i as i64).collect();
        let idx =
            Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [self.states.len()]), &x.device());
        x.sum_dim(2).reshape([n, l]).select(1, idx)
    }

    fn noise_std(&self) -> Vec<f64> {
        vec![self.sigma; self.states.len()]
    }

    fn describe(&self) -> String {
        format!(
            "component-sum(states={:?}, sigma={})",
            self.states, self.sigma
        )
    }
}

// Register under a name: `sda list` shows it and every command accepts it.
inventory::submit! {
    ObservationPlugin {
        name: "component-sum",
        description: "sum of the components of every n-th state + N(0, sigma²): every, sigma",
        build: |p, shape| Ok(Box::new(ComponentSum::new(shape, params(p)?)?)),
    }
}

/// The same CLI as `sda`, with this file's plugin linked in.
#[allow(dead_code)]
fn main() {
    if let Err(e) = sda::cli::run(std::env::args_os()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
