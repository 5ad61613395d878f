//! A non-linear observation that factorises over states, so that `sda evaluate` can weigh the
//! particle filter with it: `y_j = tanh(x_{i_j, c}) + η_j`, `η ~ N(0, σ² I)`, of one
//! component `c` of every n-th state `i_j = 0, n, 2n, …` (in the prior's standardised units).
//!
//! ```text
//! cargo run --release --example tanh_observation -- evaluate --run RUN --data DATA \
//!     --observation tanh --observation-params 'component = 0, every = 8, sigma = 0.05'
//! ```

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use sda::observe::state_major_parts;
use sda::prelude::*;
use sda::registry::{params, ObservationPlugin};

/// Typed parameters; unknown keys (typos) are rejected.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TanhConfig {
    /// The observed component (0-based).
    pub component: usize,
    /// Observe every n-th state, starting at state 0.
    pub every: usize,
    /// Observation noise standard deviation.
    pub sigma: f64,
}

/// `y = (tanh x_{i,c})_{i = 0, n, 2n, …} + N(0, σ² I)`.
pub struct Tanh {
    shape: TrajectoryShape,
    states: Vec<usize>,
    component: usize,
    sigma: f64,
}

impl Tanh {
    /// Validates the parameters against the trajectory shape once, at construction.
    pub fn new(shape: TrajectoryShape, cfg: TanhConfig) -> Result<Self> {
        if cfg.every == 0 || cfg.component >= shape.dim {
            return Err(Error::Invalid(format!(
                "tanh: every must be ≥ 1 and component < {} (got {} and {})",
                shape.dim, cfg.every, cfg.component
            )));
        }
        if !(cfg.sigma.is_finite() && cfg.sigma > 0.0) {
            return Err(Error::Invalid("tanh: sigma must be positive".into()));
        }
        Ok(Self {
            shape,
            states: (0..shape.len).step_by(cfg.every).collect(),
            component: cfg.component,
            sigma: cfg.sigma,
        })
    }
}

impl<B: Backend> ObservationModel<B> for Tanh {
    fn trajectory_shape(&self) -> TrajectoryShape {
        self.shape
    }

    fn output_dim(&self) -> usize {
        self.states.len()
    }

    /// A(x): the component at the observed states, through tanh — tensor ops only, so that
    /// guidance can differentiate through it.
    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [n, l, d] = x.dims();
        let idx: Vec<i64> = self
            .states
            .iter()
            .map(|&i| (i * d + self.component) as i64)
            .collect();
        let idx =
            Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [self.states.len()]), &x.device());
        x.reshape([n, l * d]).select(1, idx).tanh()
    }

    fn noise_std(&self) -> Vec<f64> {
        vec![self.sigma; self.states.len()]
    }

    fn describe(&self) -> String {
        format!(
            "tanh(component={}, states={:?}, sigma={})",
            self.component, self.states, self.sigma
        )
    }

    /// Value j of y depends on state `states[j]` alone: the particle filter can weigh each
    /// state with its own factor. The per-state likelihood is the trait's default, computed
    /// from `apply`.
    fn state_parts(&self) -> Option<Vec<std::ops::Range<usize>>> {
        Some(state_major_parts(self.shape.len, &self.states, 1))
    }
}

// Register under a name: `sda list` shows it and every command accepts it.
inventory::submit! {
    ObservationPlugin {
        name: "tanh",
        description: "tanh of one component of every n-th state + N(0, sigma²): component, every, sigma",
        build: |p, shape| Ok(Box::new(Tanh::new(shape, params(p)?)?)),
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
