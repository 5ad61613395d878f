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
use crate::registry::{self, parse_params, BlanketPlugin, ObservationPlugin};
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
            "observation",
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
        let (name, params) = self.named()?;
        registry::build_for::<ObservationPlugin>(&name, &params, shape)
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

    /// The name and the parsed parameters.
    pub fn named(&self) -> Result<(String, toml::Value)> {
        plugin_params(
            "guidance",
            self.guidance.clone(),
            self.guidance_params.clone(),
            D::GUIDANCE,
        )
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
            "sampler",
            self.sampler.clone(),
            self.sampler_params.clone(),
            D::SAMPLER,
        )
    }
}

/// The sampling settings `oracle`, `assimilate` and `evaluate` share: `--samples N --steps S
/// --seed S`, and `--gamma`, `--tau`, `--corrections` over the parameters of the `sda`
/// guidance (γ, Algorithm 3) and of the `pc` sampler (τ and C, Algorithm 4).
#[derive(clap::Args, Debug)]
pub struct SamplingArgs<D: Defaults> {
    /// Posterior samples (per observation in `evaluate`, where they are also the particle
    /// filters' trajectories).
    #[arg(long, default_value = D::SAMPLES)]
    pub samples: usize,
    /// Reverse-diffusion steps.
    #[arg(long, default_value = D::STEPS)]
    pub steps: usize,
    /// How the steps are spaced in t: uniform (the paper's), log-snr (uniform in
    /// ln(μ/σ)), edm (the ρ = 7 power grid of Karras et al. in σ/μ) or edm:RHO.
    #[arg(long, default_value = "uniform")]
    pub time_grid: crate::sampler::TimeGrid,
    /// Seed of the observation noise, the sampler and (in `evaluate`) the particle filters.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// γ of the `sda` guidance (Algorithm 3), over its parameters.
    #[arg(long)]
    gamma: Option<f64>,
    /// τ of the `pc` sampler (Algorithm 4), over its parameters.
    #[arg(long)]
    tau: Option<f64>,
    /// Corrections C of the `pc` sampler (Algorithm 4), comma-separated: one row each in
    /// `oracle` and `evaluate` (where the default is 0,1,2,4 unless a --sampler or --smoother
    /// is given),
    /// one value in `assimilate`.
    #[arg(long, value_delimiter = ',')]
    corrections: Option<Vec<usize>>,
    #[arg(skip)]
    defaults: PhantomData<D>,
}

impl<D: Defaults> SamplingArgs<D> {
    /// The guidance of `g` with `--gamma` set; an error if γ is not positive and finite, the
    /// guidance is not `sda`, or --guidance-params gives γ too.
    pub fn guidance(&self, g: &GuidanceArgs<D>) -> Result<(String, toml::Value)> {
        let mut named = g.named()?;
        if let Some(gamma) = self.gamma {
            if !(gamma.is_finite() && gamma > 0.0) {
                return Err(invalid(format!(
                    "--gamma must be positive and finite, got {gamma}"
                )));
            }
            let flag = ("--gamma", "gamma", gamma.into());
            named = set_by_flag(named, &g.guidance_params, ("guidance", "sda"), flag)?;
        }
        Ok(named)
    }

    /// The sampler of `s` with `--tau` and C = `corrections` set; an error if τ is not
    /// positive and finite, the sampler is not `pc`, or --sampler-params gives them too.
    pub fn sampler(
        &self,
        s: &SamplerArgs<D>,
        corrections: Option<usize>,
    ) -> Result<(String, toml::Value)> {
        let mut named = s.named()?;
        if let Some(tau) = self.tau()? {
            let flag = ("--tau", "tau", tau.into());
            named = set_by_flag(named, &s.sampler_params, ("sampler", "pc"), flag)?;
        }
        if let Some(c) = corrections {
            let c = i64::try_from(c)
                .map_err(|_| invalid(format!("--corrections {c} is beyond any run")))?;
            let flag = ("--corrections", "corrections", c.into());
            named = set_by_flag(named, &s.sampler_params, ("sampler", "pc"), flag)?;
        }
        Ok(named)
    }

    /// `--tau`, checked positive and finite.
    pub fn tau(&self) -> Result<Option<f64>> {
        match self.tau {
            Some(tau) if !(tau.is_finite() && tau > 0.0) => Err(invalid(format!(
                "--tau must be positive and finite, got {tau}"
            ))),
            tau => Ok(tau),
        }
    }

    /// `--corrections`, as given.
    pub fn corrections(&self) -> Option<&[usize]> {
        self.corrections.as_deref()
    }

    /// The one `--corrections` value of a command that runs one sampler.
    pub fn one_correction(&self) -> Result<Option<usize>> {
        match self.corrections() {
            None => Ok(None),
            Some([c]) => Ok(Some(*c)),
            Some(list) => Err(invalid(format!(
                "--corrections takes one value in this command, got {list:?}; `oracle` and \
                 `evaluate` take a list (one row each)"
            ))),
        }
    }
}

fn invalid(message: String) -> crate::Error {
    crate::Error::Invalid(message)
}

/// `named` with a flag's `key = value` set over the defaults: the flag applies to the `plugin`
/// of its `kind` only, and may not be given again in the `--{kind}-params` text `given`.
fn set_by_flag(
    named: (String, toml::Value),
    given: &Option<String>,
    (kind, plugin): (&str, &str),
    (flag, key, value): (&str, &str, toml::Value),
) -> Result<(String, toml::Value)> {
    let (name, mut params) = named;
    if name != plugin {
        return Err(invalid(format!(
            "{flag} sets a parameter of the `{plugin}` {kind}; give those of `{name}` with \
             --{kind}-params"
        )));
    }
    if parse_params(given.as_deref().unwrap_or(""))?
        .get(key)
        .is_some()
    {
        return Err(invalid(format!(
            "{key} is given twice, by {flag} and in --{kind}-params: give it once"
        )));
    }
    if let Some(table) = params.as_table_mut() {
        table.insert(key.into(), value);
    }
    Ok((name, params))
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
#[derive(clap::Args, Debug, Clone)]
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
            "blanket",
            self.blanket,
            self.blanket_params,
            ("temporal-window", &format!("k = {k}")),
        )
    }

    /// The registered blanket for a local score of half-width `k` (see [`named`](Self::named)).
    pub fn build(self, k: usize) -> Result<Box<dyn MarkovBlanket<DefaultBackend>>> {
        let (name, params) = self.named(k)?;
        registry::build::<BlanketPlugin>(&name, &params)
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
/// would be unknown fields to it). A parse error names the flag `--{kind}-params`.
pub fn plugin_params(
    kind: &str,
    name: String,
    given: Option<String>,
    default: (&str, &str),
) -> Result<(String, toml::Value)> {
    let given = parse_params(given.as_deref().unwrap_or(""))
        .map_err(|e| crate::Error::Invalid(format!("--{}-params: {e}", kind)))?;
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
