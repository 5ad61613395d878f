//! The classical methods reproduce DAPPER's published analysis RMSEs on its
//! `Lorenz96/sakov2008` setup (n = 40, F = 8, Δt = 0.05, every site observed every step with
//! R = I; Sakov & Oke 2008, Table 1, and Bocquet 2011's LETKF, as DAPPER's
//! `mods/Lorenz96/sakov2008.py` lists them):
//! 10 000 cycles, averaged after 20 time units of burn-in, the median over five seeds (a filter
//! with minimal inflation can lose track of the truth on a long run: the rotated ETKF does on
//! seed 0 — the median is robust to one such run), within 10% of the published figure; the
//! tuned ensemble filters' spread/RMSE in [0.8, 1.2]. And the command's refusals.

mod common;

use common::{fails_with, ok, sda};
use rayon::prelude::*;
use sda::experiments::baseline::{run, BaselineOptions, Setup};

/// Median over seeds 0–4 of (analysis RMSE, spread / RMSE).
fn median_scores(method: &str, params: &str) -> (f64, f64) {
    let setup = Setup::named("sakov2008").unwrap();
    let mut runs: Vec<(f64, f64)> = (0..5u64)
        .into_par_iter()
        .map(|seed| {
            let options = BaselineOptions {
                method: method.into(),
                params: params.into(),
                cycles: 10_000,
                seed,
                ..BaselineOptions::default()
            };
            let r = run(&setup, &options, |_| {}).unwrap();
            (r.analysis.rmse, r.analysis.spread / r.analysis.rmse)
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[2]
}

#[test]
fn sakov2008_reproduces_the_published_analysis_errors() {
    // (method, parameters, published rmse.a, whether spread/RMSE is checked)
    let table = [
        ("climatology", "", 3.6, false),
        ("var3d", "", 0.41, false),
        ("enkf", "ensemble = 40, inflation = 1.06", 0.22, true),
        ("denkf", "ensemble = 40, inflation = 1.01", 0.18, true),
        (
            "etkf",
            "ensemble = 24, inflation = 1.013, rotate = true",
            0.18,
            true,
        ),
        (
            "letkf",
            "ensemble = 7, inflation = 1.04, radius = 4, rotate = true",
            0.22,
            true,
        ),
    ];
    let mut report = Vec::new();
    for (method, params, published, calibrated) in table {
        let (rmse, ratio) = median_scores(method, params);
        report.push(format!(
            "{method} {params}: {rmse:.4} (published {published}), spread/rmse {ratio:.3}"
        ));
        assert!(
            (rmse / published - 1.0).abs() <= 0.10,
            "{method} {params}: median rmse_a {rmse:.4} is not within 10% of {published}"
        );
        if calibrated {
            assert!(
                (0.8..=1.2).contains(&ratio),
                "{method}: spread/rmse {ratio:.3}"
            );
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn baseline_refuses_bad_input_by_name() {
    let dir = std::env::temp_dir().join(format!("sda-baseline-{}", std::process::id()));
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let base = ["baseline", "lorenz96", "--cycles", "500"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    fails_with(
        &sda(&with(&base, &["--method", "letkff"])),
        "unknown method 'letkff'",
    );
    fails_with(
        &sda(&with(
            &base,
            &["--method", "etkf", "--params", "ensemble = 1"],
        )),
        "at least 2 members",
    );
    fails_with(
        &sda(&with(
            &base,
            &[
                "--method",
                "etkf",
                "--params",
                "ensemble = 8, inflation = 0.9",
            ],
        )),
        "inflation must be a finite factor ≥ 1",
    );
    fails_with(
        &sda(&with(
            &base,
            &["--method", "etkf", "--params", "ensembel = 8"],
        )),
        "unknown field `ensembel`",
    );
    fails_with(
        &sda(&with(&base, &["--method", "var3d", "--setup", "sakov"])),
        "unknown setup 'sakov'",
    );
    fails_with(
        &sda(&["baseline", "lorenz63", "--method", "var3d"]),
        "setup sakov2008 is a lorenz96 experiment, not lorenz63",
    );
    fails_with(
        &sda(&[
            "baseline", "lorenz96", "--method", "var3d", "--cycles", "100",
        ]),
        "ends before the burn-in",
    );
    fails_with(
        &sda(&["baseline", "lorenz96", "--method", "var3d", "--cycles", "0"]),
        "must be between 1 and 1e8 model steps",
    );
    // a filter that knows nothing new loses track: an error after its row, not a silent mean
    fails_with(
        &sda(&with(
            &base,
            &["--method", "etkf", "--params", "ensemble = 2"],
        )),
        "lost track of the truth",
    );
    // --observe changes the setup's observation, and refuses what it cannot mean
    for (observe, needle) in [
        ("sites = 0", "the stride must be in 1..=40"),
        (
            "every = 0",
            "every (model steps between observations) must be at least 1",
        ),
        ("sigma = -1", "sigma must be positive and finite"),
        ("evry = 2", "unknown field `evry`"),
    ] {
        fails_with(
            &sda(&with(
                &base,
                &["--method", "climatology", "--observe", observe],
            )),
            needle,
        );
    }
    // --out keeps an earlier run unless --force
    ok(&sda(&with(&base, &["--method", "climatology", "--out", o])));
    assert!(out.join("cycles.csv").exists() && out.join("summary.json").exists());
    // the per-cycle scores also as NumPy's float32, the CSV's columns and rows
    let npy = sda::data::read_npy(&out.join("cycles.npy")).unwrap();
    let csv = std::fs::read_to_string(out.join("cycles.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(npy.shape, vec![rows.len(), 10]);
    let last: Vec<f64> = rows[rows.len() - 1]
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    for (j, v) in last.iter().enumerate() {
        let got = npy.data[(rows.len() - 1) * 10 + j] as f64;
        assert!(
            (got - v).abs() <= 1e-6 * v.abs().max(1.0),
            "column {j}: {got} vs {v}"
        );
    }
    fails_with(
        &sda(&with(&base, &["--method", "climatology", "--out", o])),
        "pass --force to replace it",
    );
    ok(&sda(&with(
        &base,
        &["--method", "climatology", "--out", o, "--force"],
    )));
    std::fs::remove_dir_all(&dir).ok();
}

/// The EnKS's filter is the ETKF (the augmented analysis leaves the newest ensemble as the
/// ETKF's), and smoothing back over 4 cycles lowers the error of the same times: over 2 000
/// cycles the smoothed RMSE is below 85% of the analysis RMSE (0.140 against 0.188 measured at
/// 3 000 cycles), its spread within 20% of its RMSE.
#[test]
fn the_ensemble_smoother_is_the_etkf_plus_smoothing() {
    let setup = Setup::named("sakov2008").unwrap();
    let run_with = |method: &str, params: &str| {
        let options = BaselineOptions {
            method: method.into(),
            params: params.into(),
            cycles: 2000,
            seed: 0,
            ..BaselineOptions::default()
        };
        run(&setup, &options, |_| {}).unwrap()
    };
    let etkf = run_with("etkf", "ensemble = 24, inflation = 1.013");
    let enks = run_with("enks", "ensemble = 24, inflation = 1.013, lag = 4");
    assert!((etkf.analysis.rmse - enks.analysis.rmse).abs() < 1e-9);
    let smoothed = enks.smoothed.expect("the smoother's scores");
    assert!(
        smoothed.rmse < 0.85 * enks.analysis.rmse,
        "rmse_s {} against rmse_a {}",
        smoothed.rmse,
        enks.analysis.rmse
    );
    assert!((smoothed.spread / smoothed.rmse - 1.0).abs() < 0.2);
    assert!(etkf.smoothed.is_none());
}

/// Strong-constraint 4D-Var on `sakov2008` observed every 4th step (Δt_obs = 0.2), the
/// published figures of Bocquet & Sakov (2013) as DAPPER lists them: lag 1 with B = 0.2 I →
/// 0.46 and lag 4 with B = 0.02 I → 0.37 (the setup's default `covariance = "identity"`, B's
/// shape when those figures were made). 1 000 cycles, seed 0, within 10% (the standard error of
/// a 900-cycle mean is about 0.006; measured 0.448 and 0.376).
#[test]
fn var4d_reproduces_the_published_errors_with_observations_every_fourth_step() {
    let setup = Setup::named("sakov2008-dto4").unwrap();
    let table = [
        ("lag = 1, background = 0.2", 0.46),
        ("lag = 4, background = 0.02", 0.37),
    ];
    let results: Vec<(f64, f64, String)> = table
        .par_iter()
        .map(|&(params, published)| {
            let options = BaselineOptions {
                method: "var4d".into(),
                params: params.into(),
                cycles: 1000,
                seed: 0,
                ..BaselineOptions::default()
            };
            let r = run(&setup, &options, |_| {}).unwrap();
            (r.analysis.rmse, published, r.method)
        })
        .collect();
    for (rmse, published, method) in results {
        eprintln!("{method}: rmse_a {rmse:.4} (published {published})");
        assert!(method.contains("· I"), "{method}");
        assert!(
            (rmse / published - 1.0).abs() <= 0.10,
            "{method}: rmse_a {rmse:.4} is not within 10% of {published}"
        );
    }
}
