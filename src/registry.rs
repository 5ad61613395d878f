//! Plugins by name, through `inventory`.
//!
//! Each registry entry is a name, a one-line description and a constructor from typed
//! parameters (a TOML table deserialised into the implementation's own config struct with
//! `deny_unknown_fields`, so typos are errors). Any crate linked into the program — the
//! library, an example, a user's binary, a test — registers with `inventory::submit!`; the
//! CLI then finds it by name. Registries are typed at [`DefaultBackend`], the backend chosen
//! once for the program; the generic traits remain the core API.
//!
//! ```ignore
//! inventory::submit! {
//!     sda::registry::ObservationPlugin {
//!         name: "my-observation",
//!         description: "what it observes",
//!         build: |params, shape| Ok(Box::new(MyObservation::new(shape, sda::registry::params(params)?)?)),
//!     }
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::backend::DefaultBackend;
use crate::blanket::{MarkovBlanket, TemporalWindow};
use crate::guidance::{Dps, Guidance, SdaGaussian};
use crate::observe::{
    ops::{Pick, PickConfig},
    ObservationModel,
};
use crate::sampler::{PredictorCorrector, Sampler};
use crate::schedule::{check_eta, NoiseSchedule, VpCosine, VpExp, VpLinear};
use crate::systems::{linear_gaussian::LinearGaussian, Dynamics};
use crate::{Error, Result, TrajectoryShape};

/// Typed parameters: `params::<T>(value)` deserialises a TOML table into `T`
/// (unknown keys are rejected when `T` uses `deny_unknown_fields`).
pub fn params<T: DeserializeOwned>(value: &toml::Value) -> Result<T> {
    value
        .clone()
        .try_into()
        .map_err(|e| Error::config("plugin parameters", e))
}

/// Parses CLI parameters written as the inside of a TOML inline table,
/// e.g. `states = [0, 5], components = [0], sigma = 0.1` (empty string → empty table).
pub fn parse_params(text: &str) -> Result<toml::Value> {
    let doc = format!("p = {{ {text} }}");
    let mut table: toml::Table =
        toml::from_str(&doc).map_err(|e| Error::config(format!("parameters '{text}'"), e))?;
    Ok(table.remove("p").expect("key p was written above"))
}

/// A dynamical system by name.
pub struct SystemPlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Box<dyn Dynamics>>,
}

/// Constructor of a registered observation model: parameters and trajectory shape in.
pub type ObservationBuilder =
    fn(&toml::Value, TrajectoryShape) -> Result<Box<dyn ObservationModel<DefaultBackend>>>;

/// An observation model by name, built for a trajectory shape.
pub struct ObservationPlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters and the trajectory shape.
    pub build: ObservationBuilder,
}

/// A Markov blanket by name.
pub struct BlanketPlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Box<dyn MarkovBlanket<DefaultBackend>>>,
}

/// A sampler by name.
pub struct SamplerPlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Box<dyn Sampler<DefaultBackend>>>,
}

/// A noise schedule by name.
pub struct SchedulePlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Arc<dyn NoiseSchedule>>,
}

/// A likelihood-score approximation by name.
pub struct GuidancePlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Box<dyn Guidance<DefaultBackend>>>,
}

inventory::collect!(SystemPlugin);
inventory::collect!(ObservationPlugin);
inventory::collect!(BlanketPlugin);
inventory::collect!(SamplerPlugin);
inventory::collect!(SchedulePlugin);
inventory::collect!(GuidancePlugin);

/// What every registry entry exposes.
pub trait Plugin: 'static {
    /// The registry's noun, for messages.
    const KIND: &'static str;
    /// Registered name.
    fn name(&self) -> &'static str;
    /// One-line description.
    fn description(&self) -> &'static str;
}

macro_rules! plugin {
    ($t:ty, $kind:literal) => {
        impl Plugin for $t {
            const KIND: &'static str = $kind;
            fn name(&self) -> &'static str {
                self.name
            }
            fn description(&self) -> &'static str {
                self.description
            }
        }
    };
}
plugin!(SystemPlugin, "system");
plugin!(ObservationPlugin, "observation");
plugin!(BlanketPlugin, "blanket");
plugin!(SamplerPlugin, "sampler");
plugin!(SchedulePlugin, "schedule");
plugin!(GuidancePlugin, "guidance");

/// All entries of a registry, sorted by name; an error if two share a name.
pub fn entries<T>() -> Result<Vec<&'static T>>
where
    T: Plugin + inventory::Collect,
{
    let mut map: BTreeMap<&'static str, &'static T> = BTreeMap::new();
    for e in inventory::iter::<T> {
        if map.insert(e.name(), e).is_some() {
            return Err(Error::DuplicatePlugin {
                kind: T::KIND,
                name: e.name().to_string(),
            });
        }
    }
    Ok(map.into_values().collect())
}

/// The entry registered as `name`, or an error listing the registered names.
pub fn find<T>(name: &str) -> Result<&'static T>
where
    T: Plugin + inventory::Collect,
{
    let all = entries::<T>()?;
    all.iter()
        .find(|e| e.name() == name)
        .copied()
        .ok_or_else(|| Error::UnknownPlugin {
            kind: T::KIND,
            name: name.to_string(),
            known: all.iter().map(|e| e.name().to_string()).collect(),
        })
}

// ---- built-in registrations -------------------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowParams {
    k: usize,
}

inventory::submit! {
    SystemPlugin {
        name: "linear-gaussian",
        description: "oracle: x' = 0.95 R(0.3) x + N(0, 0.1 I), stationary prior, exact posterior",
        build: |p| {
            let NoParams {} = params(p)?;
            Ok(Box::new(LinearGaussian::oracle()))
        },
    }
}

inventory::submit! {
    SystemPlugin {
        name: "lorenz63",
        description: "Lorenz-63 (sigma 10, rho 28, beta 8/3), RK4 step dt + N(0, dt I): sigma, rho, beta, dt (defaults: paper)",
        build: |p| {
            let s: crate::systems::lorenz63::Lorenz63 = params(p)?;
            s.check()?;
            Ok(Box::new(s))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "lo",
        description: "Lorenz-63 'lo' (paper Fig. 2): standardised a at every 8th state, sigma 0.05",
        build: |p, shape| {
            let NoParams {} = params(p)?;
            Ok(Box::new(Pick::from_config(shape, crate::lorenz::preset("lo").expect("preset"))?))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "hi",
        description: "Lorenz-63 'hi' (paper Fig. 2): standardised a at every state, sigma 0.25",
        build: |p, shape| {
            let NoParams {} = params(p)?;
            Ok(Box::new(Pick::from_config(shape, crate::lorenz::preset("hi").expect("preset"))?))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "pick",
        description: "chosen components at chosen states + N(0, sigma²): states=[..] | every=n, components=[..], sigma",
        build: |p, shape| Ok(Box::new(Pick::from_config(shape, params::<PickConfig>(p)?)?)),
    }
}

inventory::submit! {
    BlanketPlugin {
        name: "temporal-window",
        description: "windows x_{i-k:i+k} of 2k+1 states (Algorithm 2): k",
        build: |p| Ok(Box::new(TemporalWindow::new(params::<WindowParams>(p)?.k)?)),
    }
}

inventory::submit! {
    SamplerPlugin {
        name: "pc",
        description: "predictor-corrector, Algorithm 4: corrections (C, default 0), tau (default 0.25)",
        build: |p| {
            let c: PredictorCorrector = params(p)?;
            Ok(Box::new(PredictorCorrector::new(c.corrections, c.tau)?))
        },
    }
}

inventory::submit! {
    SamplerPlugin {
        name: "ddim",
        description: "deterministic DDIM / exponential integrator (predictor only, C = 0)",
        build: |p| {
            let NoParams {} = params(p)?;
            Ok(Box::new(PredictorCorrector::ddim()))
        },
    }
}

inventory::submit! {
    SchedulePlugin {
        name: "vp-cosine",
        description: "mu = cos(omega t)^2, omega = arccos sqrt(eta) (paper): eta (default 1e-3)",
        build: |p| { let s: VpCosine = params(p)?; check_eta(s.eta)?; Ok(Arc::new(s)) },
    }
}

inventory::submit! {
    SchedulePlugin {
        name: "vp-linear",
        description: "mu = 1 - (1 - eta) t: eta (default 1e-3)",
        build: |p| { let s: VpLinear = params(p)?; check_eta(s.eta)?; Ok(Arc::new(s)) },
    }
}

inventory::submit! {
    SchedulePlugin {
        name: "vp-exp",
        description: "mu = exp(ln(eta) t^2): eta (default 1e-3)",
        build: |p| { let s: VpExp = params(p)?; check_eta(s.eta)?; Ok(Arc::new(s)) },
    }
}

inventory::submit! {
    GuidancePlugin {
        name: "sda",
        description: "Algorithm 3: v = Sigma_y + (sigma/mu)^2 gamma: gamma",
        build: |p| Ok(Box::new(SdaGaussian::new(params::<SdaGaussian>(p)?.gamma)?)),
    }
}

inventory::submit! {
    GuidancePlugin {
        name: "dps",
        description: "diffusion posterior sampling, per-sample norm: zeta",
        build: |p| Ok(Box::new(Dps::new(params::<Dps>(p)?.zeta)?)),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldParams {
    ops: Vec<crate::observe::field::FieldOp>,
    sigma: f64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StrideParams {
    stride: usize,
}

fn field_preset(
    p: &toml::Value,
    shape: TrajectoryShape,
    scenario: crate::observe::field::FieldScenario,
) -> Result<Box<dyn ObservationModel<DefaultBackend>>> {
    let NoParams {} = params(p)?;
    let grid = crate::observe::field::grid_of(shape)?;
    Ok(Box::new(scenario.build(shape.len, grid)?))
}

inventory::submit! {
    ObservationPlugin {
        name: "field",
        description: "pipeline on (u, v) fields: ops = [{every-state = {every = 4}}, {pool = {factor = 8}}, \"vorticity\", ...], sigma",
        build: |p, shape| {
            let f: FieldParams = params(p)?;
            let grid = crate::observe::field::grid_of(shape)?;
            Ok(Box::new(crate::observe::field::FieldObservation::new(shape.len, grid, f.ops, f.sigma)?))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-assimilation",
        description: "Kolmogorov: every 4th state, 8x8 mean pooling, sigma 0.1",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Assimilation),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-extrapolation",
        description: "Kolmogorov: states 0, 3, 6 pooled 4x, centre crop [4:12], sigma 0.01",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Extrapolation),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-saturation",
        description: "Kolmogorov: every 3rd state pooled 4x, vorticity w (grid units), w/(1+|w|), crop [2:14], sigma 0.05",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Saturation),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-subsampling",
        description: "Kolmogorov: every stride-th grid point of every state, sigma 0.1: stride",
        build: |p, shape| {
            let s: StrideParams = params(p)?;
            let grid = crate::observe::field::grid_of(shape)?;
            Ok(Box::new(crate::observe::field::FieldScenario::Subsampling(s.stride).build(shape.len, grid)?))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-circle",
        description: "Kolmogorov: vorticity (grid units) of the last state on the ring 0.4 < r^2 < 0.6, sigma 0.2 (y = 0.6)",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Circle),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-loop",
        description: "Kolmogorov: loop closure x_1 - x_L, sigma 0.01 (y = 0)",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Loop),
    }
}
