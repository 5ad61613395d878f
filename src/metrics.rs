//! Summary statistics that compare samples of an approximate posterior with a reference.

use crate::{Error, Result};

/// The per-coordinate mean and unbiased (`n − 1`) variance of `n` samples of `p` values
/// (row-major); the variance is 0 for a single sample.
pub fn sample_moments(samples: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let n = samples.len() / p.max(1);
    let mut mean = vec![0.0; p];
    for row in samples.chunks_exact(p) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f64;
        }
    }
    let mut var = vec![0.0; p];
    for row in samples.chunks_exact(p) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m).powi(2) / (n as f64 - 1.0).max(1.0);
        }
    }
    (mean, var)
}

/// First- and second-moment agreement of samples with a reference Gaussian marginal, per
/// coordinate: `z_j = |mean_j − m_j| / √v_j` and `ratio_j = var_j / v_j`.
#[derive(Debug, Clone)]
pub struct MomentComparison {
    /// `|sample mean − reference mean| / reference std`, per coordinate.
    pub mean_error: Vec<f64>,
    /// `sample variance / reference variance`, per coordinate.
    pub variance_ratio: Vec<f64>,
}

impl MomentComparison {
    /// Compares `samples` (`n` rows of `mean.len()` values, row-major) with reference marginal
    /// means and variances. The sample variance uses the unbiased `n − 1` normalisation.
    pub fn new(samples: &[f64], mean: &[f64], var: &[f64]) -> Result<Self> {
        let p = mean.len();
        if p == 0 || var.len() != p || !samples.len().is_multiple_of(p) || samples.len() < 2 * p {
            return Err(Error::Shape(format!(
                "moment comparison: {} sample values for {p} coordinates ({} variances); \
                 need at least two samples",
                samples.len(),
                var.len()
            )));
        }
        let (avg, sample_var) = sample_moments(samples, p);
        let mean_error = (0..p)
            .map(|j| (avg[j] - mean[j]).abs() / var[j].sqrt())
            .collect();
        let variance_ratio = (0..p).map(|j| sample_var[j] / var[j]).collect();
        Ok(Self {
            mean_error,
            variance_ratio,
        })
    }

    /// Compares a Gaussian's marginal means and variances (e.g. an exact law such as
    /// [`crate::experiments::oracle::ddim_law`]) with reference ones: `z_j = |mean_j − m_j| / √v_j`,
    /// `ratio_j = var_j / v_j`, with no sampling involved.
    pub fn of_moments(
        mean: &[f64],
        var: &[f64],
        ref_mean: &[f64],
        ref_var: &[f64],
    ) -> Result<Self> {
        let p = ref_mean.len();
        if p == 0 || mean.len() != p || var.len() != p || ref_var.len() != p {
            return Err(Error::Shape(format!(
                "moment comparison: means of {} and {p}, variances of {} and {}",
                mean.len(),
                var.len(),
                ref_var.len()
            )));
        }
        Ok(Self {
            mean_error: (0..p)
                .map(|j| (mean[j] - ref_mean[j]).abs() / ref_var[j].sqrt())
                .collect(),
            variance_ratio: (0..p).map(|j| var[j] / ref_var[j]).collect(),
        })
    }

    /// `max_j z_j`.
    pub fn max_mean_error(&self) -> f64 {
        self.mean_error.iter().cloned().fold(0.0, f64::max)
    }

    /// `(min_j ratio_j, max_j ratio_j)` over the coordinates `idx` (all when `None`).
    pub fn variance_ratio_range(&self, idx: Option<&[usize]>) -> (f64, f64) {
        let all: Vec<usize>;
        let idx = match idx {
            Some(i) => i,
            None => {
                all = (0..self.variance_ratio.len()).collect();
                &all
            }
        };
        idx.iter()
            .map(|&j| self.variance_ratio[j])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    }
}

/// `E_q[log p(x_{2:L} | x_1)]`: the mean over trajectories (`[N, L, D]` row-major, physical
/// units) of the summed transition log-densities (paper Figure 2's "log-prior").
pub fn expected_log_prior<D: crate::dynamics::Dynamics + ?Sized>(
    system: &D,
    trajectories: &[f64],
    len: usize,
) -> Result<f64> {
    let per = len * system.state_dim();
    if per == 0 || trajectories.is_empty() || !trajectories.len().is_multiple_of(per) {
        return Err(Error::Shape(format!(
            "{} values are not whole trajectories of {len} states of dimension {}",
            trajectories.len(),
            system.state_dim()
        )));
    }
    let n = trajectories.len() / per;
    let mut total = 0.0;
    for t in trajectories.chunks_exact(per) {
        total += system.log_prior(t).ok_or_else(|| {
            Error::Invalid(format!("{} has no transition density", system.name()))
        })?;
    }
    Ok(total / n as f64)
}

/// Samples whose largest magnitude exceeds this multiple of a reference set's largest
/// magnitude are reported as diverged by [`diverged`].
///
/// A correct sampler draws trajectories of the same order as plausible states (the reference:
/// the truth, or ground-truth posterior trajectories, in the same units); two orders of
/// magnitude beyond the largest of them is far outside any posterior of the system, while a
/// reverse diffusion that blew up typically overshoots by many more.
pub const DIVERGENCE_FACTOR: f64 = 100.0;

/// `max |samples| / max |reference|`: how far the largest sampled value reaches beyond the
/// largest reference value (both in the same units). Non-finite samples give `+∞`, a
/// non-finite reference NaN (no scale to compare with); an all-zero reference is treated as
/// magnitude `f64::MIN_POSITIVE`.
pub fn magnitude_ratio(samples: &[f64], reference: &[f64]) -> f64 {
    let largest = |v: &[f64]| {
        v.iter().try_fold(0.0f64, |m, x| {
            if x.is_finite() {
                Some(m.max(x.abs()))
            } else {
                None
            }
        })
    };
    match (largest(samples), largest(reference)) {
        (_, None) => f64::NAN,
        (None, Some(_)) => f64::INFINITY,
        (Some(s), Some(r)) => s / r.max(f64::MIN_POSITIVE),
    }
}

/// Whether `samples` diverged relative to `reference`:
/// [`magnitude_ratio`]` > `[`DIVERGENCE_FACTOR`].
pub fn diverged(samples: &[f64], reference: &[f64]) -> bool {
    magnitude_ratio(samples, reference) > DIVERGENCE_FACTOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_ratio_and_divergence() {
        let reference = [1.0, -4.0, 2.0];
        assert_eq!(magnitude_ratio(&[-2.0, 1.0], &reference), 0.5);
        assert!(!diverged(&[300.0], &reference));
        assert!(diverged(&[-401.0], &reference));
        assert!(diverged(&[1.0, f64::NAN], &reference));
        assert_eq!(
            magnitude_ratio(&[1.0, f64::INFINITY], &reference),
            f64::INFINITY
        );
        assert!(magnitude_ratio(&[1.0], &[f64::NAN]).is_nan());
        assert!(!diverged(&[1.0], &[f64::NAN]));
        assert!(diverged(&[1.0], &[0.0, 0.0]));
    }
}
