//! The local ensemble transform Kalman filter (LETKF; Hunt, Kostelich & Szunyogh 2007, Physica
//! D): the ETKF analysis done independently for each site of a periodic 1-D domain, with the
//! observations near it weighted by a Gaspari–Cohn taper (Gaspari & Cohn 1999, eq. 4.10) of
//! their distance — R-localisation: the taper multiplies `R⁻¹`, so `S = R^{-1/2} Y` and
//! `d = R^{-1/2} δ` are scaled by its square root. The local analyses run in parallel (rayon);
//! inflation and rotation then act on the whole ensemble, as for [`super::ensemble::Enkf`].
//!
//! The taper's length scale follows DAPPER's convention: the Gaspari–Cohn half-width is
//! `c = √(10/3) · radius` (DAPPER rounds the factor to 1.82), so that near 0 the taper agrees to
//! second order with the Gaussian `exp(−d² / 2 radius²)` (at `d = radius` it is 0.635 against
//! 0.607); its support is `2c`, and weights below 10⁻³ are cut.

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use rayon::prelude::*;

use super::ensemble::{transform, Analysis, EnsembleFilter, EnsembleSettings};
use super::GaussianObservation;
use crate::{Error, Result};

/// Weights below this are left out of a local analysis.
const CUTOFF: f64 = 1e-3;

/// The settings of an [`Letkf`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LetkfSettings {
    /// Ensemble size N (≥ 2).
    pub ensemble: usize,
    /// Multiplicative inflation of the analysis anomalies (≥ 1).
    #[serde(default = "super::ensemble::no_inflation")]
    pub inflation: f64,
    /// Apply a random mean-preserving rotation to the analysis anomalies.
    #[serde(default)]
    pub rotate: bool,
    /// Localisation radius in sites (> 0): the Gaspari–Cohn half-width is `√(10/3) · radius`.
    pub radius: f64,
}

/// The Gaspari–Cohn taper (eq. 4.10 of Gaspari & Cohn 1999) at distance `d` with half-width `c`:
/// 1 at 0, a compactly supported fifth-order piecewise rational, 0 beyond `2c`.
pub fn gaspari_cohn(d: f64, c: f64) -> f64 {
    let r = d.abs() / c;
    if r <= 1.0 {
        let (r2, r3) = (r * r, r * r * r);
        1.0 + r2 * (-r3 / 4.0 + r2 / 2.0) + r3 * (5.0 / 8.0) - r2 * (5.0 / 3.0)
    } else if r <= 2.0 {
        let (r2, r3) = (r * r, r * r * r);
        r2 * (r3 / 12.0 - r2 / 2.0) + r3 * (5.0 / 8.0) + r2 * (5.0 / 3.0) - r * 5.0 + 4.0
            - (2.0 / 3.0) / r
    } else {
        0.0
    }
}

/// The LETKF's analysis: a local ETKF per site (its ensemble, forecasts, inflation and
/// rotation are [`EnsembleFilter`]'s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Localised {
    /// Localisation radius in sites.
    pub radius: f64,
}

/// The local ensemble transform Kalman filter.
pub type Letkf = EnsembleFilter<Localised>;

/// An LETKF; an error for N < 2, an inflation below 1 or a radius that is not positive.
pub fn letkf(settings: LetkfSettings) -> Result<Letkf> {
    if !(settings.radius.is_finite() && settings.radius > 0.0) {
        return Err(Error::Invalid(format!(
            "radius (the localisation length in sites) must be positive and finite, got {}",
            settings.radius
        )));
    }
    EnsembleFilter::new(
        Localised {
            radius: settings.radius,
        },
        EnsembleSettings {
            ensemble: settings.ensemble,
            inflation: settings.inflation,
            rotate: settings.rotate,
        },
    )
}

/// One site's local ETKF transform (Hunt et al. 2007, eqs. 21–24): the analysis row of an
/// ensemble row `x` (mean `x̄`, anomalies `a`) is `x̄ + a·w + aᵀ T`. `None` where no observation
/// lies within the taper's support (the row is left as it is).
pub type SiteTransform = Option<(DVector<f64>, DMatrix<f64>)>;

impl Localised {
    /// The local ETKF transform of every site of `e` (n × N) for the observation `y` — what an
    /// LETKF applies to the state it observes and a local ensemble transform smoother
    /// ([`super::letks`]) also to the earlier states of its window (Kalnay et al. 2010's
    /// "no-cost smoother"): a site's weights act on that site's row of every state.
    pub fn transforms(
        &self,
        e: &DMatrix<f64>,
        y: &[f64],
        obs: &dyn GaussianObservation,
    ) -> Result<Vec<SiteTransform>> {
        let (n, members) = e.shape();
        let p = obs.len();
        if y.len() != p {
            return Err(Error::Shape(format!(
                "the observation has {} values, the observation model {p}",
                y.len()
            )));
        }
        let sites = obs.sites().ok_or_else(|| {
            Error::Invalid(format!(
                "LETKF localises by distance: the observation '{}' does not attach its values \
                 to sites",
                obs.describe()
            ))
        })?;
        let mut he = DMatrix::zeros(p, members);
        for j in 0..members {
            he.column_mut(j)
                .copy_from_slice(&obs.observe(e.column(j).as_slice()));
        }
        let ybar = he.column_mean();
        let sigma = obs.sigma();
        // S = R^{-1/2} Y and d = R^{-1/2} δ, once for all sites
        let mut s = &he - &ybar * DMatrix::from_element(1, members, 1.0);
        for (i, sd) in sigma.iter().enumerate() {
            s.row_mut(i).scale_mut(1.0 / sd);
        }
        let d = DVector::from_iterator(p, (0..p).map(|i| (y[i] - ybar[i]) / sigma[i]));
        let half_width = self.radius * (10.0f64 / 3.0).sqrt();
        // the observations at each site, so that a local analysis visits only the sites within
        // the taper's support (cost O(n · support), not O(n · p))
        let mut at_site: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (j, &site) in sites.iter().enumerate() {
            at_site
                .get_mut(site)
                .ok_or_else(|| {
                    Error::Shape(format!("observed site {site} is outside the {n} sites"))
                })?
                .push(j);
        }
        let reach = ((2.0 * half_width).ceil() as usize).min(n / 2);
        // members along columns of the transpose: one observation's N values are contiguous
        let s_t = s.transpose();
        Ok((0..n)
            .into_par_iter()
            .with_min_len(16)
            .map(|i| {
                let mut neighbours: Vec<usize> =
                    (0..=2 * reach).map(|k| (i + n - reach + k) % n).collect();
                neighbours.sort_unstable();
                neighbours.dedup();
                let local: Vec<(usize, f64)> = neighbours
                    .iter()
                    .flat_map(|&site| at_site[site].iter().map(move |&j| (site, j)))
                    .filter_map(|(site, j)| {
                        let gap = site.abs_diff(i);
                        let distance = gap.min(n - gap) as f64;
                        let w = gaspari_cohn(distance, half_width);
                        (w > CUTOFF).then_some((j, w.sqrt()))
                    })
                    .collect();
                if local.is_empty() {
                    return None;
                }
                let sl = DMatrix::from_fn(local.len(), members, |r, c| {
                    s_t[(c, local[r].0)] * local[r].1
                });
                let dl = DVector::from_iterator(local.len(), local.iter().map(|&(j, w)| d[j] * w));
                Some(transform(&sl, &dl))
            })
            .collect())
    }
}

/// Applies the sites' transforms to the rows of `e` (n × N): row i becomes
/// `x̄ᵢ + aᵢ·wᵢ + Tᵢᵀ aᵢ`; rows without a transform are kept.
pub fn apply_transforms(e: &mut DMatrix<f64>, transforms: &[SiteTransform]) {
    let rows: Vec<Option<DVector<f64>>> = transforms
        .par_iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_ref().map(|(w, t)| {
                let row = e.row(i).transpose();
                let mean = row.mean();
                let anomalies = row.add_scalar(-mean);
                let shift = anomalies.dot(w);
                (t.transpose() * &anomalies).add_scalar(mean + shift)
            })
        })
        .collect();
    for (i, r) in rows.into_iter().enumerate() {
        if let Some(r) = r {
            e.row_mut(i).copy_from(&r.transpose());
        }
    }
}

impl Analysis for Localised {
    fn describe(&self) -> String {
        format!("LETKF, radius {}", self.radius)
    }

    /// The local analyses of `e` with `y`, before inflation and rotation.
    fn analyse(
        &self,
        e: &DMatrix<f64>,
        y: &[f64],
        obs: &dyn GaussianObservation,
        _rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>> {
        let transforms = self.transforms(e, y, obs)?;
        let mut out = e.clone();
        apply_transforms(&mut out, &transforms);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::ensemble::Update;
    use crate::methods::PartialIdentity;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn the_taper_is_gaspari_cohn() {
        // 1 at 0, continuous at c and 2c, 0 beyond; with c = √(10/3) · radius it matches the
        // Gaussian of that radius to second order at 0, and is 0.6354 at the radius
        let c = 2.0;
        assert_eq!(gaspari_cohn(0.0, c), 1.0);
        assert!((gaspari_cohn(c - 1e-9, c) - gaspari_cohn(c + 1e-9, c)).abs() < 1e-7);
        assert!(gaspari_cohn(2.0 * c - 1e-9, c).abs() < 1e-7);
        assert_eq!(gaspari_cohn(2.0 * c + 0.1, c), 0.0);
        let c = (10.0f64 / 3.0).sqrt();
        let at_radius = gaspari_cohn(1.0, c);
        assert!((at_radius - 0.635374).abs() < 1e-6, "{at_radius}");
        let d = 1e-3f64;
        let gaussian = (-0.5 * d * d).exp();
        assert!((gaspari_cohn(d, c) - gaussian).abs() < 1e-8);
    }

    /// With a radius far beyond the domain every weight is 1 and every local analysis is the
    /// global ETKF's row: the LETKF equals the ETKF.
    #[test]
    fn without_localisation_the_letkf_is_the_etkf() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (n, members) = (12, 6);
        let e = DMatrix::from_fn(n, members, |_, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z
        });
        let obs = PartialIdentity::every(n, 2, 0.5).unwrap();
        let y: Vec<f64> = (0..obs.len()).map(|j| 0.1 * j as f64).collect();
        let local = Localised { radius: 1e6 }
            .analyse(&e, &y, &obs, &mut rng)
            .unwrap();
        let global = Update::Etkf.analyse(&e, &y, &obs, &mut rng).unwrap();
        assert!((local - global).amax() < 1e-10);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |radius: f64| {
            letkf(LetkfSettings {
                ensemble: 7,
                inflation: 1.04,
                rotate: false,
                radius,
            })
            .err()
            .unwrap()
            .to_string()
        };
        assert!(err(0.0).contains("radius"));
        assert!(err(-1.0).contains("must be positive"));
        assert!(err(f64::NAN).contains("NaN"));
    }
}
