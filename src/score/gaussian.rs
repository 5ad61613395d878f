//! The exact ε of a Gaussian over trajectories: the analytic local score of the linear-Gaussian
//! oracle ([`crate::systems::linear_gaussian`]) and its exact prior and posterior ε, against
//! which the composed, guided and sampled approximations of SDA are checked.

use std::sync::Arc;

use burn::tensor::{backend::Backend, Tensor};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

use super::{EpsilonModel, LocalScore};
use crate::backend::from_host;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result, TrajectoryShape};

/// The exact ε of a Gaussian `N(m, Σ)` over trajectories (or windows) of a fixed shape:
/// `x(t) ~ N(μ m, μ² Σ + σ² I)`, so
/// `ε(x(t), t) = σ (μ² Σ + σ² I)⁻¹ (x(t) − μ m)`, evaluated through the eigendecomposition
/// `Σ = U Λ Uᵀ`. As a [`LocalScore`] it is the analytic local score of the oracle; as an
/// [`EpsilonModel`] it is the exact full-trajectory prior or posterior ε.
#[derive(Clone)]
pub struct GaussianEpsilon {
    shape: TrajectoryShape,
    mean: DVector<f64>,
    eigvec: DMatrix<f64>,
    eigval: DVector<f64>,
    schedule: Arc<dyn NoiseSchedule>,
}

impl GaussianEpsilon {
    /// ε of `N(mean, cov)` over flattened trajectories of `shape`.
    pub fn new(
        shape: TrajectoryShape,
        mean: DVector<f64>,
        cov: DMatrix<f64>,
        schedule: Arc<dyn NoiseSchedule>,
    ) -> Result<Self> {
        let p = shape.len * shape.dim;
        if mean.len() != p || cov.shape() != (p, p) {
            return Err(Error::Shape(format!(
                "Gaussian of dimension {} does not fit {}×{} trajectories",
                mean.len(),
                shape.len,
                shape.dim
            )));
        }
        let eig = SymmetricEigen::new((&cov + cov.transpose()) * 0.5);
        let min = eig.eigenvalues.min();
        if min < -1e-9 * eig.eigenvalues.amax().max(1.0) {
            return Err(Error::Invalid(format!(
                "covariance is not positive semi-definite (eigenvalue {min:.3e})"
            )));
        }
        Ok(Self {
            shape,
            mean,
            eigval: eig.eigenvalues.map(|v| v.max(0.0)),
            eigvec: eig.eigenvectors,
            schedule,
        })
    }

    /// `M_t = σ (μ² Σ + σ² I)⁻¹`, so that `ε = M_t (x(t) − μ m)`.
    pub fn epsilon_matrix(&self, t: f64) -> DMatrix<f64> {
        let (mu, sigma) = (self.schedule.mu(t), self.schedule.sigma(t));
        let d = self.eigval.map(|l| sigma / (mu * mu * l + sigma * sigma));
        &self.eigvec * DMatrix::from_diagonal(&d) * self.eigvec.transpose()
    }

    /// ε on one flattened `x(t)` (host, f64).
    pub fn epsilon_host(&self, x_t: &DVector<f64>, t: f64) -> DVector<f64> {
        self.epsilon_matrix(t) * (x_t - &self.mean * self.schedule.mu(t))
    }

    /// The mean m.
    pub fn mean(&self) -> &DVector<f64> {
        &self.mean
    }

    /// The covariance Σ (rebuilt from its eigendecomposition).
    pub fn covariance(&self) -> DMatrix<f64> {
        &self.eigvec * DMatrix::from_diagonal(&self.eigval) * self.eigvec.transpose()
    }

    /// The trajectory shape.
    pub fn shape(&self) -> TrajectoryShape {
        self.shape
    }

    fn apply<B: Backend>(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let [n, l, d] = x_t.dims();
        let p = l * d;
        let device = x_t.device();
        let m = self.epsilon_matrix(t);
        let mu_mean: Vec<f64> = self.mean.iter().map(|v| v * self.schedule.mu(t)).collect();
        let m = from_host::<B, 2>(m.as_slice(), [p, p], &device); // symmetric: layout-agnostic
        let c = from_host::<B, 2>(&mu_mean, [1, p], &device);
        (x_t.reshape([n, p]) - c).matmul(m).reshape([n, l, d])
    }
}

impl<B: Backend> EpsilonModel<B> for GaussianEpsilon {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn check_shape(&self, len: usize, dim: usize) -> Result<()> {
        if (len, dim) != (self.shape.len, self.shape.dim) {
            return Err(Error::Shape(format!(
                "exact Gaussian ε is for {}×{} trajectories, got {len}×{dim}",
                self.shape.len, self.shape.dim
            )));
        }
        Ok(())
    }
    fn epsilon(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        self.apply(x_t, t)
    }
}

impl<B: Backend> LocalScore<B> for GaussianEpsilon {
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn window(&self) -> usize {
        self.shape.len
    }
    fn state_dim(&self) -> usize {
        self.shape.dim
    }
    fn epsilon(&self, windows: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        self.apply(windows, t)
    }
}
