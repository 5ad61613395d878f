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
use crate::blanket::MarkovBlanket;
use crate::dynamics::Dynamics;
use crate::guidance::Guidance;
use crate::methods::window::WindowSmoother;
use crate::methods::Filter;
use crate::observe::ObservationModel;
use crate::sampler::Sampler;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result, TrajectoryShape};

mod builtin;

/// Typed parameters: `params::<T>(value)` deserialises a TOML table into `T`
/// (unknown keys are rejected when `T` uses `deny_unknown_fields`).
pub fn params<T: DeserializeOwned>(value: &toml::Value) -> Result<T> {
    value
        .clone()
        .try_into()
        .map_err(|e| Error::config(PARAMS_CONTEXT, e))
}

/// The context of a [`params`] error, which [`build_for`] replaces with the plugin's name.
const PARAMS_CONTEXT: &str = "plugin parameters";

/// Parses CLI parameters written as the inside of a TOML inline table,
/// e.g. `states = [0, 5], components = [0], sigma = 0.1` (empty string → empty table).
pub fn parse_params(text: &str) -> Result<toml::Value> {
    let doc = format!("p = {{ {text} }}");
    // the message alone: the error's own rendering would show the inline-table wrapper
    let mut table: toml::Table = toml::from_str(&doc).map_err(|e: toml::de::Error| {
        Error::config(
            format!("parameters '{text}'"),
            format!(
                "{} (write them as `key = value, …` in TOML: numbers like 0.5 or 1e-3, \
                 strings in quotes, lists in [ ])",
                e.message().trim()
            ),
        )
    })?;
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

/// A classical data-assimilation method (a filter) by name.
pub struct MethodPlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Box<dyn Filter>>,
}

/// A classical window smoother by name: it samples a whole observed window, scored beside SDA
/// and the particle filter (`sda evaluate --smoother`).
pub struct SmootherPlugin {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Constructor from parameters.
    pub build: fn(&toml::Value) -> Result<Box<dyn WindowSmoother>>,
}

inventory::collect!(SystemPlugin);
inventory::collect!(MethodPlugin);
inventory::collect!(SmootherPlugin);
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
plugin!(MethodPlugin, "method");
plugin!(SmootherPlugin, "smoother");

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

/// A registry whose entries construct something: the one path from a name and its parameters
/// to a value ([`build`], [`build_for`]), so a command never reaches into an entry itself.
pub trait Build: Plugin + inventory::Collect {
    /// What an entry constructs.
    type Output;
    /// What the constructor needs besides the parameters: `()` for most registries, the
    /// trajectory shape for an observation model.
    type Input;
    /// Runs the entry's constructor.
    fn construct(&self, params: &toml::Value, input: Self::Input) -> Result<Self::Output>;
}

macro_rules! build {
    ($t:ty, $out:ty) => {
        impl Build for $t {
            type Output = $out;
            type Input = ();
            fn construct(&self, params: &toml::Value, _: ()) -> Result<$out> {
                (self.build)(params)
            }
        }
    };
}
build!(SystemPlugin, Box<dyn Dynamics>);
build!(BlanketPlugin, Box<dyn MarkovBlanket<DefaultBackend>>);
build!(SamplerPlugin, Box<dyn Sampler<DefaultBackend>>);
build!(SchedulePlugin, Arc<dyn NoiseSchedule>);
build!(GuidancePlugin, Box<dyn Guidance<DefaultBackend>>);
build!(MethodPlugin, Box<dyn Filter>);
build!(SmootherPlugin, Box<dyn WindowSmoother>);

impl Build for ObservationPlugin {
    type Output = Box<dyn ObservationModel<DefaultBackend>>;
    type Input = TrajectoryShape;
    fn construct(&self, params: &toml::Value, shape: TrajectoryShape) -> Result<Self::Output> {
        (self.build)(params, shape)
    }
}

/// The plugin registered as `name` in registry `K`, built from `params`: an unknown name is an
/// error listing the registered ones, a bad parameter one naming it.
///
/// ```
/// use sda::registry::{build, parse_params, SamplerPlugin};
/// let pc = build::<SamplerPlugin>("pc", &parse_params("corrections = 1, tau = 0.25").unwrap());
/// assert!(pc.is_ok());
/// assert!(build::<SamplerPlugin>("no-such-sampler", &parse_params("").unwrap()).is_err());
/// ```
pub fn build<K: Build<Input = ()>>(name: &str, params: &toml::Value) -> Result<K::Output> {
    build_for::<K>(name, params, ())
}

/// [`build`] for a registry whose constructor also takes an input (an observation model's
/// trajectory shape).
pub fn build_for<K: Build>(name: &str, params: &toml::Value, input: K::Input) -> Result<K::Output> {
    find::<K>(name)?
        .construct(params, input)
        .map_err(|e| match e {
            // a parameter the plugin's own config refused: name the plugin, on one line
            Error::Config { context, message } if context == PARAMS_CONTEXT => Error::Config {
                context: format!("the parameters of {} '{name}'", K::KIND),
                message: message.split_whitespace().collect::<Vec<_>>().join(" "),
            },
            e => e,
        })
}

/// The parameters of a plugin that takes none: any key is an error.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// A method scored over a window by name (`sda evaluate --smoother NAME`): the window smoother
/// registered as `name`, or else the ensemble filter (a [`MethodPlugin`]) registered as `name`
/// run through the window ([`WindowFilter`](crate::methods::window_filter::WindowFilter), its
/// parameters checked once here). An unknown name is an error listing both registries.
pub fn window_method(name: &str, params: &toml::Value) -> Result<Box<dyn WindowSmoother>> {
    if find::<SmootherPlugin>(name).is_ok() {
        return build::<SmootherPlugin>(name, params);
    }
    let Ok(filter) = find::<MethodPlugin>(name) else {
        let known = entries::<SmootherPlugin>()?
            .iter()
            .map(|e| e.name().to_string())
            .chain(
                entries::<MethodPlugin>()?
                    .iter()
                    .map(|e| format!("{} (filter)", e.name())),
            )
            .collect();
        return Err(Error::UnknownPlugin {
            kind: "smoother or filter",
            name: name.to_string(),
            known,
        });
    };
    let first = build::<MethodPlugin>(name, params)?;
    let params = params.clone();
    let make = filter.build;
    Ok(Box::new(crate::methods::window_filter::WindowFilter::new(
        first.as_ref(),
        Box::new(move || make(&params)),
    )?))
}
