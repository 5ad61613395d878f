//! The crate's error type: every failure a user can cause is a variant with a message that
//! names the problem (never a panic).

use std::path::PathBuf;

/// Errors reported by the `sda` library and CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shape does not fit what a component was built for.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A parameter is out of its valid range (k = 0, L < 2k+1, negative noise, ...).
    #[error("invalid parameter: {0}")]
    Invalid(String),
    /// Input data contains NaN or infinite values.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// A plugin name that is not registered.
    #[error("unknown {kind} '{name}'; registered {kind}s: {}", known.join(", "))]
    UnknownPlugin {
        /// Which registry was searched (system, observation, ...).
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The sorted list of registered names.
        known: Vec<String>,
    },
    /// Two plugins registered under one name.
    #[error("duplicate {kind} name '{name}' in the plugin registry")]
    DuplicatePlugin {
        /// Which registry holds the duplicate.
        kind: &'static str,
        /// The duplicated name.
        name: String,
    },
    /// A configuration that does not parse or has unknown keys.
    #[error("configuration error in {context}: {message}")]
    Config {
        /// What was being configured.
        context: String,
        /// The parser's message (names the offending key).
        message: String,
    },
    /// A file that cannot be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that exists but whose content is not what it should be.
    #[error("corrupt or incompatible file {path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Numerical failure (a sampler diverged, a matrix is not positive definite, ...).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// The backend this program was built for cannot run on this machine (a CUDA build with no
    /// NVIDIA driver, NVRTC or GPU).
    #[error("backend unavailable: {0}")]
    Backend(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Helper for configuration errors.
    pub fn config(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Config {
            context: context.into(),
            message: message.to_string(),
        }
    }
}
