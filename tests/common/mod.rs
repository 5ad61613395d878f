//! Helpers shared by the tests: running the `sda` binary, and comparing an exact sampler law
//! with the oracle's posterior.
// Each test crate compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `sda` binary built for these tests with `args`.
pub fn sda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .output()
        .expect("the sda binary runs")
}

/// The standard output of a run that must succeed (its standard error otherwise).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A run that must fail cleanly: exit status 1, `needle` in the error, no panic.
pub fn fails_with(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "expected a clean failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "'{needle}' not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Whether `path` is a PNG file.
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG"))
}

/// `max_j |law var_j / posterior var_j − 1|` of a sampler's exact law on the oracle, after
/// checking the law's mean is the posterior's (the exact ε leaves the mean exact; 0.003 is
/// measured, the float floor of the reference).
pub fn variance_error<O>(
    p: &sda::experiments::oracle::OracleProblem<O>,
    law: &(nalgebra::DVector<f64>, nalgebra::DMatrix<f64>),
) -> f64 {
    let var: Vec<f64> = law.1.diagonal().iter().copied().collect();
    let cmp = sda::metrics::MomentComparison::of_moments(
        law.0.as_slice(),
        &var,
        &p.posterior_mean,
        &p.posterior_var,
    )
    .unwrap();
    assert!(cmp.max_mean_error() < 0.01, "{cmp:?}");
    let (lo, hi) = cmp.variance_ratio_range(None);
    (1.0 - lo).max(hi - 1.0)
}
