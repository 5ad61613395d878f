//! The reference methods every benchmark table starts from (as in DAPPER's `baseline` module):
//! **climatology**, the long-run mean and variance of the system whatever is observed (an upper
//! bound on any method's error), and **3D-Var**, a Kalman analysis of the forecast mean with a
//! fixed background covariance `B = scale · C` (C the climatological covariance; Lorenc 1986),
//! solved in one linear step rather than by iterations since `H` is linearised.

use nalgebra::{DMatrix, DVector};
use rand::RngCore;

use super::{Estimate, Filter, GaussianObservation, Prior};
use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// The climatological mean and variances, at every time.
#[derive(Default)]
pub struct Climatology {
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl Filter for Climatology {
    fn describe(&self) -> String {
        "climatology".into()
    }
    fn initialise(&mut self, prior: &Prior, _rng: &mut dyn RngCore) -> Result<()> {
        self.mean = prior.climate_mean.clone();
        self.var = prior.climate_cov.diagonal().iter().copied().collect();
        Ok(())
    }
    fn forecast(&mut self, _model: &dyn Dynamics, _rng: &mut dyn RngCore) -> Result<()> {
        Ok(())
    }
    fn analyse(
        &mut self,
        _y: &[f64],
        _o: &dyn GaussianObservation,
        _model: &dyn Dynamics,
        _r: &mut dyn RngCore,
    ) -> Result<()> {
        Ok(())
    }
    fn estimate(&self) -> Estimate<'_> {
        Estimate::Gaussian {
            mean: &self.mean,
            var: &self.var,
        }
    }
}

/// 3D-Var: the mean is forecast with the model, and analysed with
/// `K = B Hᵀ (H B Hᵀ + R)⁻¹`, `μ ← μ + K (y − H(μ))`; the reported variances are those of
/// `(I − K H) B` (a diagnostic only, as in DAPPER: 3D-Var has no flow-dependent covariance).
pub struct Var3d {
    scale: f64,
    background: DMatrix<f64>,
    mean: Vec<f64>,
    var: Vec<f64>,
}

/// The settings of [`Var3d`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Var3dSettings {
    /// `B = background · C`, C the climatological covariance.
    pub background: f64,
}

impl Var3d {
    /// 3D-Var with `B = background · C`; the scale must be positive and finite.
    pub fn new(settings: Var3dSettings) -> Result<Self> {
        let scale = settings.background;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::Invalid(format!(
                "background (the scale of the climatological covariance) must be positive and \
                 finite, got {scale}"
            )));
        }
        Ok(Self {
            scale,
            background: DMatrix::zeros(0, 0),
            mean: Vec::new(),
            var: Vec::new(),
        })
    }
}

impl Filter for Var3d {
    fn describe(&self) -> String {
        format!("3D-Var, B = {} · climatology", self.scale)
    }
    fn initialise(&mut self, prior: &Prior, _rng: &mut dyn RngCore) -> Result<()> {
        self.background = &prior.climate_cov * self.scale;
        self.mean = prior.mean.clone();
        self.var = vec![prior.var; prior.mean.len()];
        Ok(())
    }
    fn forecast(&mut self, model: &dyn Dynamics, rng: &mut dyn RngCore) -> Result<()> {
        self.mean = model.step(&self.mean, rng);
        Ok(())
    }
    fn analyse(
        &mut self,
        y: &[f64],
        observation: &dyn GaussianObservation,
        _model: &dyn Dynamics,
        _rng: &mut dyn RngCore,
    ) -> Result<()> {
        let h = observation.jacobian(&self.mean);
        let b = &self.background;
        let mut s = &h * b * h.transpose();
        for (i, sd) in observation.sigma().iter().enumerate() {
            s[(i, i)] += sd * sd;
        }
        let chol = s.cholesky().ok_or_else(|| {
            Error::Numerical("3D-Var: H B Hᵀ + R is not positive definite".into())
        })?;
        // K = B Hᵀ S⁻¹ = (S⁻¹ H B)ᵀ
        let k = chol.solve(&(&h * b)).transpose();
        let innovation = DVector::from_column_slice(y)
            - DVector::from_column_slice(&observation.observe(&self.mean));
        let mean = DVector::from_column_slice(&self.mean) + &k * innovation;
        self.mean = mean.as_slice().to_vec();
        let n = self.mean.len();
        let post = (DMatrix::identity(n, n) - &k * &h) * b;
        self.var = post.diagonal().iter().copied().collect();
        Ok(())
    }
    fn estimate(&self) -> Estimate<'_> {
        Estimate::Gaussian {
            mean: &self.mean,
            var: &self.var,
        }
    }
}
