//! The Lorenz-63 commands end to end at toy sizes: `quickstart --part lorenz` (data, training,
//! SDA vs particle filters, figure), `assimilate` on its checkpoint, `evaluate` with resume,
//! and their errors on bad input.

mod common;
use common::{fails_with, is_png, ok, sda};

#[test]
fn lorenz_commands_end_to_end() {
    let base = std::env::temp_dir().join(format!("sda-lorenz-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let q = base.join("q");
    let q_s = q.to_str().unwrap();
    let text = ok(&sda(&[
        "quickstart",
        "--part",
        "lorenz",
        "--train-steps",
        "120",
        "--lorenz-samples",
        "16",
        "--lorenz-steps",
        "16",
        "--particles",
        "2048",
        "--preset-observations",
        "1",
        "--preset-samples",
        "16",
        "--out",
        q_s,
    ]));
    assert!(text.contains("| SDA, PC (C=1, tau=0.25) |"), "{text}");
    // the shipped k = 3 preset with its calibrated sampler over strided windows: one
    // observation, 4·256 + 256 ε evaluations, each a forward and a VJP
    assert!(
        text.contains("| SDA, PC (C=4, diagonal, tau=1) |")
            && text.contains("| 1280 | 1280 + 1280 |")
            && text.contains("windows of 7 states every 4"),
        "{text}"
    );
    // each observation's ratio is printed beside the median
    assert!(
        text.contains("SDA's W1 ratio per test observation: 0: "),
        "{text}"
    );
    assert!(q
        .join("lorenz/preset-k3/model-00060000.safetensors")
        .is_file());
    assert!(text.contains("| BPF′ (second filter) | 1.00 |"), "{text}");
    assert!(is_png(&q.join("lorenz/lorenz.png")));
    // a rerun reuses data and checkpoint (training is not repeated)
    let again = ok(&sda(&[
        "quickstart",
        "--part",
        "lorenz",
        "--train-steps",
        "120",
        "--lorenz-samples",
        "16",
        "--lorenz-steps",
        "16",
        "--particles",
        "2048",
        "--preset-observations",
        "1",
        "--preset-samples",
        "16",
        "--out",
        q_s,
    ]));
    let rows = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("| SDA") || l.starts_with("| BPF"))
            .map(|l| {
                l.rsplit_once('|')
                    .unwrap()
                    .0
                    .rsplit_once('|')
                    .unwrap()
                    .0
                    .to_string()
            })
            .collect()
    };
    assert_eq!(rows(&text), rows(&again), "same seeds, same statistics");

    let run = q.join("lorenz/train-k2");
    let data = q.join("lorenz/data");
    let (run_s, data_s) = (run.to_str().unwrap(), data.to_str().unwrap());
    let a = base.join("a");
    let assimilated = sda(&[
        "assimilate",
        "--run",
        run_s,
        "--data",
        data_s,
        "--observation",
        "hi",
        "--samples",
        "8",
        "--steps",
        "8",
        "--sampler-params",
        "corrections = 1",
        "--out",
        a.to_str().unwrap(),
    ]);
    // a diverged assimilation exits with an error naming it, and keeps its outputs
    let exited_diverged = !assimilated.status.success();
    if exited_diverged {
        fails_with(&assimilated, "the samples diverged");
    }
    let samples = sda::data::read_npy(&a.join("samples.npy")).unwrap();
    assert_eq!(samples.shape, vec![8, 65, 3]);
    assert!(samples.data.iter().all(|v| v.is_finite()));
    assert_eq!(
        sda::data::read_npy(&a.join("y.npy")).unwrap().shape,
        vec![65]
    );
    assert!(is_png(&a.join("trajectories.png")));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("assimilate.json")).unwrap()).unwrap();
    assert_eq!(summary["evaluations"], 16);
    // y.npy's values come with σ_y and the state each observes (`hi`: every state)
    let states: Vec<u64> = (0..65).collect();
    assert_eq!(
        summary["y"]["state_of_each_value"],
        serde_json::json!(states)
    );
    assert_eq!(summary["y"]["sigma_y"].as_array().unwrap().len(), 65);
    // the divergence diagnostic: largest |sample| over largest |truth|, flagged beyond 100×
    let largest = |f: &str| {
        sda::data::read_npy(&a.join(f))
            .unwrap()
            .data
            .iter()
            .fold(0.0f64, |m, v| m.max((*v as f64).abs()))
    };
    let ratio = summary["magnitude_ratio"]
        .as_f64()
        .expect("a magnitude ratio");
    let expected = largest("samples.npy") / largest("truth.npy");
    assert!(
        (ratio - expected).abs() <= 1e-5 * expected,
        "{ratio} vs {expected}"
    );
    assert_eq!(summary["diverged"], ratio > 100.0);
    assert_eq!(exited_diverged, ratio > 100.0);

    // bad input
    fails_with(
        &sda(&[
            "assimilate",
            "--run",
            run_s,
            "--data",
            data_s,
            "--observation",
            "pick",
            "--observation-params",
            "states = [70], components = [0], sigma = 0.1",
            "--out",
            a.to_str().unwrap(),
        ]),
        "outside the trajectory",
    );
    fails_with(
        &sda(&[
            "assimilate",
            "--run",
            run_s,
            "--data",
            data_s,
            "--len",
            "300",
            "--out",
            a.to_str().unwrap(),
        ]),
        "asked for 300 states",
    );
    fails_with(
        &sda(&[
            "assimilate",
            "--run",
            data_s,
            "--data",
            data_s,
            "--out",
            a.to_str().unwrap(),
        ]),
        "state.json",
    );
    fails_with(
        &sda(&["evaluate", "--run", run_s, "--observation", "nope"]),
        "unknown observation 'nope'",
    );
    // bad evaluation settings are named before anything is written to --out
    let bad = base.join("bad-evaluate");
    for (observations, len, needle) in [
        ("0", "65", "no test observation to evaluate"),
        ("99", "65", "test trajectory"),
        ("1", "3", "L = 3 is shorter than the window 2k+1 = 5"),
        ("1", "300", "L = 300 is longer than the test trajectories"),
    ] {
        let mut args = vec!["evaluate", "--run", run_s, "--data", data_s];
        args.extend(["--observations", observations, "--len", len]);
        args.extend(["--out", bad.to_str().unwrap()]);
        fails_with(&sda(&args), needle);
        assert!(!bad.exists(), "{args:?} wrote {}", bad.display());
    }

    // evaluate, then resume from the saved rows
    let e = base.join("e");
    let args = [
        "evaluate",
        "--run",
        run_s,
        "--data",
        data_s,
        "--observations",
        "2",
        "--samples",
        "8",
        "--steps",
        "8",
        "--corrections",
        "0,1",
        "--particles",
        "1024",
        "--out",
        e.to_str().unwrap(),
    ];
    let first = ok(&sda(&args));
    assert!(first.contains("(2 observations, medians)"), "{first}");
    let lines = std::fs::read_to_string(e.join("rows.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2 * 3);
    // every run whose W1 is orders of magnitude off is flagged, and the table says so
    let mut flagged = 0;
    for line in lines.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let diverged = row["diverged"].as_bool().expect("a diverged flag");
        let ratio = row["stats"]["w1_ratio"].as_f64().unwrap_or(f64::INFINITY);
        if ratio > 1e4 {
            assert!(diverged, "{line}");
        }
        flagged += diverged as usize;
    }
    assert_eq!(first.contains("**Diverged**"), flagged > 0, "{first}");
    let second = ok(&sda(&args));
    assert_eq!(rows(&first), rows(&second));
    let mut other = args.to_vec();
    other[10] = "16";
    fails_with(&sda(&other), "other settings");
    let _ = std::fs::remove_dir_all(&base);
}
