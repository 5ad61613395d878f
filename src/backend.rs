//! The backend chosen once for the whole program, and the few host ↔ tensor helpers
//! every module shares.
//!
//! The library is generic over `B: Backend` (and `B: AutodiffBackend` where gradients are
//! needed). Binaries, the CLI and the plugin registry use [`DefaultBackend`]:
//! `Autodiff<Flex>` (pure-Rust CPU) by default, `Autodiff<Cuda>` with the `cuda` feature.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// The backend used by the CLI and the registry (pure-Rust CPU).
#[cfg(not(feature = "cuda"))]
pub type DefaultBackend = burn::backend::Autodiff<burn::backend::Flex>;

/// The backend used by the CLI and the registry (CUDA; kernels compiled at run time).
#[cfg(feature = "cuda")]
pub type DefaultBackend = burn::backend::Autodiff<burn::backend::Cuda>;

/// The device of [`DefaultBackend`].
pub fn default_device() -> <DefaultBackend as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

/// Copies a tensor to the host as `f64` values in row-major order.
pub fn to_host<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float tensor converts to f32")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Builds a tensor of the given shape from host `f64` values (stored as the backend's floats).
pub fn from_host<B: Backend, const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let v: Vec<f32> = values.iter().map(|&a| a as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// A seeded source of standard Gaussian noise for samplers.
///
/// Noise is drawn on the host from a `StdRng` and uploaded, so results depend only on the seed,
/// never on a backend's global random state or on which other computations run concurrently.
pub struct NoiseSource {
    rng: StdRng,
}

impl NoiseSource {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The host random generator (for drawing non-Gaussian randomness reproducibly).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A tensor of i.i.d. N(0, 1) values.
    pub fn normal<B: Backend, const D: usize>(
        &mut self,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }
}
