//! The backend chosen once for the whole program, and the few host ↔ tensor helpers
//! every module shares.
//!
//! The library is generic over `B: Backend` (and `B: AutodiffBackend` where gradients are
//! needed). Binaries, the CLI and the plugin registry use [`DefaultBackend`]:
//! `Autodiff<Flex>` (pure-Rust CPU) by default, `Autodiff<Cuda>` with the `cuda` feature.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// The backend used by the CLI and the registry (pure-Rust CPU).
#[cfg(not(feature = "cuda"))]
pub type DefaultBackend = burn::backend::Autodiff<burn::backend::Flex>;

/// The backend used by the CLI and the registry (CUDA; kernels compiled at run time).
#[cfg(feature = "cuda")]
pub type DefaultBackend = burn::backend::Autodiff<burn::backend::Cuda>;

/// Checks that [`DefaultBackend`] can run on this machine, before the first tensor is made.
///
/// The CPU backend always can. A `cuda` build needs the NVIDIA driver library (`libcuda`),
/// NVRTC (`libnvrtc`, which compiles the kernels at run time) and at least one GPU; without
/// them burn would panic on first use. The CLI calls this before every command that computes
/// on tensors; programs that use [`default_device`] directly should call it first.
pub fn check_backend() -> crate::Result<()> {
    #[cfg(feature = "cuda")]
    check_cuda()?;
    Ok(())
}

#[cfg(feature = "cuda")]
fn check_cuda() -> crate::Result<()> {
    use crate::Error;
    use cudarc::{driver, nvrtc};
    let missing = |what: &str| {
        Error::Backend(format!(
            "this program was built with the `cuda` feature, but {what} cannot be loaded; add \
             its folder to LD_LIBRARY_PATH, or build without `--features cuda` to run on the CPU"
        ))
    };
    // SAFETY: both only try to open the shared library under its usual names.
    if !unsafe { driver::sys::is_culib_present() } {
        return Err(missing("the NVIDIA driver library (libcuda.so)"));
    }
    if !unsafe { nvrtc::sys::is_culib_present() } {
        return Err(missing(
            "NVRTC (libnvrtc.so, the CUDA run-time compiler that builds the kernels)",
        ));
    }
    match driver::CudaContext::device_count() {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err(Error::Backend("the NVIDIA driver sees no GPU".into())),
        Err(e) => Err(Error::Backend(format!(
            "the NVIDIA driver did not initialise: {e}"
        ))),
    }
}

/// The device of [`DefaultBackend`] (see [`check_backend`]).
pub fn default_device() -> <DefaultBackend as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

/// Copies a tensor to the host as `f64` values in row-major order.
pub fn to_host<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
    to_host_f32(x).into_iter().map(f64::from).collect()
}

/// Copies a tensor to the host as `f32` values in row-major order (what host kernels compute
/// on).
pub fn to_host_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float tensor converts to f32")
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

/// A 1-D integer tensor of host indices, for `select` along one dimension.
pub fn index_tensor<B: Backend>(indices: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [indices.len()]), device)
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
