//! Helpers shared by the tests that run the `sda` binary.
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
