//! The `sda` binary end to end.

mod common;
use common::{fails_with, ok, sda};

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
fn out_of_range_values_are_clean_errors() {
    // an oracle too large for its dense exact posterior: refused before allocating, naming
    // the limit (this aborted on a 320 GB allocation before)
    let out = sda(&[
        "oracle",
        "--len",
        "100000",
        "--samples",
        "4",
        "--steps",
        "4",
    ]);
    fails_with(&out, "L ≤ 2048");
    // a split that no dataset has: refused by the argument parser, listing the three
    let out = sda(&["assimilate", "--run", "r", "--split", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("possible values: train, valid, test"), "{err}");
    // plot and resimulate on a small [1, 3, 2, 8, 8] velocity file: each bad count is named
    let dir = std::env::temp_dir().join(format!("sda-cli-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fields.npy");
    let fields = sda::data::Array::new(vec![1, 3, 2, 8, 8], vec![0.0; 384]).unwrap();
    sda::data::write_npy(&file, &fields).unwrap();
    let file = file.to_str().unwrap();
    let png = dir.join("p.png");
    let png = png.to_str().unwrap();
    let plot = |extra: &[&str]| sda(&[&["plot", file, "--out", png], extra].concat());
    fails_with(
        &plot(&["--trajectory", "1"]),
        "holds 1 trajectories; --trajectory 1 is out of range",
    );
    fails_with(&plot(&["--count", "0"]), "--count and --every must be ≥ 1");
    fails_with(&plot(&["--every", "0"]), "--count and --every must be ≥ 1");
    let out = sda(&[
        "resimulate",
        file,
        "--count",
        "0",
        "--grid",
        "16",
        "--coarsen",
        "2",
    ]);
    fails_with(&out, "--count must be ≥ 1");
    assert!(!dir.join("resimulate.json").exists());
    // quickstart checks every count before either part runs: nothing is written
    let qs = dir.join("quickstart");
    let out = sda(&[
        "quickstart",
        "--particles",
        "1",
        "--out",
        qs.to_str().unwrap(),
    ]);
    fails_with(&out, "--particles must be ≥ 2, got 1");
    assert!(!qs.exists());
    let _ = std::fs::remove_dir_all(&dir);
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
    // another observation gets its own parameters, not pick's default ones
    let out = sda(&[
        "oracle",
        "--observation",
        "lo",
        "--guidance",
        "exact",
        "--samples",
        "16",
        "--steps",
        "8",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_command_keeps_its_own_defaults_in_the_shared_groups() {
    // the sampling group is one generic type; each command's instance has its own defaults
    let help = |command: &str| ok(&sda(&[command, "--help"]));
    let samples = |text: &str| {
        // the option's help, up to the next option
        text.lines()
            .skip_while(|l| !l.trim_start().starts_with("--samples"))
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with('-'))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(samples(&help("oracle")).contains("[default: 1024]"));
    assert!(samples(&help("assimilate")).contains("[default: 128]"));
    assert!(help("oracle").contains(
        "[default for `pc`: \"corrections = 1\"; any other sampler gets only its own defaults]"
    ));
    assert!(help("assimilate").contains("[default for `pc`: \"corrections = 2\""));
}

#[test]
fn generate_runs_any_registered_system() {
    let base = std::env::temp_dir().join(format!("sda-cli-gen-{}", std::process::id()));
    let gen = |out: &std::path::Path, params: &str| {
        sda(&[
            "generate",
            "linear-gaussian",
            "--trajectories",
            "10",
            "--keep",
            "16",
            "--burn-in",
            "4",
            "--system-params",
            params,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (a, b) = (base.join("a"), base.join("b"));
    for dir in [&a, &b] {
        let out = gen(dir, "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for split in ["train", "valid", "test"] {
        let file = format!("{split}.npy");
        let x = sda::data::read_npy(&a.join(&file)).unwrap();
        assert_eq!(&x.shape[1..], &[16, 2], "{split}");
        assert!(x.data.iter().all(|v| v.is_finite()));
        // seeded: the same command writes the same bytes
        assert_eq!(
            std::fs::read(a.join(&file)).unwrap(),
            std::fs::read(b.join(&file)).unwrap()
        );
    }
    let manifest = std::fs::read_to_string(a.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"linear-gaussian\""), "{manifest}");

    let out = gen(&base.join("c"), "x = 1");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown field `x`"), "{err}");
    let out = sda(&[
        "generate",
        "nope",
        "--out",
        base.join("d").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown system 'nope'") && err.contains("kolmogorov"),
        "{err}"
    );
    assert!(!base.join("c").join("train.npy").exists() && !base.join("d").exists());
    std::fs::remove_dir_all(&base).unwrap();
}
