//! Built-in observation operators.
//!
//! Conventions: state and component indices are **0-based** (the paper's state `i` is index
//! `i − 1`; its "states 1, 6, 11, 16" are `[0, 5, 10, 15]`).

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use std::ops::Range;

use rayon::prelude::*;

use super::{state_major_parts, ObservationModel};
use crate::{Error, Result, TrajectoryShape};

/// Typed parameters of [`Pick`] (unknown keys are rejected).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PickConfig {
    /// Observed states (0-based). Exclusive with `every`.
    #[serde(default)]
    pub states: Option<Vec<usize>>,
    /// Observe every n-th state starting at state 0 (the paper's `x_{1:L:n}`).
    #[serde(default)]
    pub every: Option<usize>,
    /// Observed components of each observed state (0-based). Exclusive with
    /// `component_every`.
    #[serde(default)]
    pub components: Vec<usize>,
    /// Observe every n-th component starting at component 0 (e.g. every 4th site of a ring).
    #[serde(default)]
    pub component_every: Option<usize>,
    /// Observation noise standard deviation σ_y.
    pub sigma: f64,
}

/// Linear observation of chosen components at chosen states:
/// `y = (x_{i, c})_{i ∈ states, c ∈ components} + η`, `η ~ N(0, σ_y² I)`,
/// ordered state-major. Example: the oracle observes component 0 at states 0, 5, 10, 15.
#[derive(Debug, Clone)]
pub struct Pick {
    shape: TrajectoryShape,
    states: Vec<usize>,
    components: Vec<usize>,
    sigma: f64,
}

impl Pick {
    /// Builds the operator for trajectories of `shape`, checking every index and σ_y.
    pub fn new(
        shape: TrajectoryShape,
        states: Vec<usize>,
        components: Vec<usize>,
        sigma: f64,
    ) -> Result<Self> {
        if states.is_empty() || components.is_empty() {
            return Err(Error::Invalid(
                "pick observation needs at least one state and one component".into(),
            ));
        }
        if let Some(&s) = states.iter().find(|&&s| s >= shape.len) {
            return Err(Error::Shape(format!(
                "observed state {s} is outside the trajectory (L = {}, states are 0-based)",
                shape.len
            )));
        }
        if let Some(&c) = components.iter().find(|&&c| c >= shape.dim) {
            return Err(Error::Shape(format!(
                "observed component {c} is outside the state (D = {}, components are 0-based)",
                shape.dim
            )));
        }
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::Invalid(format!(
                "observation noise sigma must be positive, got {sigma}"
            )));
        }
        Ok(Self {
            shape,
            states,
            components,
            sigma,
        })
    }

    /// Builds from typed parameters.
    pub fn from_config(shape: TrajectoryShape, cfg: PickConfig) -> Result<Self> {
        let states = match (cfg.states, cfg.every) {
            (Some(s), None) => s,
            (None, Some(n)) if n > 0 => (0..shape.len).step_by(n).collect(),
            (None, Some(_)) => return Err(Error::Invalid("pick: every must be ≥ 1".into())),
            _ => {
                return Err(Error::Invalid(
                    "pick: give exactly one of `states = [..]` or `every = n`".into(),
                ))
            }
        };
        let components = match (cfg.components.is_empty(), cfg.component_every) {
            (false, None) => cfg.components,
            (true, Some(n)) if n > 0 => (0..shape.dim).step_by(n).collect(),
            (true, Some(_)) => {
                return Err(Error::Invalid("pick: component_every must be ≥ 1".into()))
            }
            _ => {
                return Err(Error::Invalid(
                    "pick: give exactly one of `components = [..]` or `component_every = n`".into(),
                ))
            }
        };
        Self::new(shape, states, components, cfg.sigma)
    }

    /// The trajectory shape it observes.
    pub fn shape(&self) -> TrajectoryShape {
        self.shape
    }

    /// Observed states (0-based).
    pub fn states(&self) -> &[usize] {
        &self.states
    }

    /// Observed components (0-based).
    pub fn components(&self) -> &[usize] {
        &self.components
    }

    /// Observation noise standard deviation σ_y.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

fn index_tensor<B: Backend>(idx: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

impl<B: Backend> ObservationModel<B> for Pick {
    fn trajectory_shape(&self) -> TrajectoryShape {
        self.shape
    }

    fn output_dim(&self) -> usize {
        self.states.len() * self.components.len()
    }

    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let device = x.device();
        let n = x.dims()[0];
        x.select(1, index_tensor::<B>(&self.states, &device))
            .select(2, index_tensor::<B>(&self.components, &device))
            .reshape([n, self.states.len() * self.components.len()])
    }

    fn noise_std(&self) -> Vec<f64> {
        vec![self.sigma; self.states.len() * self.components.len()]
    }

    fn state_parts(&self) -> Option<Vec<Range<usize>>> {
        Some(state_major_parts(
            self.shape.len,
            &self.states,
            self.components.len(),
        ))
    }

    /// On the host, in parallel over the values:
    /// `−½ Σ_c ((x_c − y_{state,c}) / σ_y)²`, 0 where the state is not observed.
    fn state_log_likelihood(
        &self,
        y: &[f64],
        state: usize,
        xs: &[f64],
        _device: &B::Device,
    ) -> Result<Vec<f64>> {
        let d = self.shape.dim;
        if !xs.len().is_multiple_of(d) || y.len() != self.states.len() * self.components.len() {
            return Err(Error::Shape(format!(
                "pick: {} values are not whole states of {d}, or y has {} values, not {}",
                xs.len(),
                y.len(),
                self.states.len() * self.components.len()
            )));
        }
        let Some(m) = self.states.iter().position(|&s| s == state) else {
            return Ok(vec![0.0; xs.len() / d]);
        };
        let nc = self.components.len();
        Ok(xs
            .par_chunks(d)
            .map(|x| {
                self.components
                    .iter()
                    .enumerate()
                    .map(|(j, &c)| -0.5 * ((x[c] - y[m * nc + j]) / self.sigma).powi(2))
                    .sum()
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!(
            "pick(states={:?}, components={:?}, sigma={})",
            self.states, self.components, self.sigma
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(components: Vec<usize>, component_every: Option<usize>) -> PickConfig {
        PickConfig {
            states: None,
            every: Some(4),
            components,
            component_every,
            sigma: 1.0,
        }
    }

    #[test]
    fn component_every_picks_every_nth_site_and_is_exclusive_with_components() {
        let shape = TrajectoryShape::new(9, 10);
        let pick = Pick::from_config(shape, config(Vec::new(), Some(4))).unwrap();
        assert_eq!(pick.components(), &[0, 4, 8]);
        assert_eq!(pick.states(), &[0, 4, 8]);
        let listed = Pick::from_config(shape, config(vec![0, 4, 8], None)).unwrap();
        assert_eq!(listed.components(), pick.components());
        for (c, every, message) in [
            (vec![0], Some(4), "exactly one of"),
            (Vec::new(), None, "exactly one of"),
            (Vec::new(), Some(0), "component_every must be ≥ 1"),
        ] {
            let err = Pick::from_config(shape, config(c, every)).unwrap_err();
            assert!(err.to_string().contains(message), "{err}");
        }
    }
}
