//! Scores of a state estimate against the truth, as the DAPPER benchmarks report them: the RMSE
//! of the mean over the sites, the spread `sqrt(mean variance)`, the continuous ranked
//! probability score (Gneiting & Raftery 2007), the rank of the truth among the members (the
//! rank histogram, Anderson 1996; Hamill 2001) and the coverage of the central 90% interval.

use super::Estimate;

/// The 95% quantile of the standard normal: the central 90% interval is `μ ± 1.6449 σ`.
const Z95: f64 = 1.6448536269514722;

/// The scores of one estimate of one state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// `sqrt(mean_i (μ_i − x_i)²)`.
    pub rmse: f64,
    /// `sqrt(mean_i var_i)`, the ensemble variance unbiased (N − 1).
    pub spread: f64,
    /// Mean over the sites of the CRPS.
    pub crps: f64,
    /// Fraction of the sites whose true value lies in the central 90% interval.
    pub coverage90: f64,
    /// Of an ensemble of N: how many sites have the truth at rank r (r members below it),
    /// r = 0 … N; empty for a Gaussian estimate.
    pub ranks: Vec<usize>,
}

/// The scores of `estimate` against the true state `truth`.
pub fn score(estimate: &Estimate, truth: &[f64]) -> Scores {
    let n = truth.len() as f64;
    match estimate {
        Estimate::Ensemble(e) => {
            let members = e.ncols();
            let mut s = Scores {
                ranks: vec![0; members + 1],
                ..Scores::default()
            };
            let mut sorted = vec![0.0; members];
            for (i, &x) in truth.iter().enumerate() {
                for (j, v) in sorted.iter_mut().enumerate() {
                    *v = e[(i, j)];
                }
                sorted.sort_by(f64::total_cmp);
                let mean = sorted.iter().sum::<f64>() / members as f64;
                let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (members as f64 - 1.0).max(1.0);
                s.rmse += (mean - x).powi(2) / n;
                s.spread += var / n;
                s.crps += crps_sorted(&sorted, x) / n;
                let (lo, hi) = (quantile(&sorted, 0.05), quantile(&sorted, 0.95));
                s.coverage90 += f64::from(u8::from(lo <= x && x <= hi)) / n;
                s.ranks[sorted.partition_point(|&v| v < x)] += 1;
            }
            s.rmse = s.rmse.sqrt();
            s.spread = s.spread.sqrt();
            s
        }
        Estimate::Gaussian { mean, var } => {
            let mut s = Scores::default();
            for ((&x, &m), &v) in truth.iter().zip(mean.iter()).zip(var.iter()) {
                let sd = v.max(0.0).sqrt();
                s.rmse += (m - x).powi(2) / n;
                s.spread += v / n;
                s.crps += crps_gaussian(m, sd, x) / n;
                s.coverage90 += f64::from(u8::from((x - m).abs() <= Z95 * sd)) / n;
            }
            s.rmse = s.rmse.sqrt();
            s.spread = s.spread.sqrt();
            s
        }
    }
}

/// The CRPS of the empirical law of the sorted members `s` at `x`:
/// `mean_i |s_i − x| − (1 / 2N²) Σ_ij |s_i − s_j|`, with `Σ_ij |s_i − s_j| = 2 Σ_k (2k − N + 1) s_k`.
pub fn crps_sorted(s: &[f64], x: f64) -> f64 {
    let n = s.len() as f64;
    let to_x = s.iter().map(|v| (v - x).abs()).sum::<f64>() / n;
    let pairs: f64 = s
        .iter()
        .enumerate()
        .map(|(k, v)| (2.0 * k as f64 - n + 1.0) * v)
        .sum::<f64>()
        * 2.0;
    to_x - pairs / (2.0 * n * n)
}

/// The CRPS of `N(μ, σ²)` at `x`: `σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π]`, `z = (x − μ)/σ`; `|x − μ|`
/// for σ = 0.
pub fn crps_gaussian(mu: f64, sigma: f64, x: f64) -> f64 {
    if sigma <= 0.0 {
        return (x - mu).abs();
    }
    let z = (x - mu) / sigma;
    let cdf = 0.5 * (1.0 + statrs::function::erf::erf(z / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    sigma * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - 1.0 / std::f64::consts::PI.sqrt())
}

/// The `q`-quantile of sorted values, linear between order statistics (NumPy's default).
fn quantile(s: &[f64], q: f64) -> f64 {
    let pos = q * (s.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    match s.get(i + 1) {
        Some(next) => s[i] + f * (next - s[i]),
        None => s[i],
    }
}

/// The mean of each score over cycles, and the rank histogram summed over them.
pub fn summarise<'a>(scores: impl IntoIterator<Item = &'a Scores>) -> Scores {
    let mut total = Scores::default();
    let mut count = 0usize;
    for s in scores {
        total.rmse += s.rmse;
        total.spread += s.spread;
        total.crps += s.crps;
        total.coverage90 += s.coverage90;
        if total.ranks.len() < s.ranks.len() {
            total.ranks.resize(s.ranks.len(), 0);
        }
        for (t, r) in total.ranks.iter_mut().zip(&s.ranks) {
            *t += r;
        }
        count += 1;
    }
    let c = count.max(1) as f64;
    total.rmse /= c;
    total.spread /= c;
    total.crps /= c;
    total.coverage90 /= c;
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn ensemble_crps_matches_its_definition_and_the_gaussian_limit() {
        // the pairwise form against the double sum, on a small unsorted ensemble
        let members = [0.3, -1.2, 2.0, 0.7, -0.1];
        let x = 0.4;
        let n = members.len() as f64;
        let direct = members.iter().map(|v: &f64| (v - x).abs()).sum::<f64>() / n
            - members
                .iter()
                .flat_map(|a| members.iter().map(move |b| (a - b).abs()))
                .sum::<f64>()
                / (2.0 * n * n);
        let mut sorted = members.to_vec();
        sorted.sort_by(f64::total_cmp);
        assert!((crps_sorted(&sorted, x) - direct).abs() < 1e-14);
        // the standard normal at 0: (√2 − 1)/√π = 0.233695…
        let exact = (2f64.sqrt() - 1.0) / std::f64::consts::PI.sqrt();
        assert!((crps_gaussian(0.0, 1.0, 0.0) - exact).abs() < 1e-12);
        // a large ensemble of normal quantiles approaches it (the empirical CRPS is biased by
        // E|X − X'|/2N = 1/(N√π) ≈ 0.0028 at N = 200)
        let q: Vec<f64> = (0..200)
            .map(|i| {
                let p = (i as f64 + 0.5) / 200.0;
                // inverse normal CDF by bisection on erf
                let (mut lo, mut hi) = (-6.0f64, 6.0f64);
                for _ in 0..80 {
                    let mid = 0.5 * (lo + hi);
                    let c = 0.5 * (1.0 + statrs::function::erf::erf(mid / 2f64.sqrt()));
                    if c < p {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                0.5 * (lo + hi)
            })
            .collect();
        assert!((crps_sorted(&q, 0.0) - exact).abs() < 0.004);
    }

    #[test]
    fn scores_of_an_ensemble_and_a_gaussian() {
        // two sites, three members: site 0 members 1, 2, 3 (truth 2), site 1 members 0, 0, 3
        // (truth 10: outside, rank 3)
        let e = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 0.0, 0.0, 3.0]);
        let s = score(&Estimate::Ensemble(&e), &[2.0, 10.0]);
        assert!((s.rmse - ((0.0 + 81.0) / 2.0f64).sqrt()).abs() < 1e-12);
        assert!((s.spread - ((1.0 + 3.0) / 2.0f64).sqrt()).abs() < 1e-12);
        assert_eq!(s.ranks, [0, 1, 0, 1]);
        assert!((s.coverage90 - 0.5).abs() < 1e-12);
        let g = score(
            &Estimate::Gaussian {
                mean: &[0.0, 0.0],
                var: &[1.0, 4.0],
            },
            &[1.0, 4.0],
        );
        assert!((g.rmse - (17.0f64 / 2.0).sqrt()).abs() < 1e-12);
        assert!((g.coverage90 - 0.5).abs() < 1e-12);
        assert!(g.ranks.is_empty());
        let m = summarise([&s, &s]);
        assert_eq!(m.ranks, [0, 2, 0, 2]);
        assert!((m.rmse - s.rmse).abs() < 1e-12);
    }
}
