//! # sda — score-based data assimilation
//!
//! A Rust implementation of *Score-based Data Assimilation* (Rozet & Louppe, NeurIPS 2023).
//! SDA learns a diffusion (score) model of short trajectory segments of `2k + 1` states,
//! composes the local scores into the score of an arbitrarily long trajectory, and samples the
//! whole posterior `p(x_{1:L} | y)` at once by guiding the reverse diffusion with the
//! observation model, used only at inference.
//!
//! ## Layers (each module imports only from the layers above it in this list)
//! | layer | paper concept | module |
//! |---|---|---|
//! | 0 | diffusion schedule μ(t), σ(t); the ε-space convention | [`schedule`] |
//! | 0 | exact optimal transport (W1) | [`transport`] |
//! | 0 | PNG figures | [`plot`] |
//! | 1 | dynamical systems, `p(x_{i+1} | x_i)` | [`dynamics`] ([`dynamics::Dynamics`]) |
//! | 1 | pseudo Markov blanket, Algorithm 2 fold/unfold | [`blanket`] |
//! | 1 | local score ε_φ, the composed trajectory score, training (Algorithm 1) | [`score`] |
//! | 1 | a training folder's checkpoint, read once; the trained prior | [`checkpoint`] |
//! | 1 | observation model `N(y | A(x), Σ_y)` | [`observe`] |
//! | 1 | likelihood score (Algorithm 3, DPS) | [`guidance`] |
//! | 1 | predictor–corrector sampling (Algorithm 4), the posterior driver | [`sampler`] |
//! | 1 | posterior summary statistics | [`metrics`] |
//! | 1 | bootstrap particle filter (ground truth) | [`filter`] |
//! | 1 | datasets, their manifest, `.npy` and atomic writes | [`data`] |
//! | 1 | plugins by name (`inventory`) | [`registry`] |
//! | 2 | Lorenz-63, the linear-Gaussian oracle, the Kolmogorov flow | [`systems`] |
//! | 3 | generation, the oracle, Lorenz-63, Kolmogorov, the Figure-2 evaluation | [`experiments`] |
//! | 4 | the `sda` command line, one file per command | [`cli`] |
//!
//! Tensors (networks, guidance, sampling) are generic over a burn backend `B`; the binary uses
//! [`backend::DefaultBackend`]. Simulation and exact references are plain `f64`.

#![warn(missing_docs)]

// layer 0: foundations
pub mod backend;
mod error;
pub mod plot;
pub mod progress;
pub mod resources;
pub mod schedule;
pub mod transport;
// layer 1: the math core
pub mod blanket;
pub mod checkpoint;
pub mod data;
pub mod dynamics;
pub mod filter;
pub mod guidance;
pub mod methods;
pub mod metrics;
pub mod observe;
pub mod registry;
pub mod sampler;
pub mod score;
// layer 2: the built-in systems
pub mod systems;
// layer 3: the paper's experiments
pub mod experiments;
// layer 4: the command line
pub mod cli;

pub use error::{Error, Result};

/// The 64-bit FNV-1a hash of `bytes` (Fowler, Noll & Vo): the same on every build and platform,
/// unlike the standard library's hasher — what identifies a checkpoint's weights and what a
/// method's seed is derived from its name with, so that its results do not depend on the other
/// methods it is run beside.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The book's chapters as doc-tests: `cargo test` compiles and runs every Rust block in them
/// that is not `ignore` (those are `{{#include}}`s of examples, which cargo builds itself;
/// `tests/documented_commands.rs` checks that no other kind is ignored).
#[cfg(doctest)]
mod book {
    macro_rules! chapters {
        ($($name:ident = $file:literal),* $(,)?) => {
            $(#[doc = include_str!(concat!("../book/src/", $file))] struct $name;)*
        };
    }
    chapters!(
        Intro = "intro.md",
        Quickstart = "quickstart.md",
        Lorenz = "lorenz.md",
        KolmogorovSolver = "kolmogorov_solver.md",
        KolmogorovAssimilation = "kolmogorov_assimilation.md",
        CalibratedSampling = "calibrated_sampling.md",
        Baselines = "baselines.md",
        Lorenz96Sda = "lorenz96_sda.md",
        Lorenz96Arctan = "lorenz96_arctan.md",
        Traits = "traits.md",
        CustomObservation = "custom_observation.md",
        CustomSystem = "custom_system.md",
        CustomBlanket = "custom_blanket.md",
        CustomSampler = "custom_sampler.md",
        CustomGuidance = "custom_guidance.md",
        Reference = "reference.md",
        Summary = "SUMMARY.md",
    );
}

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
    pub use crate::dynamics::Dynamics;
    pub use crate::guidance::{Dps, Guidance, GuidancePoint, Guided, Mmps, SdaGaussian};
    pub use crate::observe::{ops::Pick, ObservationModel};
    pub use crate::sampler::{
        sample, Corrector, Ddim, Heun, PredictorCorrector, SampleOptions, Sampler, TimeGrid,
    };
    pub use crate::schedule::{NoiseSchedule, VpCosine, VpExp, VpLinear};
    pub use crate::score::{Composed, EpsilonModel, LocalScore};
    pub use crate::{Error, Result, TrajectoryShape};
}
