//! The summary of an evaluation: per method, the medians of the paper's statistics over the
//! observations, as a markdown table.

use super::{EvaluateRow, Statistics};
use crate::experiments::markdown::row;

/// Median of a list (mean of the middle two for an even count; NaN for an empty one). NaN — a
/// diverged method's value — sorts above every number, as the worst.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// One method of an evaluation, summarised over its observations by [`medians`].
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSummary {
    /// The SDA sampler's description (`None` for the BPF′ and the smoothers).
    pub sampler: Option<String>,
    /// The classical smoother's description (`None` for the BPF′ and SDA).
    pub smoother: Option<String>,
    /// The medians of the three statistics.
    pub medians: Statistics,
    /// The median over observations of spread / RMSE (1 for a calibrated method, whose
    /// spread predicts its error).
    pub spread_ratio: f64,
    /// Mean wall-clock seconds per run.
    pub seconds: f64,
    /// ε evaluations per SDA sample (0 for the BPF′).
    pub evaluations: usize,
    /// Network forwards and VJPs per SDA sample (the largest over its rows).
    pub passes: (f64, f64),
}

/// Per method (BPF′ first, then the SDA samplers and the smoothers in the order their rows
/// first appear) the medians over observations of the statistics, the mean seconds and the ε
/// evaluations.
pub fn medians(rows: &[EvaluateRow]) -> Vec<MethodSummary> {
    type Key = (Option<String>, Option<String>);
    let key = |r: &EvaluateRow| -> Key { (r.sampler.clone(), r.smoother.clone()) };
    let mut methods: Vec<Key> = vec![(None, None)];
    for r in rows {
        if !methods.contains(&key(r)) {
            methods.push(key(r));
        }
    }
    methods
        .into_iter()
        .filter(|m| rows.iter().any(|r| &key(r) == m))
        .map(|(sampler, smoother)| {
            let sel: Vec<&EvaluateRow> = rows
                .iter()
                .filter(|r| r.sampler == sampler && r.smoother == smoother)
                .collect();
            let med = |f: fn(&Statistics) -> f64| median(sel.iter().map(|r| f(&r.stats)).collect());
            MethodSummary {
                sampler,
                smoother,
                medians: Statistics {
                    w1_ratio: med(|s| s.w1_ratio),
                    log_likelihood: med(|s| s.log_likelihood),
                    log_prior: med(|s| s.log_prior),
                    rmse: med(|s| s.rmse),
                    spread: med(|s| s.spread),
                    crps: med(|s| s.crps),
                },
                spread_ratio: med(|s| s.spread / s.rmse),
                seconds: sel.iter().map(|r| r.seconds).sum::<f64>() / sel.len() as f64,
                evaluations: sel.iter().map(|r| r.evaluations).max().unwrap_or(0),
                passes: sel.iter().fold((0.0, 0.0), |(f, v), r| {
                    (f64::max(f, r.passes.0), f64::max(v, r.passes.1))
                }),
            }
        })
        .collect()
}

/// `v` with `decimals` decimals, or in scientific notation beyond 10⁶ in magnitude (where a
/// diverged run's statistics would otherwise print hundreds of digits).
fn fixed_or_scientific(v: f64, decimals: usize) -> String {
    if v.is_finite() && v.abs() >= 1e6 {
        format!("{v:.3e}")
    } else {
        format!("{v:.decimals$}")
    }
}

/// [`fixed_or_scientific`], or `–` for NaN: a statistic not computed (W1 without particle
/// filters, the log-prior of a model without transition density, scores of old rows).
fn dash_if_nan(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "–".to_string()
    } else {
        fixed_or_scientific(v, decimals)
    }
}

/// The name of a method in a table: `SDA, ` and the sampler's description, the smoother's
/// description, or `filter` for the BPF′ (neither).
pub fn method_label(sampler: Option<&str>, smoother: Option<&str>, filter: &str) -> String {
    match (sampler, smoother) {
        (Some(s), _) => format!("SDA, {s}"),
        (None, Some(s)) => s.to_string(),
        (None, None) => filter.to_string(),
    }
}

/// The medians of [`medians`] as a markdown table.
pub fn markdown_table(title: &str, rows: &[EvaluateRow]) -> String {
    let count = {
        let mut o: Vec<usize> = rows.iter().map(|r| r.observation).collect();
        o.sort_unstable();
        o.dedup();
        o.len()
    };
    let mut s = row(&[
        &format!("{title} ({count} observations, medians)"),
        "W1(·, BPF) / W1(BPF′, BPF)",
        "E[log p(y|x)]",
        "E[log p(x_2:L|x_1)]",
        "RMSE to truth",
        "spread",
        "spread / RMSE",
        "CRPS",
        "ε evals",
        "forwards + VJPs per sample",
        "s per run",
    ]);
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    // rows saved before these scores were recorded read NaN
    let score = |v: f64| dash_if_nan(v, 3);
    for m in medians(rows) {
        let label = method_label(
            m.sampler.as_deref(),
            m.smoother.as_deref(),
            "BPF′ (second filter)",
        );
        let (evaluations, passes) = match m.sampler {
            None => ("–".to_string(), "–".to_string()),
            // rows saved before passes were counted
            Some(_) if m.passes == (0.0, 0.0) => (m.evaluations.to_string(), "–".to_string()),
            Some(_) => (
                m.evaluations.to_string(),
                format!("{:.0} + {:.0}", m.passes.0, m.passes.1),
            ),
        };
        s.push_str(&row(&[
            label,
            dash_if_nan(m.medians.w1_ratio, 2),
            dash_if_nan(m.medians.log_likelihood, 2),
            dash_if_nan(m.medians.log_prior, 1),
            score(m.medians.rmse),
            score(m.medians.spread),
            dash_if_nan(m.spread_ratio, 2),
            score(m.medians.crps),
            evaluations,
            passes,
            format!("{:.1}", m.seconds),
        ]));
    }
    let diverged: Vec<String> = rows
        .iter()
        .filter(|r| r.diverged)
        .map(|r| {
            let method = method_label(r.sampler.as_deref(), r.smoother.as_deref(), "BPF′");
            format!("{method} on observation {}", r.observation)
        })
        .collect();
    if !diverged.is_empty() {
        s.push_str(&format!(
            "\n**Diverged** ({} of {} runs; largest |x| over {}× the reference's (the particle \
             filter's, or the truth's without one), their statistics are meaningless): {}.\n",
            diverged.len(),
            rows.len(),
            crate::metrics::DIVERGENCE_FACTOR,
            diverged.join(", ")
        ));
    }
    s
}

/// Per method (in [`medians`]' order), its rank histograms summed over the observations; methods
/// whose rows hold none (saved before ranks were recorded) or of unequal sample counts are left
/// out.
pub fn rank_histograms(rows: &[EvaluateRow]) -> Vec<crate::plot::RankHistogram> {
    medians(rows)
        .into_iter()
        .filter_map(|m| {
            let mut counts: Vec<usize> = Vec::new();
            for r in rows
                .iter()
                .filter(|r| r.sampler == m.sampler && r.smoother == m.smoother)
            {
                if r.ranks.is_empty() || (!counts.is_empty() && r.ranks.len() != counts.len()) {
                    return None;
                }
                counts.resize(r.ranks.len(), 0);
                for (c, v) in counts.iter_mut().zip(&r.ranks) {
                    *c += v;
                }
            }
            let label = method_label(m.sampler.as_deref(), m.smoother.as_deref(), "BPF′");
            (!counts.is_empty()).then_some(crate::plot::RankHistogram { label, counts })
        })
        .collect()
}
