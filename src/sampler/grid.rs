//! Time grids `1 = t_0 > t_1 > … > t_S = 0` of the reverse diffusion.

use std::str::FromStr;

use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// How [`sample`](super::sample) spaces its `S` steps between `t = 1` and `t = 0`.
///
/// The cost of a step is the same everywhere, but the error of an integrator is not: it is
/// largest where the log signal-to-noise ratio `λ(t) = ln(μ(t)/σ(t))` changes fastest, near
/// `t = 0` for the VP schedules, where tightly observed coordinates are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TimeGrid {
    /// Evenly spaced in t (the paper's).
    #[default]
    Uniform,
    /// Evenly spaced in λ(t) = ln(μ/σ) (the grid of DPM-Solver, Lu et al. 2022).
    LogSnr,
    /// The ρ-power grid of EDM (Karras, Aittala, Aila & Laine 2022) in the noise-to-signal
    /// ratio κ = σ/μ: `κ_i = (κ_max^{1/ρ} + i/S (κ_min^{1/ρ} − κ_max^{1/ρ}))^ρ` (ρ = 7 there).
    Edm {
        /// The exponent ρ > 0.
        rho: f64,
    },
}

impl TimeGrid {
    /// The `steps + 1` times `1 = t_0 > … > t_S = 0` for `schedule`.
    pub fn times(&self, schedule: &dyn NoiseSchedule, steps: usize) -> Vec<f64> {
        let s = steps.max(1) as f64;
        let fraction = |i: usize| i as f64 / s;
        let mut times: Vec<f64> = match *self {
            TimeGrid::Uniform => (0..=steps).map(|i| 1.0 - fraction(i)).collect(),
            TimeGrid::LogSnr => {
                let lambda = |t: f64| (schedule.mu(t) / schedule.sigma(t)).ln();
                let (hi, lo) = (lambda(1.0), lambda(0.0));
                (0..=steps)
                    .map(|i| invert(|t| -lambda(t), -(hi + fraction(i) * (lo - hi))))
                    .collect()
            }
            TimeGrid::Edm { rho } => {
                let kappa = |t: f64| schedule.sigma(t) / schedule.mu(t);
                let (hi, lo) = (kappa(1.0).powf(1.0 / rho), kappa(0.0).powf(1.0 / rho));
                (0..=steps)
                    .map(|i| invert(kappa, (hi + fraction(i) * (lo - hi)).powf(rho)))
                    .collect()
            }
        };
        // exact end points, whatever the rounding of the inversion
        times[0] = 1.0;
        times[steps] = 0.0;
        times
    }

    /// The steps `(t, t')` of the grid, in order.
    pub fn steps(
        &self,
        schedule: &dyn NoiseSchedule,
        steps: usize,
    ) -> impl Iterator<Item = (f64, f64)> {
        let times = self.times(schedule, steps);
        (0..steps).map(move |i| (times[i], times[i + 1]))
    }
}

/// The `t ∈ [0, 1]` at which the increasing function `f` equals `target` (bisection to 1e-12;
/// clamped to the ends).
fn invert(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

impl FromStr for TimeGrid {
    type Err = Error;
    /// `uniform`, `log-snr`, `edm` (ρ = 7) or `edm:RHO`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "uniform" => Ok(TimeGrid::Uniform),
            "log-snr" => Ok(TimeGrid::LogSnr),
            "edm" => Ok(TimeGrid::Edm { rho: 7.0 }),
            _ => {
                let rho = s.strip_prefix("edm:").and_then(|r| r.parse::<f64>().ok());
                match rho {
                    Some(rho) if rho.is_finite() && rho > 0.0 => Ok(TimeGrid::Edm { rho }),
                    _ => Err(Error::Invalid(format!(
                        "unknown time grid '{s}': expected uniform, log-snr, edm (rho = 7) or \
                         edm:RHO with RHO > 0"
                    ))),
                }
            }
        }
    }
}

impl std::fmt::Display for TimeGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeGrid::Uniform => write!(f, "uniform"),
            TimeGrid::LogSnr => write!(f, "log-snr"),
            TimeGrid::Edm { rho } => write!(f, "edm:{rho}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::VpCosine;

    #[test]
    fn grids_run_from_one_to_zero_and_space_what_they_promise() {
        let s = VpCosine::default();
        let lambda = |t: f64| (s.mu(t) / s.sigma(t)).ln();
        for grid in [
            TimeGrid::Uniform,
            TimeGrid::LogSnr,
            TimeGrid::Edm { rho: 7.0 },
        ] {
            let t = grid.times(&s, 16);
            assert_eq!((t[0], t[16]), (1.0, 0.0), "{grid}");
            assert!(t.windows(2).all(|w| w[0] > w[1]), "{grid}: {t:?}");
        }
        let t = TimeGrid::LogSnr.times(&s, 16);
        let d: Vec<f64> = t.windows(2).map(|w| lambda(w[1]) - lambda(w[0])).collect();
        assert!(
            d.iter()
                .all(|x| (x - d[0]).abs() < 1e-9 * d[0].abs().max(1.0)),
            "{d:?}"
        );
        let t = TimeGrid::Edm { rho: 7.0 }.times(&s, 16);
        let k: Vec<f64> = t
            .iter()
            .map(|&t| (s.sigma(t) / s.mu(t)).powf(1.0 / 7.0))
            .collect();
        let d: Vec<f64> = k.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(d.iter().all(|x| (x - d[0]).abs() < 1e-9), "{d:?}");
    }

    #[test]
    fn names_parse_and_bad_ones_are_refused() {
        assert_eq!(
            "edm".parse::<TimeGrid>().unwrap(),
            TimeGrid::Edm { rho: 7.0 }
        );
        assert_eq!(
            "edm:3".parse::<TimeGrid>().unwrap(),
            TimeGrid::Edm { rho: 3.0 }
        );
        assert_eq!("log-snr".parse::<TimeGrid>().unwrap(), TimeGrid::LogSnr);
        for bad in ["edm:-1", "edm:nan", "logsnr", ""] {
            let e = bad.parse::<TimeGrid>().unwrap_err().to_string();
            assert!(e.contains("time grid"), "{bad}: {e}");
        }
    }
}
