//! What several commands share: the clap groups that choose a plugin by name with its
//! parameters (observation, guidance, sampler, the blanket of a trained network), the trained
//! run and its dataset, the sampling sizes; `--config` files; the dataset a run is used on.
//!
//! A group is generic over the command's defaults ([`Defaults`]), so each command keeps its
//! own default plugins and sizes while the flags, their help and their parsing live here once.
//! A command's default parameters go to its default plugin only, under those given: any other
//! plugin takes only the given ones and its own defaults (another plugin's would be unknown
//! fields to it).

use std::marker::PhantomData;

use crate::backend::DefaultBackend;
use crate::blanket::MarkovBlanket;
use crate::data::Manifest;
use crate::registry::{self, parse_params, BlanketPlugin, GuidancePlugin, ObservationPlugin};
use crate::{Result, TrajectoryShape};

/// A command's defaults for the shared groups: each plugin as `(name, parameters)`.
pub trait Defaults: std::fmt::Debug + Send + Sync + 'static {
    /// The observation and its parameters.
    const OBSERVATION: (&'static str, &'static str);
    /// The guidance and its parameters.
    const GUIDANCE: (&'static str, &'static str);
    /// The sampler and its parameters.
    const SAMPLER: (&'static str, &'static str);
    /// Posterior samples, as the flag's default text (a string, so that each command's
    /// instance of the generic group keeps its own).
    const SAMPLES: &'static str;
    /// Reverse-diffusion steps, as the flag's default text.
    const STEPS: &'static str;
    /// Whether the command also takes the guidance name `exact` (the exact posterior ε).
    const EXACT_GUIDANCE: bool = false;
}

/// The help of a `--…-params` flag, naming the command's default.
fn params_help(kind: &str, default: (&str, &str)) -> String {
    let mut noun = kind.to_string();
    noun[..1].make_ascii_uppercase();
    format!(
        "{noun} parameters, as the inside of a TOML inline table, over the defaults [default \
         for `{}`: \"{}\"; any other {kind} gets only its own defaults]",
        default.0, default.1
    )
}

/// `--observation NAME --observation-params '…'`: a registered observation model.
#[derive(clap::Args, Debug)]
pub struct ObservationArgs<D: Defaults> {
    /// Observation plugin (`sda list`).
    #[arg(long, default_value = D::OBSERVATION.0)]
    observation: String,
    #[arg(long, help = params_help("observation", D::OBSERVATION))]
    observation_params: Option<String>,
    #[arg(skip)]
    defaults: PhantomData<D>,
}

impl<D: Defaults> ObservationArgs<D> {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.observation
    }

    /// The name and the parsed parameters.
    pub fn named(&self) -> Result<(String, toml::Value)> {
        plugin_params(
            self.observation.clone(),
            self.observation_params.clone(),
            D::OBSERVATION,
        )
    }

    /// The registered plugin; an error listing the registered ones for an unknown name.
    pub fn plugin(&self) -> Result<&'static ObservationPlugin> {
        registry::find::<ObservationPlugin>(&self.observation)
    }

    /// The model, built for trajectories of `shape`.
    pub fn build(
        &self,
        shape: TrajectoryShape,
    ) -> Result<Box<dyn crate::observe::ObservationModel<DefaultBackend>>> {
        let (_, params) = self.named()?;
        (self.plugin()?.build)(&params, shape)
    }
}

fn guidance_help(exact: bool) -> &'static str {
    match exact {
        true => "Guidance plugin (`sda list`); `exact` samples the exact posterior ε instead",
        false => "Guidance plugin (`sda list`)",
    }
}

/// `--guidance NAME --guidance-params '…'`: a registered likelihood-score approximation.
#[derive(clap::Args, Debug)]
pub struct GuidanceArgs<D: Defaults> {
    #[arg(long, default_value = D::GUIDANCE.0, help = guidance_help(D::EXACT_GUIDANCE))]
    guidance: String,
    #[arg(long, help = params_help("guidance", D::GUIDANCE))]
    guidance_params: Option<String>,
    #[arg(skip)]
    defaults: PhantomData<D>,
}

impl<D: Defaults> GuidanceArgs<D> {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.guidance
    }

    /// The name and the parsed parameters, the default guidance taking `default_params`
    /// instead of the command's when given (e.g. from a `--gamma` flag).
    pub fn named(&self, default_params: Option<&str>) -> Result<(String, toml::Value)> {
        let default = (D::GUIDANCE.0, default_params.unwrap_or(D::GUIDANCE.1));
        plugin_params(self.guidance.clone(), self.guidance_params.clone(), default)
    }

    /// The guidance, built (see [`named`](Self::named) for `default_params`).
    pub fn build(
        &self,
        default_params: Option<&str>,
    ) -> Result<Box<dyn crate::guidance::Guidance<DefaultBackend>>> {
        let (name, params) = self.named(default_params)?;
        (registry::find::<GuidancePlugin>(&name)?.build)(&params)
    }
}

/// `--sampler NAME --sampler-params '…'`: a registered sampler.
#[derive(clap::Args, Debug)]
pub struct SamplerArgs<D: Defaults> {
    /// Sampler plugin (`sda list`).
    #[arg(long, default_value = D::SAMPLER.0)]
    sampler: String,
    #[arg(long, help = params_help("sampler", D::SAMPLER))]
    sampler_params: Option<String>,
    #[arg(skip)]
    defaults: PhantomData<D>,
}

impl<D: Defaults> SamplerArgs<D> {
    /// The name and the parsed parameters.
    pub fn named(&self) -> Result<(String, toml::Value)> {
        plugin_params(
            self.sampler.clone(),
            self.sampler_params.clone(),
            D::SAMPLER,
        )
    }
}

/// `--samples N --steps S`: how many posterior trajectories, in how many reverse steps.
#[derive(clap::Args, Debug)]
pub struct SamplingArgs<D: Defaults> {
    /// Posterior samples (per observation in `evaluate`, where they are also the particle
    /// filters' trajectories).
    #[arg(long, default_value = D::SAMPLES)]
    pub samples: usize,
    /// Reverse-diffusion steps.
    #[arg(long, default_value = D::STEPS)]
    pub steps: usize,
    #[arg(skip)]
    defaults: PhantomData<D>,
}

/// `--run DIR --data DIR` and the blanket: a trained local score and the dataset it is used
/// on (`assimilate`, `evaluate`).
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Training folder of the local score (its checkpoint and architecture).
    #[arg(long)]
    pub run: String,
    /// Dataset folder (the truth comes from its test split unless the command says otherwise).
    #[arg(long, default_value = "data/lorenz63")]
    pub data: String,
    #[command(flatten)]
    pub blanket: BlanketArgs,
}

/// `--blanket NAME --blanket-params '…'`: the blanket a local score of half-width k is
/// composed with, by name (k is the checkpoint's in `assimilate` and `evaluate`, 2 in `oracle`).
#[derive(clap::Args, Debug)]
pub struct BlanketArgs {
    /// Blanket plugin: how a trajectory is cut into the network's windows of 2k+1 states
    /// and their outputs composed (Algorithm 2).
    #[arg(long, default_value = "temporal-window")]
    blanket: String,
    /// Blanket parameters [default for `temporal-window`: "k = " the network's k, the
    /// checkpoint's (2 in `oracle`); any other blanket gets only its own defaults].
    #[arg(long)]
    blanket_params: Option<String>,
}

impl BlanketArgs {
    /// The name and parameters for a local score of half-width `k`: `temporal-window`
    /// without parameters takes k.
    pub fn named(self, k: usize) -> Result<(String, toml::Value)> {
        plugin_params(
            self.blanket,
            self.blanket_params,
            ("temporal-window", &format!("k = {k}")),
        )
    }

    /// The registered blanket for a local score of half-width `k` (see [`named`](Self::named)).
    pub fn build(self, k: usize) -> Result<Box<dyn MarkovBlanket<DefaultBackend>>> {
        let (name, params) = self.named(k)?;
        (registry::find::<BlanketPlugin>(&name)?.build)(&params)
    }
}

/// A configuration file (`--config`) read as TOML into `T`; a missing file or an unknown or
/// mistyped field is an error naming the file.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| crate::Error::config(path, e))
}

/// A plugin's name with its parameters. For the command's default plugin
/// (`default = (plugin, parameters)`) the parameters given on the command line are merged over
/// the command's defaults (`--sampler-params 'tau = 0.5'` keeps the default C); any other
/// plugin takes only those given, and its own defaults for the rest (another plugin's defaults
/// would be unknown fields to it).
pub fn plugin_params(
    name: String,
    given: Option<String>,
    default: (&str, &str),
) -> Result<(String, toml::Value)> {
    let given = parse_params(given.as_deref().unwrap_or(""))?;
    if name != default.0 {
        return Ok((name, given));
    }
    let mut params = parse_params(default.1)?;
    merge_params(&mut params, given);
    Ok((name, params))
}

/// Parameters `over` merged over `base`, key by key (a key in both takes `over`'s value).
pub fn merge_params(base: &mut toml::Value, over: toml::Value) {
    match (base.as_table_mut(), over) {
        (Some(base), toml::Value::Table(over)) => base.extend(over),
        (_, over) => *base = over,
    }
}

/// The manifest of the dataset folder `data`, if it has one; an error if it was made by another
/// system than the one the training folder `run` learned.
pub fn dataset_of(data: &str, trained_on: &str, run: &str) -> Result<Option<Manifest>> {
    let manifest = Manifest::read(data.as_ref())?;
    if let Some(m) = manifest.as_ref().filter(|m| m.system != trained_on) {
        return Err(crate::Error::Invalid(format!(
            "{data} holds {} data; the run {run} was trained on {trained_on}",
            m.system
        )));
    }
    Ok(manifest)
}
