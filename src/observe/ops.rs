//! Built-in observation operators.
//!
//! Conventions: state and component indices are **0-based** (the paper's state `i` is index
//! `i − 1`; its "states 1, 6, 11, 16" are `[0, 5, 10, 15]`).

use burn::tensor::{backend::Backend, Tensor};

use std::ops::Range;

use rayon::prelude::*;

use super::{state_major_parts, ArctanLink, Link, ObservationModel};
use crate::backend::index_tensor;
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
    /// Observe `arctan(offset + scale · x)` of the picked values instead of x (with the
    /// standardisation's mean and scale: arctan of the physical value, the Ensemble Score Filter
    /// paper's non-linear observation).
    #[serde(default)]
    pub arctan: Option<ArctanLink>,
}

/// Observation of chosen components at chosen states:
/// `y = (x_{i, c})_{i ∈ states, c ∈ components} + η`, `η ~ N(0, σ_y² I)`,
/// ordered state-major, linear unless a pointwise [`Link`] is applied to the picked values
/// (`y = g(x_{i, c}) + η`, [`Pick::with_link`]). Example: the oracle observes component 0 at
/// states 0, 5, 10, 15.
#[derive(Debug, Clone)]
pub struct Pick {
    shape: TrajectoryShape,
    states: Vec<usize>,
    components: Vec<usize>,
    sigma: f64,
    link: Option<Link>,
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
            link: None,
        })
    }

    /// The same pick with the link `g` applied to each picked value: `y = g(x_{i, c}) + η`.
    pub fn with_link(mut self, link: Link) -> Self {
        self.link = Some(link);
        self
    }

    /// The link applied to the picked values, if any.
    pub fn link(&self) -> Option<Link> {
        self.link
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
        let pick = Self::new(shape, states, components, cfg.sigma)?;
        Ok(match cfg.arctan {
            Some(a) => pick.with_link(Link::arctan(a)?),
            None => pick,
        })
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
        let picked = x
            .select(1, index_tensor::<B>(&self.states, &device))
            .select(2, index_tensor::<B>(&self.components, &device))
            .reshape([n, self.states.len() * self.components.len()]);
        match &self.link {
            Some(link) => link.apply(picked),
            None => picked,
        }
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

    /// With a link: the link and the same pick without it.
    fn link(&self) -> Option<(Link, Box<dyn ObservationModel<B>>)> {
        let link = self.link?;
        let mut linear = self.clone();
        linear.link = None;
        Some((link, Box::new(linear)))
    }

    /// On the host, in parallel over the values:
    /// `−½ Σ_c ((g(x_c) − y_{state,c}) / σ_y)²` (g the identity without a link), 0 where the
    /// state is not observed.
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
                    .map(|(j, &c)| {
                        let v = self.link.map_or(x[c], |g| g.value(x[c]));
                        -0.5 * ((v - y[m * nc + j]) / self.sigma).powi(2)
                    })
                    .sum()
            })
            .collect())
    }

    fn describe(&self) -> String {
        let link = self
            .link
            .map_or(String::new(), |g| format!(", link={}", g.describe()));
        format!(
            "pick(states={:?}, components={:?}, sigma={}{link})",
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
            arctan: None,
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

    /// `arctan = { offset, scale }` from the parameters: A is arctan of the picked values, the
    /// linear part ([`ObservationModel::link`]) the same pick without it, the host likelihood of
    /// a state the one A gives on the device, and a bad link is refused by name.
    #[test]
    fn an_arctan_pick_reads_its_link_from_the_parameters() {
        use crate::backend::{from_host, to_host, DefaultBackend};
        let shape = TrajectoryShape::new(5, 4);
        let config = |text: &str| toml::from_str::<PickConfig>(text).unwrap();
        let pick = Pick::from_config(
            shape,
            config("every = 4\ncomponent_every = 2\nsigma = 0.1\narctan = { offset = 1.0, scale = 2.0 }"),
        )
        .unwrap();
        let model: &dyn ObservationModel<DefaultBackend> = &pick;
        let device = Default::default();
        let x: Vec<f64> = (0..20).map(|i| (i as f64 - 9.5) / 4.0).collect();
        let t = from_host::<DefaultBackend, 3>(&x, [1, 5, 4], &device);
        let a = to_host(model.apply(t.clone()));
        let (link, linear) = model.link().unwrap();
        let u = to_host(linear.apply(t));
        assert_eq!(u, vec![x[0], x[2], x[16], x[18]]);
        for (ai, ui) in a.iter().zip(&u) {
            assert!((ai - (1.0 + 2.0 * ui).atan()).abs() < 1e-6, "{ai} vs {ui}");
            assert!((ai - link.value(*ui)).abs() < 1e-6);
        }
        let y = [0.3, -0.2, 1.0, 1.2];
        let host = model
            .state_log_likelihood(&y, 4, &x[16..20], &device)
            .unwrap()[0];
        let expect = -0.5 * ((a[2] - y[2]).powi(2) + (a[3] - y[3]).powi(2)) / 0.01;
        assert!(
            (host - expect).abs() < 1e-3 * expect.abs(),
            "{host} vs {expect}"
        );
        assert!(model.describe().contains("arctan"), "{}", model.describe());
        let err = Pick::from_config(
            shape,
            config("every = 4\ncomponent_every = 2\nsigma = 0.1\narctan = { offset = 1.0, scale = 0.0 }"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("arctan link"), "{err}");
    }
}
