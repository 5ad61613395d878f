//! # sda — score-based data assimilation
//!
//! A Rust implementation of *Score-based Data Assimilation* (Rozet & Louppe, NeurIPS 2023).
//! SDA learns a diffusion (score) model of short trajectory segments of `2k + 1` states,
//! composes the local scores into the score of an arbitrarily long trajectory, and samples the
//! whole posterior `p(x_{1:L} | y)` at once by guiding the reverse diffusion with the
//! observation model, used only at inference.
//!
//! ## Module map (data flows top to bottom)
//! | paper concept | module |
//! |---|---|
//! | dynamical systems, `p(x_{i+1} | x_i)` | [`systems`] ([`systems::Dynamics`]) |
//! | diffusion schedule μ(t), σ(t); the ε-space convention | [`schedule`] |
//! | pseudo Markov blanket, Algorithm 2 fold/unfold | [`blanket`] |
//! | local score ε_φ and the composed trajectory score | [`score`] |
//! | observation model `N(y | A(x), Σ_y)` | [`observe`] |
//! | likelihood score (Algorithm 3, DPS) | [`guidance`] |
//! | predictor–corrector sampling (Algorithm 4) | [`sampler`] |
//! | posterior summary statistics | [`metrics`] |
//! | exact optimal transport (W1) | [`transport`] |
//! | bootstrap particle filter (ground truth) | [`filter`] |
//! | the exact linear-Gaussian oracle experiment | [`oracle`] |
//! | a trained state-vector prior and its units; posteriors in physical units | [`vector`] |
//! | the Figure-2 evaluation against particle filters | [`evaluate`] |
//! | the Lorenz-63 experiment | [`lorenz`] |
//! | the Kolmogorov-flow experiment | [`flow`] |
//! | PNG figures | [`plot`] |
//! | plugins by name (`inventory`) | [`registry`] |
//!
//! Tensors (networks, guidance, sampling) are generic over a burn backend `B`; the binary uses
//! [`backend::DefaultBackend`]. Simulation and exact references are plain `f64`.

#![warn(missing_docs)]

pub mod backend;
pub mod blanket;
pub mod cli;
pub mod data;
mod error;
pub mod evaluate;
pub mod filter;
pub mod flow;
pub mod generate;
pub mod guidance;
pub mod lorenz;
pub mod metrics;
pub mod observe;
pub mod oracle;
pub mod plot;
pub mod registry;
pub mod sampler;
pub mod schedule;
pub mod score;
pub mod systems;
pub mod transport;
pub mod vector;

pub use error::{Error, Result};

/// The shape of a trajectory: `len` states (L) of flattened dimension `dim` (D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrajectoryShape {
    /// Number of states L.
    pub len: usize,
    /// Flattened state dimension D.
    pub dim: usize,
}

impl TrajectoryShape {
    /// A shape of `len` states of dimension `dim`.
    pub fn new(len: usize, dim: usize) -> Self {
        Self { len, dim }
    }
}

/// The items most programs need.
pub mod prelude {
    pub use crate::backend::{default_device, DefaultBackend, NoiseSource};
    pub use crate::blanket::{MarkovBlanket, TemporalWindow};
    pub use crate::guidance::{Dps, Guidance, Guided, SdaGaussian};
    pub use crate::observe::{ops::Pick, ObservationModel};
    pub use crate::sampler::{sample, PredictorCorrector, SampleOptions, Sampler};
    pub use crate::schedule::{NoiseSchedule, VpCosine, VpExp, VpLinear};
    pub use crate::score::{Composed, EpsilonModel, LocalScore};
    pub use crate::systems::Dynamics;
    pub use crate::{Error, Result, TrajectoryShape};
}
