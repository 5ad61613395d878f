//! The `sda` binary end to end.

use std::process::Command;

fn sda(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .output()
        .expect("the sda binary runs")
}

#[test]
fn list_prints_every_registry() {
    let out = sda(&["list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "linear-gaussian",
        "lorenz63",
        "pick",
        "lo",
        "hi",
        "temporal-window",
        "sda",
        "dps",
        "pc",
        "ddim",
        "vp-cosine",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[test]
fn quickstart_prints_the_table() {
    let out = sda(&[
        "quickstart",
        "--part",
        "oracle",
        "--samples",
        "256",
        "--steps",
        "64",
        "--corrections",
        "0,1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("exact posterior ε")
            && text.contains("SDA(gamma=0.01)")
            && text.contains("DPS")
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("| ")).count(),
        1 + 6,
        "{text}"
    );
}

#[test]
fn unknown_name_is_a_clean_error() {
    let out = sda(&[
        "oracle",
        "--observation",
        "nope",
        "--samples",
        "16",
        "--steps",
        "4",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown observation 'nope'") && err.contains("pick"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn oracle_by_name_runs() {
    let out = sda(&[
        "oracle",
        "--guidance",
        "exact",
        "--sampler",
        "ddim",
        "--schedule",
        "vp-exp",
        "--samples",
        "64",
        "--steps",
        "32",
    ]);
    // ddim gets its own (empty) parameters, not pc's default ones
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout).unwrap().contains("DDIM"));
}

#[test]
fn generate_says_which_systems_have_a_generator() {
    let dir = std::env::temp_dir().join(format!("sda-cli-gen-{}", std::process::id()));
    let out_dir = dir.to_str().unwrap();
    let out = sda(&["generate", "linear-gaussian", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("registered system") && err.contains("lorenz63"),
        "{err}"
    );
    let out = sda(&["generate", "nope", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown dataset system 'nope'"), "{err}");
    assert!(!dir.exists());
}
