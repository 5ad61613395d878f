//! What several commands share: the blanket of a trained network chosen by name, plugin
//! parameters with a command's defaults, `--config` files, and the dataset a run is used on.

use crate::backend::DefaultBackend;
use crate::blanket::MarkovBlanket;
use crate::data::Manifest;
use crate::registry::{self, parse_params, BlanketPlugin};
use crate::Result;

/// The blanket a trained network is composed with (`assimilate`, `evaluate`), by name.
#[derive(clap::Args, Debug)]
pub struct TrainedBlanket {
    /// Blanket plugin: how a trajectory is cut into the network's windows of 2k+1 states
    /// and their outputs composed (Algorithm 2).
    #[arg(long, default_value = "temporal-window")]
    blanket: String,
    /// Blanket parameters [default for `temporal-window`: "k = " the checkpoint's k; any
    /// other blanket gets only its own defaults].
    #[arg(long)]
    blanket_params: Option<String>,
}

impl TrainedBlanket {
    /// The registered blanket for a trained network of half-width `k`: `temporal-window`
    /// without parameters takes the network's k.
    pub fn build(self, k: usize) -> Result<Box<dyn MarkovBlanket<DefaultBackend>>> {
        let (name, params) = plugin_params(
            self.blanket,
            self.blanket_params,
            ("temporal-window", &format!("k = {k}")),
        )?;
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

/// A plugin's name with its parameters: those given on the command line, else the command's
/// default when the plugin is the command's default one (`default = (plugin, parameters)`),
/// else none, so that each plugin falls back on its own defaults (another plugin's defaults
/// would be unknown fields to it).
pub fn plugin_params(
    name: String,
    given: Option<String>,
    default: (&str, &str),
) -> Result<(String, toml::Value)> {
    let text = match given {
        Some(text) => text,
        None if name == default.0 => default.1.to_string(),
        None => String::new(),
    };
    let params = parse_params(&text)?;
    Ok((name, params))
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
