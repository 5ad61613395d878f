//! The ensemble Kalman filters compared by Sakov & Oke (2008, "A deterministic formulation of
//! the ensemble Kalman filter", Tellus A), in one [`Enkf`] type whose analysis is chosen by
//! [`Update`], each followed by multiplicative inflation of the anomalies and, optionally, a
//! mean-preserving random rotation (Sakov & Oke 2008b).
//!
//! Notation (members as columns): the forecast ensemble `E` (n × N), its mean `μ` and anomalies
//! `A = E − μ1ᵀ`; the observed ensemble `H(E)` (p × N), its mean `ȳ` and anomalies `Y`; the
//! innovation `δ = y − ȳ`; `R = diag(σ²)`.
//! - **Perturbed observations** (Burgers, van Leeuwen & Evensen 1998):
//!   `K = A Yᵀ (Y Yᵀ + (N−1) R)⁻¹`, `E ← E + K (y1ᵀ − D − H(E))` with centred perturbations
//!   `D ~ N(0, R)`.
//! - **ETKF** (symmetric square root; Bishop et al. 2001, Hunt et al. 2007): in ensemble space
//!   `G = Yᵀ R⁻¹ Y + (N−1) I = V Λ Vᵀ`, `w = G⁻¹ Yᵀ R⁻¹ δ`, `T = √(N−1) V Λ^{-1/2} Vᵀ`,
//!   `E ← μ1ᵀ + A w 1ᵀ + A T`.
//! - **DEnKF** (Sakov & Oke 2008): `K` as above, `E ← E + K δ 1ᵀ − ½ K Y`.

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use super::{Estimate, Filter, GaussianObservation, Prior};
use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// The analysis of an [`Enkf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The stochastic EnKF with perturbed observations.
    PerturbedObservations,
    /// The ensemble transform Kalman filter (symmetric square root).
    Etkf,
    /// The deterministic EnKF.
    Denkf,
}

/// The settings of an ensemble filter.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSettings {
    /// Ensemble size N (≥ 2).
    pub ensemble: usize,
    /// Multiplicative inflation of the analysis anomalies (≥ 1; 1 is none).
    #[serde(default = "no_inflation")]
    pub inflation: f64,
    /// Apply a random mean-preserving rotation to the analysis anomalies.
    #[serde(default)]
    pub rotate: bool,
}

/// The default inflation factor of every ensemble method: 1, none.
pub(crate) fn no_inflation() -> f64 {
    1.0
}

impl EnsembleSettings {
    /// Checks N ≥ 2 and a finite inflation ≥ 1.
    pub fn check(&self) -> Result<()> {
        if self.ensemble < 2 {
            return Err(Error::Invalid(format!(
                "ensemble must have at least 2 members (anomalies need two), got {}",
                self.ensemble
            )));
        }
        if !(self.inflation.is_finite() && self.inflation >= 1.0) {
            return Err(Error::Invalid(format!(
                "inflation must be a finite factor ≥ 1 (1 is none), got {}",
                self.inflation
            )));
        }
        Ok(())
    }
}

/// The analysis step of an ensemble filter; [`EnsembleFilter`] does the rest (the initial
/// draw, the member forecasts, inflation and rotation).
pub trait Analysis: Send + Sync {
    /// The analysis with its own settings, for tables (e.g. `ETKF`, `LETKF, radius 4`).
    fn describe(&self) -> String;
    /// The analysis ensemble of the forecast `e` with `y`, before inflation and rotation.
    fn analyse(
        &self,
        e: &DMatrix<f64>,
        y: &[f64],
        obs: &dyn GaussianObservation,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>>;
}

/// An ensemble Kalman filter: an ensemble of N states forecast member by member with the model,
/// updated by its [`Analysis`], then inflated (and rotated).
pub struct EnsembleFilter<A> {
    analysis: A,
    settings: EnsembleSettings,
    /// The ensemble, one member per column (n × N).
    ensemble: DMatrix<f64>,
}

/// The global ensemble Kalman filters: EnKF, ETKF, DEnKF.
pub type Enkf = EnsembleFilter<Update>;

impl<A: Analysis> EnsembleFilter<A> {
    /// A filter with the `analysis`; an error for N < 2 or an inflation below 1.
    pub fn new(analysis: A, settings: EnsembleSettings) -> Result<Self> {
        settings.check()?;
        Ok(Self {
            analysis,
            settings,
            ensemble: DMatrix::zeros(0, 0),
        })
    }
}

impl<A> EnsembleFilter<A> {
    /// The filter's analysis.
    pub(crate) fn analysis(&self) -> &A {
        &self.analysis
    }

    /// Replaces the ensemble by an analysis made elsewhere (a smoother's, of the same shape),
    /// then inflates and rotates it as after the filter's own analysis.
    pub(crate) fn set_analysis(
        &mut self,
        mut e: DMatrix<f64>,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        inflate_and_rotate(&mut e, self.settings.inflation, self.settings.rotate, rng)?;
        self.ensemble = e;
        Ok(())
    }
}

impl Analysis for Update {
    fn describe(&self) -> String {
        match self {
            Update::PerturbedObservations => "EnKF (perturbed obs.)",
            Update::Etkf => "ETKF",
            Update::Denkf => "DEnKF",
        }
        .into()
    }

    fn analyse(
        &self,
        e: &DMatrix<f64>,
        y: &[f64],
        obs: &dyn GaussianObservation,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>> {
        let (n, members) = e.shape();
        let n1 = members as f64 - 1.0;
        let p = obs.len();
        if y.len() != p {
            return Err(Error::Shape(format!(
                "the observation has {} values, the observation model {p}",
                y.len()
            )));
        }
        let mu = e.column_mean();
        let a = e - &mu * DMatrix::from_element(1, members, 1.0);
        let mut he = DMatrix::zeros(p, members);
        for j in 0..members {
            let hx = obs.observe(e.column(j).as_slice());
            he.column_mut(j).copy_from_slice(&hx);
        }
        let ybar = he.column_mean();
        let yan = &he - &ybar * DMatrix::from_element(1, members, 1.0);
        let sigma = obs.sigma();
        let r = DVector::from_iterator(p, sigma.iter().map(|s| s * s));
        let innovation = DVector::from_column_slice(y) - &ybar;
        let gain = || -> Result<DMatrix<f64>> {
            // K = A Yᵀ C⁻¹ with C = Y Yᵀ + (N−1) R, through the Cholesky factor of C
            let mut c = &yan * yan.transpose();
            for i in 0..p {
                c[(i, i)] += n1 * r[i];
            }
            let chol = c.cholesky().ok_or_else(|| {
                Error::Numerical("the innovation covariance is not positive definite".into())
            })?;
            // K = (C⁻¹ Y Aᵀ)ᵀ, C symmetric
            Ok(chol.solve(&(&yan * a.transpose())).transpose())
        };
        let out = match self {
            Update::PerturbedObservations => {
                let k = gain()?;
                let mut d = DMatrix::from_fn(p, members, |i, _| {
                    let z: f64 = StandardNormal.sample(&mut *rng);
                    sigma[i] * z
                });
                // centred perturbations, as DAPPER's `mean0`
                let dmean = d.column_mean();
                for mut col in d.column_iter_mut() {
                    col -= &dmean;
                }
                let mut misfit = -d - &he;
                for mut col in misfit.column_iter_mut() {
                    col += DVector::from_column_slice(y);
                }
                e + k * misfit
            }
            Update::Denkf => {
                let k = gain()?;
                let shift = &k * &innovation;
                let mut out = e - 0.5 * (&k * &yan);
                for mut col in out.column_iter_mut() {
                    col += &shift;
                }
                out
            }
            Update::Etkf => {
                // S = R^{-1/2} Y and d = R^{-1/2} δ
                let mut s = yan.clone();
                for (i, sd) in sigma.iter().enumerate() {
                    s.row_mut(i).scale_mut(1.0 / sd);
                }
                let d = DVector::from_iterator(p, innovation.iter().zip(sigma).map(|(v, s)| v / s));
                let (w, t) = transform(&s, &d);
                let mean = &mu + &a * w;
                let mut out = &a * t;
                for mut col in out.column_iter_mut() {
                    col += &mean;
                }
                out
            }
        };
        debug_assert_eq!(out.shape(), (n, members));
        Ok(out)
    }
}

/// The ETKF's ensemble-space analysis of normalised anomalies `S = R^{-1/2} Y` (p × N) and
/// innovation `d = R^{-1/2} δ`: with `G = Sᵀ S + (N−1) I = V Λ Vᵀ`, the weights of the mean
/// `w = G⁻¹ Sᵀ d` and the symmetric transform `T = √(N−1) V Λ^{-1/2} Vᵀ` of the anomalies
/// (Hunt, Kostelich & Szunyogh 2007, eqs. 20–24).
pub(crate) fn transform(s: &DMatrix<f64>, d: &DVector<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let members = s.ncols();
    let n1 = members as f64 - 1.0;
    let mut g = s.transpose() * s;
    for i in 0..members {
        g[(i, i)] += n1;
    }
    let eig = g.symmetric_eigen();
    let v = &eig.eigenvectors;
    let inv = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / l));
    let inv_sqrt = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| (n1 / l).sqrt()));
    let w = v * (inv * (v.transpose() * (s.transpose() * d)));
    let t = v * inv_sqrt * v.transpose();
    (w, t)
}

/// `members` draws from the initial law `N(mean, var I)`, one per column.
pub(crate) fn draw_ensemble(prior: &Prior, members: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
    let sd = prior.var.sqrt();
    DMatrix::from_fn(prior.mean.len(), members, |i, _| {
        let z: f64 = StandardNormal.sample(&mut *rng);
        prior.mean[i] + sd * z
    })
}

/// `members` as a starting ensemble of a method of `expected` members; an error naming the
/// `method` for another count.
pub(crate) fn checked_members(
    method: &str,
    members: DMatrix<f64>,
    expected: usize,
) -> Result<DMatrix<f64>> {
    if members.ncols() != expected {
        return Err(Error::Shape(format!(
            "{method} starts from {expected} members, given {}",
            members.ncols()
        )));
    }
    Ok(members)
}

/// Moves every member (column) one model step forward.
pub(crate) fn forecast_ensemble(
    ensemble: &mut DMatrix<f64>,
    model: &dyn Dynamics,
    rng: &mut dyn RngCore,
) {
    for mut col in ensemble.column_iter_mut() {
        let next = model.step(col.as_slice(), rng);
        col.copy_from_slice(&next);
    }
}

/// `E ← μ1ᵀ + A Tᵀ` with `T = Q · inflation`, Q a random mean-preserving rotation when asked
/// (DAPPER's `post_process`).
pub(crate) fn inflate_and_rotate(
    e: &mut DMatrix<f64>,
    inflation: f64,
    rotate: bool,
    rng: &mut dyn RngCore,
) -> Result<()> {
    if inflation == 1.0 && !rotate {
        return Ok(());
    }
    let members = e.ncols();
    let mu = e.column_mean();
    let mut a = e.clone();
    for mut col in a.column_iter_mut() {
        col -= &mu;
    }
    let mut t = DMatrix::identity(members, members) * inflation;
    if rotate {
        t = mean_preserving_rotation(members, rng)? * t;
    }
    *e = a * t.transpose();
    for mut col in e.column_iter_mut() {
        col += &mu;
    }
    Ok(())
}

/// A random orthogonal N × N matrix Q with `Q 1 = 1`: `V diag(1, O) Vᵀ` with V an orthonormal
/// basis whose first vector is `1/√N` and O a Haar-random orthogonal matrix of size N − 1 (QR of a
/// Gaussian matrix with the signs of R's diagonal fixed; Mezzadri 2007).
pub fn mean_preserving_rotation(members: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>> {
    let haar = |m: usize, rng: &mut dyn RngCore| {
        let g = DMatrix::from_fn(m, m, |_, _| StandardNormal.sample(&mut *rng));
        let qr = g.qr();
        let (mut q, r) = (qr.q(), qr.r());
        for j in 0..m {
            if r[(j, j)] < 0.0 {
                q.column_mut(j).neg_mut();
            }
        }
        q
    };
    // an orthonormal basis beginning with the ones vector: QR of [1, e_2, …, e_N]
    let mut b = DMatrix::identity(members, members);
    b.column_mut(0).fill(1.0);
    let mut v = b.qr().q();
    if v[(0, 0)] < 0.0 {
        v.column_mut(0).neg_mut();
    }
    let mut block = DMatrix::identity(members, members);
    block
        .view_mut((1, 1), (members - 1, members - 1))
        .copy_from(&haar(members - 1, rng));
    let q = &v * block * v.transpose();
    // Q 1 = 1 to rounding
    let ones = DVector::from_element(members, 1.0);
    if (&q * &ones - &ones).amax() > 1e-9 {
        return Err(Error::Numerical(
            "the rotation does not preserve the mean".into(),
        ));
    }
    Ok(q)
}

impl<A: Analysis> Filter for EnsembleFilter<A> {
    fn describe(&self) -> String {
        format!(
            "{}, N = {}, inflation {}{}",
            self.analysis.describe(),
            self.settings.ensemble,
            self.settings.inflation,
            if self.settings.rotate {
                ", rotated"
            } else {
                ""
            }
        )
    }

    fn initialise(&mut self, prior: &Prior, rng: &mut dyn RngCore) -> Result<()> {
        self.ensemble = draw_ensemble(prior, self.settings.ensemble, rng);
        Ok(())
    }

    fn members(&self) -> Option<usize> {
        Some(self.settings.ensemble)
    }

    fn initialise_members(&mut self, members: DMatrix<f64>) -> Result<()> {
        self.ensemble = checked_members(&self.describe(), members, self.settings.ensemble)?;
        Ok(())
    }

    fn forecast(&mut self, model: &dyn Dynamics, rng: &mut dyn RngCore) -> Result<()> {
        forecast_ensemble(&mut self.ensemble, model, rng);
        Ok(())
    }

    fn analyse(
        &mut self,
        y: &[f64],
        observation: &dyn GaussianObservation,
        _model: &dyn Dynamics,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        let mut e = self.analysis.analyse(&self.ensemble, y, observation, rng)?;
        inflate_and_rotate(&mut e, self.settings.inflation, self.settings.rotate, rng)?;
        self.ensemble = e;
        Ok(())
    }

    fn estimate(&self) -> Estimate<'_> {
        Estimate::Ensemble(&self.ensemble)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::PartialIdentity;
    use rand::SeedableRng;

    /// For a linear observation, every analysis mean equals the Kalman update of the ensemble
    /// mean with the ensemble covariance, and the ETKF's covariance equals the Kalman one
    /// exactly (the DEnKF's to second order, the perturbed observations' in expectation).
    #[test]
    fn square_root_analyses_match_the_kalman_update_of_the_ensemble_moments() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (n, members) = (5, 8);
        let e = DMatrix::from_fn(n, members, |_, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            2.0 * z
        });
        let obs = PartialIdentity::new(n, vec![0, 2, 3], 0.7).unwrap();
        let y = [1.0, -0.5, 0.3];
        let mu = e.column_mean();
        let a = &e - &mu * DMatrix::from_element(1, members, 1.0);
        let p = &a * a.transpose() / (members as f64 - 1.0);
        let h = obs.jacobian(mu.as_slice());
        let r = DMatrix::from_diagonal_element(3, 3, 0.49);
        let s = &h * &p * h.transpose() + r;
        let k = &p * h.transpose() * s.clone().try_inverse().unwrap();
        let mean = &mu + &k * (DVector::from_column_slice(&y) - &h * &mu);
        let cov = (DMatrix::identity(n, n) - &k * &h) * &p;
        for update in [Update::Etkf, Update::Denkf, Update::PerturbedObservations] {
            let out = update.analyse(&e, &y, &obs, &mut rng).unwrap();
            let m = out.column_mean();
            let dev = &out - &m * DMatrix::from_element(1, members, 1.0);
            let c = &dev * dev.transpose() / (members as f64 - 1.0);
            // every mean is the Kalman one (the perturbations are centred)
            assert!((&m - &mean).amax() < 1e-10, "{update:?} mean");
            if update == Update::Etkf {
                assert!((&c - &cov).amax() < 1e-10, "{update:?} covariance");
            }
        }
    }

    #[test]
    fn rotations_preserve_the_mean_and_the_covariance() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let q = mean_preserving_rotation(7, &mut rng).unwrap();
        assert!((q.transpose() * &q - DMatrix::<f64>::identity(7, 7)).amax() < 1e-12);
        let mut e = DMatrix::from_fn(4, 7, |i, j| (i * 7 + j) as f64 * 0.3 - (j * j) as f64);
        let before = e.clone();
        inflate_and_rotate(&mut e, 1.0, true, &mut rng).unwrap();
        assert!((e.column_mean() - before.column_mean()).amax() < 1e-12);
        let cov = |m: &DMatrix<f64>| {
            let d = m - m.column_mean() * DMatrix::from_element(1, 7, 1.0);
            &d * d.transpose()
        };
        assert!((cov(&e) - cov(&before)).amax() < 1e-9);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |ensemble, inflation| {
            Enkf::new(
                Update::Etkf,
                EnsembleSettings {
                    ensemble,
                    inflation,
                    rotate: false,
                },
            )
            .err()
            .unwrap()
            .to_string()
        };
        assert!(bad(1, 1.0).contains("at least 2 members"));
        assert!(bad(10, 0.9).contains("inflation must be a finite factor ≥ 1"));
        assert!(bad(10, f64::NAN).contains("got NaN"));
    }
}
