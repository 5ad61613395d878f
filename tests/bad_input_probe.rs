//! The probe of bad input across every subcommand (issue: hardening): each case must end with
//! exit status 1 and an error naming the offending flag, key, file or value — never a panic,
//! never an accepted run. Only fast cases: each is refused before any real work starts.

use std::path::Path;
use std::process::Command;

const MAX: &str = "18446744073709551615";

/// A `.npy` file as NumPy writes it (format 1.0, header padded to 64 bytes).
fn npy(path: &Path, descr: &str, shape: &str, body: &[u8]) {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    h.push_str(&" ".repeat(63 - (10 + h.len()) % 64));
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(body);
    std::fs::write(path, bytes).unwrap();
}

/// The fixtures: a small Lorenz-63 dataset and a 20-step training run of it, a folder without a
/// manifest, corrupt and held folders, bad `.npy` files and configuration files.
fn fixtures(dir: &Path) {
    let run = |args: &[&str]| {
        let out = sda(dir, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "generate",
        "lorenz63",
        "--trajectories",
        "20",
        "--keep",
        "65",
        "--burn-in",
        "64",
        "--out",
        "data",
    ]);
    std::fs::write(
        dir.join("tiny.toml"),
        "system = \"lorenz63\"\ndata = \"data\"\nsteps = 20\nbatch = 16\n[network]\nk = 2\n\
         state_dim = 3\nwidth = 8\nblocks = 1\nembedding = 8\n",
    )
    .unwrap();
    run(&["train", "--config", "tiny.toml", "--out", "run"]);
    let mk = |d: &str| std::fs::create_dir_all(dir.join(d)).unwrap();
    mk("nomanifest");
    std::fs::copy(dir.join("data/train.npy"), dir.join("nomanifest/train.npy")).unwrap();
    mk("emptyrun");
    mk("corruptstate");
    std::fs::write(dir.join("corruptstate/state.json"), "{\"config\": ").unwrap();
    mk("locked");
    // held by this (living) test process
    std::fs::write(dir.join("locked/.lock"), std::process::id().to_string()).unwrap();
    let field = 2 * 2 * 64 * 64;
    let mut nan = f32::NAN.to_le_bytes().to_vec();
    nan.resize(4 * field, 0);
    npy(&dir.join("nan.npy"), "<f4", "(1, 2, 2, 64, 64)", &nan);
    npy(&dir.join("ints.npy"), "<i4", "(1, 2, 2, 4, 4)", &[0; 256]);
    npy(
        &dir.join("short.npy"),
        "<f4",
        "(1, 2, 2, 64, 64)",
        &[0; 100],
    );
    npy(&dir.join("wrongshape.npy"), "<f4", "(3, 4)", &[0; 48]);
    std::fs::write(dir.join("garbage.npy"), "hello world").unwrap();
    mk("resim");
    npy(
        &dir.join("resim/samples.npy"),
        "<f4",
        "(1, 2, 2, 64, 64)",
        &vec![0; 4 * field],
    );
    std::fs::write(dir.join("resim/resimulate.json"), "{}").unwrap();
    std::fs::write(dir.join("bad.toml"), "steps = 10\nbogus = 1\n").unwrap();
    std::fs::write(
        dir.join("badnet.toml"),
        "system = \"lorenz63\"\ndata = \"data\"\n[network]\nk = 2\nwidth = 8\ncolour = 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hugebatch.toml"),
        "system = \"lorenz63\"\ndata = \"data\"\nbatch = 100000000000000\n[network]\nk = 2\n\
         state_dim = 3\nwidth = 8\nblocks = 1\nembedding = 8\n",
    )
    .unwrap();
}

fn sda(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the sda binary runs")
}

/// `(arguments, what the error must name)`, by the kind of failure they probe.
fn cases() -> Vec<(Vec<&'static str>, &'static str)> {
    let c = |args: &[&'static str], needle: &'static str| (args.to_vec(), needle);
    let run = ["--run", "run", "--data", "data"];
    let with_run = |cmd: &'static str, extra: &[&'static str], needle: &'static str| {
        let mut args = vec![cmd];
        args.extend(run);
        args.extend(extra);
        (args, needle)
    };
    vec![
        // sizes that overflow or exceed the machine
        c(&["oracle", "--samples", MAX], "--samples"),
        c(&["oracle", "--steps", MAX], "steps"),
        c(&["oracle", "--samples", "100000000000"], "--samples"),
        c(&["oracle", "--len", MAX], MAX),
        with_run("assimilate", &["--samples", MAX], "samples"),
        with_run("assimilate", &["--steps", MAX], "steps"),
        c(
            &["generate", "lorenz63", "--keep", MAX, "--out", "g1"],
            "keep",
        ),
        c(
            &["generate", "lorenz63", "--trajectories", MAX, "--out", "g2"],
            "trajectories",
        ),
        c(
            &["train", "--data", "data", "--steps", MAX, "--out", "t1"],
            "steps",
        ),
        c(
            &["train", "--config", "hugebatch.toml", "--out", "t2"],
            "batch",
        ),
        c(
            &["oracle", "--sampler-params", "corrections = 1000000000000"],
            "evaluations",
        ),
        // values out of range, NaN and Inf
        c(&["oracle", "--gamma", "nan"], "--gamma"),
        c(&["oracle", "--tau", "-1"], "--tau"),
        c(&["oracle", "--samples", "0"], "samples"),
        c(&["oracle", "--observation-params", "sigma = -1"], "sigma"),
        c(&["oracle", "--blanket-params", "k = 0"], "k"),
        c(&["oracle", "--seed", "-1"], "-1"),
        with_run("assimilate", &["--samples", "0"], "samples"),
        with_run("assimilate", &["--index", "99"], "99"),
        with_run("assimilate", &["--len", "9999"], "9999"),
        with_run(
            "assimilate",
            &["--observation-params", "sigma = inf"],
            "sigma",
        ),
        with_run("evaluate", &["--gamma", "0"], "--gamma"),
        with_run("evaluate", &["--indices", "999"], "999"),
        with_run("evaluate", &["--shard", "4/4"], "4/4"),
        with_run(
            "evaluate",
            // 0 runs no particle filter (scores against the truth only); 1 is no filter
            &["--indices", "0", "--particles", "1", "--out", "e1"],
            "particles",
        ),
        c(
            &["generate", "lorenz63", "--trajectories", "2", "--out", "g3"],
            "3 trajectories",
        ),
        c(
            &["generate", "lorenz63", "--keep", "0", "--out", "g4"],
            "keep",
        ),
        c(
            &[
                "generate",
                "lorenz63",
                "--system-params",
                "dt = nan",
                "--out",
                "g5",
            ],
            "dt",
        ),
        c(
            &["generate", "kolmogorov", "--grid", "63", "--out", "g6"],
            "63",
        ),
        c(
            &["train", "--data", "data", "--lr", "-1", "--out", "t3"],
            "lr",
        ),
        c(
            &["train", "--data", "data", "--max-steps", "0", "--out", "t4"],
            "--max-steps",
        ),
        c(&["train", "--data", "data", "--k", "0", "--out", "t5"], "k"),
        c(&["plot", "nan.npy"], "nan.npy"),
        c(
            &["resimulate", "--count", "0", "--force", "resim/samples.npy"],
            "--count",
        ),
        // unknown names, misspelt keys, malformed values
        c(&["oracle", "--observation", "nope"], "nope"),
        c(&["oracle", "--schedule", "linear-ish"], "linear-ish"),
        c(&["oracle", "--sampler-params", "tua = 0.5"], "tua"),
        c(
            &["oracle", "--guidance-params", "gamma = "],
            "--guidance-params",
        ),
        c(&["oracle", "--corrections", "1,x"], "--corrections"),
        with_run("assimilate", &["--split", "dev"], "dev"),
        with_run("assimilate", &["--corrections", "1,2"], "--corrections"),
        with_run("evaluate", &["--shard", "a/b"], "a/b"),
        with_run("evaluate", &["--observation", "tanh"], "tanh"),
        c(&["train", "--config", "bad.toml", "--out", "t6"], "bogus"),
        c(
            &["train", "--config", "badnet.toml", "--out", "t7"],
            "colour",
        ),
        c(
            &[
                "generate",
                "lorenz63",
                "--config",
                "missing.toml",
                "--out",
                "g7",
            ],
            "missing.toml",
        ),
        c(&["quickstart", "--part", "neither"], "neither"),
        c(&["list", "--bogus"], "--bogus"),
        c(&["nosuchcommand"], "nosuchcommand"),
        // missing, truncated, corrupt and wrongly typed or shaped files
        c(&["assimilate", "--run", "nowhere"], "nowhere"),
        c(&["assimilate", "--run", "emptyrun"], "emptyrun"),
        c(&["assimilate", "--run", "corruptstate"], "corruptstate"),
        c(
            &["evaluate", "--run", "run", "--data", "nomanifest"],
            "manifest",
        ),
        c(&["train", "--data", "nowhere"], "nowhere"),
        c(
            &["train", "--data", "nomanifest", "--out", "t8"],
            "manifest",
        ),
        c(&["plot", "ints.npy"], "<i4"),
        c(&["plot", "short.npy"], "short.npy"),
        c(&["plot", "garbage.npy"], "garbage.npy"),
        c(&["plot", "wrongshape.npy"], "wrongshape.npy"),
        c(&["plot", "missing.npy"], "missing.npy"),
        c(&["plot", "emptyrun"], "emptyrun"),
        c(&["merge", "nowhere", "--out", "m"], "nowhere"),
        c(&["compare", "nowhere"], "nowhere"),
        c(
            &["compare", "emptyrun"],
            "not an `sda assimilate` output folder",
        ),
        // reruns and concurrent runs that would lose or mix files
        c(
            &["generate", "lorenz63", "--seed", "5", "--out", "data"],
            "--force",
        ),
        c(
            &["generate", "lorenz63", "--out", "nomanifest"],
            "manifest.json",
        ),
        c(&["resimulate", "resim/samples.npy"], "--force"),
        c(&["train", "--data", "data", "--out", "run"], "--resume"),
        c(
            &["train", "--data", "data", "--resume", "--out", "emptyrun"],
            "--resume",
        ),
        c(&["train", "--data", "data", "--out", "locked"], "process"),
        c(&["generate", "lorenz63", "--out", "locked"], "process"),
        with_run(
            "evaluate",
            &["--indices", "0", "--out", "locked"],
            "process",
        ),
    ]
}

#[test]
fn every_probed_bad_input_gets_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("sda-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    fixtures(&dir);
    let data_before = std::fs::read(dir.join("data/train.npy")).unwrap();
    let cases = cases();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for (args, needle) in &cases {
        let out = sda(&dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        let verdict = match out.status.code() {
            _ if err.contains("panicked") => "panicked",
            Some(0) => "was accepted",
            Some(1) | Some(2) if err.to_lowercase().contains(&needle.to_lowercase()) => continue,
            Some(1) | Some(2) => "gave an error that does not name it",
            _ => "ended abnormally",
        };
        failures.push(format!(
            "sda {} {verdict} ('{needle}'): {err}",
            args.join(" ")
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // nothing existing was lost or changed
    assert_eq!(
        std::fs::read(dir.join("data/train.npy")).unwrap(),
        data_before
    );
    assert!(dir.join("resim/resimulate.json").exists() && dir.join("run/state.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
