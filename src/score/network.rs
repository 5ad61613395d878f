//! What training (Algorithm 1) needs from a local-score network, whatever its architecture:
//! construction from a serialisable architecture config and ε on a batch of flattened windows
//! at per-item times. Implemented by the ResMLP ([`super::mlp::ResMlp`], Lorenz-63) and the
//! U-Net ([`super::unet::UNet`], Kolmogorov flow); [`NetworkConfig`] names either in a
//! training config.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use super::mlp::{MlpConfig, ResMlp};
use super::precondition::Output;
use super::ring_conv::{RingConv, RingConvConfig};
use super::unet::{UNet, UNetConfig};
use crate::Result;

/// A trainable ε-network on windows of `2k+1` states.
pub trait ScoreNetwork<B: Backend>: Module<B> + Sized {
    /// Its architecture (stored with every checkpoint).
    type Config: Clone
        + PartialEq
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Into<NetworkConfig>;
    /// A freshly initialised network (sizes validated).
    fn init(cfg: &Self::Config, device: &B::Device) -> Result<Self>;
    /// The raw output F on flattened windows `[N, (2k+1)·D]` at per-item times `[N]`;
    /// [`ScoreNetwork::output`] says how it becomes ε.
    fn forward_train(&self, cfg: &Self::Config, x: Tensor<B, 2>, t: Tensor<B, 1>) -> Tensor<B, 2>;
    /// The map from the raw output to ε.
    fn output(cfg: &Self::Config) -> Output;
}

/// The architecture of a training run: a ResMLP (`[network]` with `width`), a U-Net
/// (`[network]` with a list of `channels`) or a ring convolution (`[network]` with `kernel`);
/// the fields tell them apart, and an unknown or mistyped field is an error naming it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum NetworkConfig {
    /// The ResMLP of the Lorenz experiment.
    Mlp(MlpConfig),
    /// The U-Net of the Kolmogorov experiment.
    UNet(UNetConfig),
    /// The circular convolution over the sites of a ring (Lorenz-96, space–time windows).
    Ring(RingConvConfig),
}

impl<'de> serde::Deserialize<'de> for NetworkConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        let has = |key: &str| value.get(key).is_some();
        if has("kernel") {
            return serde_json::from_value(value)
                .map(Self::Ring)
                .map_err(D::Error::custom);
        }
        let network = match (has("width"), has("channels")) {
            (true, false) => serde_json::from_value(value).map(Self::Mlp),
            (false, true) => serde_json::from_value(value).map(Self::UNet),
            (true, true) => {
                return Err(D::Error::custom(
                    "a network has `width` (a ResMLP) or `channels` (a U-Net), not both",
                ))
            }
            (false, false) => {
                return Err(D::Error::custom(
                    "a network needs `width` (a ResMLP), `channels` (a U-Net) or `kernel` (a \
                     ring convolution)",
                ))
            }
        };
        network.map_err(D::Error::custom)
    }
}

impl NetworkConfig {
    /// Blanket half-width k.
    pub fn k(&self) -> usize {
        match self {
            Self::Mlp(c) => c.k,
            Self::UNet(c) => c.k,
            Self::Ring(c) => c.k,
        }
    }
    /// Window length 2k+1.
    pub fn window(&self) -> usize {
        2 * self.k() + 1
    }
    /// Flattened state dimension D of the training windows (a ring network's training ring).
    pub fn state_dim(&self) -> usize {
        match self {
            Self::Mlp(c) => c.state_dim,
            Self::UNet(c) => c.state_dim(),
            Self::Ring(c) => c.sites,
        }
    }
    /// The map from the raw output to ε.
    pub fn output(&self) -> Output {
        match self {
            Self::Mlp(c) => c.output,
            Self::UNet(c) => c.output,
            Self::Ring(c) => c.output,
        }
    }
    /// Sets the map from the raw output to ε.
    pub fn set_output(&mut self, output: Output) {
        match self {
            Self::Mlp(c) => c.output = output,
            Self::UNet(c) => c.output = output,
            Self::Ring(c) => c.output = output,
        }
    }
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Mlp(c) => c.validate(),
            Self::UNet(c) => c.validate(),
            Self::Ring(c) => c.validate(),
        }
    }
}

impl From<MlpConfig> for NetworkConfig {
    fn from(c: MlpConfig) -> Self {
        Self::Mlp(c)
    }
}

impl From<UNetConfig> for NetworkConfig {
    fn from(c: UNetConfig) -> Self {
        Self::UNet(c)
    }
}

impl From<RingConvConfig> for NetworkConfig {
    fn from(c: RingConvConfig) -> Self {
        Self::Ring(c)
    }
}

impl<B: Backend> ScoreNetwork<B> for RingConv<B> {
    type Config = RingConvConfig;
    fn init(cfg: &RingConvConfig, device: &B::Device) -> Result<Self> {
        RingConv::new(cfg, device)
    }
    fn output(cfg: &RingConvConfig) -> Output {
        cfg.output
    }
    fn forward_train(
        &self,
        cfg: &RingConvConfig,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
    ) -> Tensor<B, 2> {
        let [n, row] = x.dims();
        let w = cfg.window();
        self.forward(x.reshape([n, w, row / w]), t)
            .reshape([n, row])
    }
}

impl<B: Backend> ScoreNetwork<B> for ResMlp<B> {
    type Config = MlpConfig;
    fn init(cfg: &MlpConfig, device: &B::Device) -> Result<Self> {
        ResMlp::new(cfg, device)
    }
    fn forward_train(&self, _cfg: &MlpConfig, x: Tensor<B, 2>, t: Tensor<B, 1>) -> Tensor<B, 2> {
        self.forward(x, t)
    }
    fn output(cfg: &MlpConfig) -> Output {
        cfg.output
    }
}

impl<B: Backend> ScoreNetwork<B> for UNet<B> {
    type Config = UNetConfig;
    fn init(cfg: &UNetConfig, device: &B::Device) -> Result<Self> {
        UNet::new(cfg, device)
    }
    fn output(cfg: &UNetConfig) -> Output {
        cfg.output
    }
    fn forward_train(&self, cfg: &UNetConfig, x: Tensor<B, 2>, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let [n, row] = x.dims();
        let w = cfg.window();
        self.forward(cfg, x.reshape([n, w, row / w]), t)
            .reshape([n, row])
    }
}
