//! The ResMLP local score of the Lorenz experiment: input the `(2k+1)·3` standardised window
//! values concatenated with the time embedding, `Linear → 5 × [x + Linear(SiLU(Linear(LN(x))))]
//! → Linear` with LayerNorm **without** affine parameters, output ε of the window.
//!
//! On CPU builds a trained network is also evaluated by hand-written host kernels
//! ([`super::mlp_host`]): the forward of every sampling step, and the forward with its input VJP
//! that guidance needs ([`LocalScore::epsilon_with_vjp`]); burn's autodiff path remains for
//! training and for inputs that carry a graph.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{
    activation::silu,
    backend::{AutodiffBackend, Backend},
    Tensor, TensorData,
};

use super::embed::{normalise_axis1, TimeEmbedding};
use super::mlp_host::{HostBlock, HostLinear, HostMlp};
use super::precondition::Output;
use super::{Inner, LocalScore, WithVjp};
use crate::backend::to_host_f32;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// Architecture of a [`ResMlp`] (stored with every checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Blanket half-width k (window of 2k+1 states).
    pub k: usize,
    /// State dimension D.
    pub state_dim: usize,
    /// Hidden width (paper: 128 for k ≤ 2, 256 for k ≥ 3).
    pub width: usize,
    /// Number of residual blocks (paper: 5).
    pub blocks: usize,
    /// Time-embedding size E.
    pub embedding: usize,
    /// How the raw output becomes ε (default: directly, as in the paper).
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
}

impl MlpConfig {
    /// The paper's network for a given k on Lorenz-63 (D = 3).
    pub fn paper(k: usize) -> Self {
        Self {
            k,
            state_dim: 3,
            width: if k <= 2 { 128 } else { 256 },
            blocks: 5,
            embedding: 64,
            output: Output::Epsilon,
        }
    }

    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0
            || self.state_dim == 0
            || self.width == 0
            || self.blocks == 0
            || self.embedding == 0
        {
            return Err(Error::Invalid(format!(
                "network sizes must be positive (k ≥ 1): {self:?}"
            )));
        }
        Ok(())
    }

    /// Window length 2k+1.
    pub fn window(&self) -> usize {
        2 * self.k + 1
    }
}

#[derive(Module, Debug)]
struct Block<B: Backend> {
    first: Linear<B>,
    second: Linear<B>,
}

/// The ResMLP ε-network.
#[derive(Module, Debug)]
pub struct ResMlp<B: Backend> {
    embed: TimeEmbedding<B>,
    input: Linear<B>,
    blocks: Vec<Block<B>>,
    output: Linear<B>,
}

impl<B: Backend> ResMlp<B> {
    /// A freshly initialised network.
    pub fn new(cfg: &MlpConfig, device: &B::Device) -> Result<Self> {
        cfg.validate()?;
        let io = cfg.window() * cfg.state_dim;
        Ok(Self {
            embed: TimeEmbedding::new(cfg.embedding, device),
            input: LinearConfig::new(io + cfg.embedding, cfg.width).init(device),
            blocks: (0..cfg.blocks)
                .map(|_| Block {
                    first: LinearConfig::new(cfg.width, cfg.width).init(device),
                    second: LinearConfig::new(cfg.width, cfg.width).init(device),
                })
                .collect(),
            output: LinearConfig::new(cfg.width, io).init(device),
        })
    }

    /// ε on flattened windows `[N, (2k+1)·D]` at per-item times `[N]` (training: every
    /// item has its own t).
    pub fn forward(&self, x: Tensor<B, 2>, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let emb = self.embed.forward(t);
        self.trunk(x, emb)
    }

    /// ε on flattened windows `[N, (2k+1)·D]` all at the same time `t` (sampling): the
    /// embedding is computed once and broadcast, instead of N times.
    pub fn forward_at(&self, x: Tensor<B, 2>, t: f64) -> Tensor<B, 2> {
        let emb = self.embed.at(t, x.dims()[0], &x.device());
        self.trunk(x, emb)
    }

    /// The weights copied to the host, for [`HostMlp`].
    fn to_host(&self) -> HostMlp {
        HostMlp::new(
            host_linear(&self.input),
            self.blocks
                .iter()
                .map(|b| HostBlock {
                    first: host_linear(&b.first),
                    second: host_linear(&b.second),
                })
                .collect(),
            host_linear(&self.output),
        )
    }

    fn trunk(&self, x: Tensor<B, 2>, emb: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = self.input.forward(Tensor::cat(vec![x, emb], 1));
        for b in &self.blocks {
            h = h.clone() + b.second.forward(silu(b.first.forward(normalise_axis1(h))));
        }
        self.output.forward(h)
    }
}

/// A burn `Linear` (row layout `[inputs, outputs]`, as `LinearConfig` makes it) on the host.
fn host_linear<B: Backend>(layer: &Linear<B>) -> HostLinear {
    let weight = layer.weight.val();
    let [inputs, outputs] = weight.dims();
    let bias = match &layer.bias {
        Some(b) => to_host_f32(b.val()),
        None => vec![0.0; outputs],
    };
    HostLinear::new(to_host_f32(weight), bias, inputs, outputs)
}

/// A trained [`ResMlp`] as a [`LocalScore`] on standardised windows.
pub struct MlpScore<B: Backend> {
    net: ResMlp<B>,
    config: MlpConfig,
    schedule: Arc<dyn NoiseSchedule>,
    /// The weights on the host for [`super::mlp_host`] (CPU builds; `None` with `cuda`).
    host: Option<HostMlp>,
}

impl<B: Backend> MlpScore<B> {
    /// A local score from a trained network. Its parameters are frozen (`no_grad`): guidance
    /// differentiates with respect to the input x(t) only, so the backward pass of Algorithm 3
    /// computes no parameter gradients.
    pub fn new(net: ResMlp<B>, config: MlpConfig, schedule: Arc<dyn NoiseSchedule>) -> Self {
        let host = cfg!(not(feature = "cuda")).then(|| net.to_host());
        Self {
            net: net.no_grad(),
            config,
            schedule,
            host,
        }
    }

    /// The same score evaluated by burn's tensor operations only (its autodiff for guidance),
    /// never by the host kernels: the reference the host kernels are tested and timed against.
    pub fn without_host_kernels(mut self) -> Self {
        self.host = None;
        self
    }

    /// ε of windows `x` (`[rows · io]` host values) at time `t` by the host kernels, with the
    /// saved activations when `save`: `ε = a x + b F` ([`Output::coefficients`]).
    fn host_epsilon(
        &self,
        host: &HostMlp,
        x: &[f32],
        t: f64,
        device: &B::Device,
        save: bool,
    ) -> (Vec<f32>, Option<super::mlp_host::Saved>) {
        let emb = to_host_f32(self.net.embed.forward(Tensor::<B, 1>::full([1], t, device)));
        let (mut f, saved) = host.forward(x, &emb, save);
        let (a, b) = self.coefficients(t);
        if (a, b) != (0.0, 1.0) {
            for (fv, xv) in f.iter_mut().zip(x) {
                *fv = a * xv + b * *fv;
            }
        }
        (f, saved)
    }

    fn coefficients(&self, t: f64) -> (f32, f32) {
        let s = self.schedule.as_ref();
        let (a, b) = self.config.output.coefficients(s.mu(t), s.sigma(t));
        (a as f32, b as f32)
    }

    /// The network's architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }
}

impl<B: Backend> LocalScore<B> for MlpScore<B> {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn window(&self) -> usize {
        self.config.window()
    }
    fn state_dim(&self) -> usize {
        self.config.state_dim
    }
    fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let [n, w, d] = windows.dims();
        if let Some(host) = self.host.as_ref().filter(|_| !windows.is_require_grad()) {
            let device = windows.device();
            let (eps, _) = self.host_epsilon(host, &to_host_f32(windows), t, &device, false);
            return Tensor::from_data(TensorData::new(eps, [n, w, d]), &device);
        }
        let f = self
            .net
            .forward_at(windows.clone().reshape([n, w * d]), t)
            .reshape([n, w, d]);
        self.config
            .output
            .epsilon(f, windows, t, self.schedule.as_ref())
    }

    /// The host kernels' forward and input VJP (CPU builds): `(∂ε/∂x)ᵀ v = a v + J_Fᵀ (b v)`.
    fn epsilon_with_vjp(&self, windows: Tensor<Inner<B>, 3>, t: f64) -> WithVjp<'_, B>
    where
        B: AutodiffBackend,
    {
        let host = self.host.as_ref()?;
        let dims = windows.dims();
        let device = windows.device();
        let x = to_host_f32(windows);
        // the time embedding runs on the network's backend B, whose device type is the inner
        // backend's only in fact, not in the types: read it off a one-element tensor
        let b_device = Tensor::<B, 1>::from_inner(Tensor::zeros([1], &device)).device();
        let (eps, saved) = self.host_epsilon(host, &x, t, &b_device, true);
        let saved = saved.expect("the forward saved its activations");
        let (a, b) = self.coefficients(t);
        let vjp = move |v: Tensor<Inner<B>, 3>| {
            let device = v.device();
            let v = to_host_f32(v);
            let scaled: Vec<f32> = v.iter().map(|g| b * g).collect();
            let mut g = host.vjp(&saved, &scaled);
            if a != 0.0 {
                for (gv, vv) in g.iter_mut().zip(&v) {
                    *gv += a * vv;
                }
            }
            Tensor::from_data(TensorData::new(g, dims), &device)
        };
        Some((
            Tensor::from_data(TensorData::new(eps, dims), &device),
            Box::new(vjp),
        ))
    }
}

/// The host kernels against burn's tensor operations and autodiff on the same random network:
/// forward, input VJP (both output maps), and the guided ε of SDA and MMPS through the
/// composed score, whose blanket transposes and ε leaf the host path adds.
#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;
    use crate::backend::{default_device, DefaultBackend, NoiseSource};
    use crate::blanket::TemporalWindow;
    use crate::guidance::{Guided, Mmps, SdaGaussian};
    use crate::observe::ops::Pick;
    use crate::schedule::VpCosine;
    use crate::score::{Composed, EpsilonModel};
    use crate::TrajectoryShape;

    type B = DefaultBackend;

    fn scores(output: Output) -> (MlpScore<B>, MlpScore<B>) {
        let cfg = MlpConfig {
            output,
            ..MlpConfig::paper(2)
        };
        let net = ResMlp::<B>::new(&cfg, &default_device()).unwrap();
        // parameters are initialised lazily, on first use: use them once before cloning so
        // that both copies hold the same values
        net.forward_at(Tensor::zeros([1, 15], &default_device()), 0.5);
        let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
        let host = MlpScore::new(net.clone(), cfg, schedule.clone());
        assert!(host.host.is_some());
        (
            host,
            MlpScore::new(net, cfg, schedule).without_host_kernels(),
        )
    }

    /// max |a − b| / max |b|.
    fn relative_error<Bk: Backend, const D: usize>(a: Tensor<Bk, D>, b: Tensor<Bk, D>) -> f32 {
        let (a, b) = (to_host_f32(a), to_host_f32(b));
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        diff / scale
    }

    #[test]
    fn host_forward_and_vjp_match_autodiff() {
        for output in [Output::Epsilon, Output::Preconditioned] {
            let (host, reference) = scores(output);
            let device = default_device();
            let windows = NoiseSource::new(1).normal::<B, 3>([300, 5, 3], &device);
            let v = NoiseSource::new(2).normal::<B, 3>([300, 5, 3], &device);
            for t in [0.05, 0.5, 0.95] {
                let fast = host.epsilon(windows.clone(), t);
                let slow = reference.epsilon(windows.clone(), t);
                let e = relative_error(fast, slow.clone());
                assert!(e < 1e-5, "{output:?} t={t}: {e}");

                let (eps, vjp) = host.epsilon_with_vjp(windows.clone().inner(), t).unwrap();
                assert!(relative_error(eps, slow.inner()) < 1e-5);
                let x = windows.clone().require_grad();
                let grads = (reference.epsilon(x.clone(), t) * v.clone())
                    .sum()
                    .backward();
                let exact = x.grad(&grads).unwrap();
                let g = vjp(v.clone().inner());
                assert!(relative_error(g, exact) < 1e-4, "{output:?} t={t}");
            }
        }
    }

    #[test]
    fn guided_epsilon_with_host_kernels_matches_autodiff() {
        let device = default_device();
        let (host, reference) = scores(Output::Epsilon);
        let shape = TrajectoryShape::new(17, 3);
        let pick = Pick::new(shape, vec![0, 8, 16], vec![0, 2], 0.1).unwrap();
        let y = [0.3, -0.2, 1.0, 0.5, -1.2, 0.1];
        let fast = Composed::new::<B>(host, TemporalWindow::new(2).unwrap()).unwrap();
        let slow = Composed::new::<B>(reference, TemporalWindow::new(2).unwrap()).unwrap();
        let x = NoiseSource::new(3).normal::<B, 3>([4, 17, 3], &device);
        for t in [0.1, 0.6] {
            let sda =
                |prior| Guided::new(prior, &pick, &y, SdaGaussian::new(1e-2).unwrap(), &device);
            let (a, b) = (sda(&fast).unwrap(), sda(&slow).unwrap());
            let (ea, eb) = (a.epsilon(x.clone(), t), b.epsilon(x.clone(), t));
            assert!(relative_error(ea, eb) < 1e-4, "SDA t={t}");
            assert_eq!(a.passes(), b.passes());

            let mmps = |prior| Guided::new(prior, &pick, &y, Mmps::new(2).unwrap(), &device);
            let (a, b) = (mmps(&fast).unwrap(), mmps(&slow).unwrap());
            let (ea, eb) = (a.epsilon(x.clone(), t), b.epsilon(x.clone(), t));
            assert!(relative_error(ea, eb) < 1e-3, "MMPS t={t}");
        }
    }
}
