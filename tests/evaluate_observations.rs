//! `sda evaluate` with any observation that factorises over states: a non-linear plugin written
//! outside the crate (the book's tanh example, compiled here verbatim) and `pick` of two
//! components, on chosen test trajectories; shards of an evaluation merged into the folder of
//! one unsharded run (also without particle filters, with smoothers and kept samples); the
//! samples kept by `--save-samples`; the per-state likelihood that the trait derives from `apply` against
//! `pick`'s own host code.

#[path = "../examples/custom_observation.rs"]
mod custom_observation;
#[path = "../examples/tanh_observation.rs"]
mod tanh_observation;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sda::prelude::*;

fn cli(args: &[&str]) -> sda::Result<()> {
    sda::cli::run(std::iter::once("sda").chain(args.iter().copied()))
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sda-evaluate-obs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A small Lorenz-63 dataset and a briefly trained k = 2 prior, made once for the file.
fn trained() -> &'static (PathBuf, PathBuf) {
    static ONCE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let base = folder("prior");
        let (data, run) = (base.join("data"), base.join("run"));
        cli(&[
            "generate",
            "lorenz63",
            "--trajectories",
            "80",
            "--keep",
            "32",
            "--burn-in",
            "64",
            "--out",
            &s(&data),
        ])
        .unwrap();
        cli(&[
            "train",
            "--data",
            &s(&data),
            "--steps",
            "300",
            "--out",
            &s(&run),
        ])
        .unwrap();
        (data, run)
    })
}

/// `sda evaluate` of the trained prior at toy sizes (L = 17, 8 samples, 8 steps, C = 1,
/// 512 particles) with the extra flags (which replace those toy sizes they name).
fn evaluate(out: &Path, extra: &[&str]) -> sda::Result<()> {
    let (data, run) = trained();
    let mut args = vec![
        "evaluate".to_string(),
        "--run".into(),
        s(run),
        "--data".into(),
        s(data),
        "--out".into(),
        s(out),
    ];
    for (flag, value) in [
        ("--len", "17"),
        ("--samples", "8"),
        ("--steps", "8"),
        ("--corrections", "1"),
        ("--particles", "512"),
    ] {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The rows of an evaluation folder, without the measured seconds.
fn rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("rows.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut row: serde_json::Value = serde_json::from_str(l).unwrap();
            row.as_object_mut().unwrap().remove("seconds");
            row
        })
        .collect()
}

/// A table without its last column (the measured seconds per run).
fn without_seconds(table: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| match l.trim_end().strip_suffix('|') {
            Some(rest) if l.starts_with('|') => rest.rsplit_once('|').unwrap().0.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

#[test]
fn a_registered_nonlinear_observation_is_evaluated_on_chosen_trajectories() {
    let out = folder("tanh");
    evaluate(
        &out,
        &[
            "--observation",
            "tanh",
            "--observation-params",
            "component = 0, every = 8, sigma = 0.1",
            "--indices",
            "3,1",
        ],
    )
    .unwrap();
    let rows = rows(&out);
    let observed: Vec<u64> = rows
        .iter()
        .map(|r| r["observation"].as_u64().unwrap())
        .collect();
    assert_eq!(observed, [3, 3, 1, 1], "{rows:?}");
    for r in &rows {
        for key in ["w1_ratio", "log_likelihood", "log_prior"] {
            assert!(r["stats"][key].as_f64().unwrap().is_finite(), "{r}");
        }
    }
    let settings: serde_json::Value = sda::data::read_json(&out.join("settings.json")).unwrap();
    assert_eq!(
        settings["observation"],
        "tanh(component=0, states=[0, 8, 16], sigma=0.1)"
    );
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("tanh, lorenz63"), "{table}");
    assert!(table.contains("(2 observations, medians)"), "{table}");
    // every SDA row counts its passes: SDA guidance, 8 steps of 1 + C = 2 evaluations, each a
    // forward and a VJP per sample; the filter's none
    for r in &rows {
        let passes = (
            r["passes"][0].as_f64().unwrap(),
            r["passes"][1].as_f64().unwrap(),
        );
        let want = if r["sampler"].is_null() {
            (0.0, 0.0)
        } else {
            (16.0, 16.0)
        };
        assert_eq!(passes, want, "{r}");
    }
    assert!(table.contains("| 16 + 16 |"), "{table}");
    // and the cost figure of the folder draws them
    cli(&["plot", &s(&out), "--out", &s(&out.join("cost.png"))]).unwrap();
    assert!(out.join("cost.png").metadata().unwrap().len() > 1000);
    let err = cli(&["plot", &s(&out), "--vjp-cost", "-1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--vjp-cost"), "{err}");
    // the folder belongs to this prior: a rerun with another network is refused, not mixed in
    let (data, _) = trained();
    let other = folder("other-prior");
    cli(&[
        "train",
        "--data",
        &s(data),
        "--steps",
        "20",
        "--seed",
        "1",
        "--out",
        &s(&other),
    ])
    .unwrap();
    let mut args = vec![
        "evaluate".to_string(),
        "--run".into(),
        s(&other),
        "--data".into(),
        s(data),
    ];
    args.extend(
        [
            "--len",
            "17",
            "--samples",
            "8",
            "--steps",
            "8",
            "--corrections",
            "1",
            "--particles",
            "512",
            "--observation",
            "tanh",
            "--observation-params",
            "component = 0, every = 8, sigma = 0.1",
            "--indices",
            "3,1",
            "--out",
        ]
        .map(String::from),
    );
    args.push(s(&out));
    let err = cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("other settings") && err.contains("prior: "),
        "{err}"
    );
    // a run refused at its first observation leaves no settings that would block the rerun
    let refused = folder("no-samples");
    let err = evaluate(&refused, &["--samples", "0", "--observations", "1"]).unwrap_err();
    assert!(err.to_string().contains("samples"), "{err}");
    assert!(!refused.join("settings.json").exists());
    // an observation that does not say it factorises is refused before anything is written
    let refused = folder("component-sum");
    let err = evaluate(
        &refused,
        &[
            "--observation",
            "component-sum",
            "--observation-params",
            "every = 4, sigma = 0.1",
            "--observations",
            "1",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not factorise over states"), "{err}");
    assert!(!refused.exists());
}

#[test]
fn shards_merge_into_the_unsharded_evaluation() {
    let pick = [
        "--observation",
        "pick",
        "--observation-params",
        "every = 4, components = [0, 2], sigma = 0.2",
        "--first",
        "2",
        "--observations",
        "5",
    ];
    let whole = folder("whole");
    evaluate(&whole, &pick).unwrap();
    let shards: Vec<PathBuf> = (0..4).map(|i| folder(&format!("shard{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let shard = format!("{i}/4");
        evaluate(dir, &[&pick[..], &["--shard", &shard]].concat()).unwrap();
    }
    // shard 1/4 holds the 2nd and 6th… trajectories of 2..7: 3 (and nothing past the fifth)
    let observed: Vec<u64> = rows(&shards[1])
        .iter()
        .map(|r| r["observation"].as_u64().unwrap())
        .collect();
    assert_eq!(observed, [3, 3]);
    let merged = folder("merged");
    let mut args = vec!["merge".to_string(), "--out".into(), s(&merged)];
    args.extend(shards.iter().rev().map(|d| s(d)));
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    assert_eq!(rows(&merged), rows(&whole));
    assert_eq!(rows(&whole).len(), 5 * 2);
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(
        read(&merged, "settings.json"),
        read(&whole, "settings.json")
    );
    assert_eq!(
        without_seconds(&read(&merged, "table.md")),
        without_seconds(&read(&whole, "table.md"))
    );
    // the merged folder is an unsharded evaluation: rerunning it computes nothing new
    evaluate(&merged, &pick).unwrap();
    assert_eq!(rows(&merged), rows(&whole));

    // refusals: a missing shard, a shard twice, shards of different evaluations
    let fails = |dirs: &[&PathBuf], needle: &str| {
        let out = folder("merge-refused");
        let mut args = vec!["merge".to_string(), "--out".into(), s(&out)];
        args.extend(dirs.iter().map(|d| s(d)));
        let err = cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!out.exists());
    };
    fails(
        &[&shards[0], &shards[1], &shards[3]],
        "shard 2/4 is missing",
    );
    fails(
        &[&shards[0], &shards[1], &shards[1], &shards[3]],
        "shard 1/4 is given twice",
    );
    fails(&[&shards[0], &whole], "all must be shares of 4");
    let other = folder("other-shard");
    evaluate(
        &other,
        &[&pick[..], &["--shard", "2/4", "--filter-burn-in", "32"]].concat(),
    )
    .unwrap();
    fails(
        &[&shards[0], &shards[1], &other, &shards[3]],
        "filter_burn_in: 64 → 32",
    );
    // a shard with nothing to compute, and a bad shard, are named
    let err = evaluate(&folder("empty"), &[&pick[..], &["--shard", "5/6"]].concat())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shard 5/6 of 5 observations is empty"),
        "{err}"
    );
    for dir in shards.iter().chain([&whole, &merged, &other]) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `pick` with only its required methods and `state_parts`: the per-state likelihood comes from
/// the trait's default, through `apply` on tensors.
struct ByDefault(Pick);

impl<B: burn::tensor::backend::Backend> ObservationModel<B> for ByDefault {
    fn trajectory_shape(&self) -> TrajectoryShape {
        self.0.shape()
    }
    fn output_dim(&self) -> usize {
        ObservationModel::<B>::output_dim(&self.0)
    }
    fn apply(&self, x: burn::tensor::Tensor<B, 3>) -> burn::tensor::Tensor<B, 2> {
        self.0.apply(x)
    }
    fn noise_std(&self) -> Vec<f64> {
        ObservationModel::<B>::noise_std(&self.0)
    }
    fn describe(&self) -> String {
        "pick by default".into()
    }
    fn state_parts(&self) -> Option<Vec<std::ops::Range<usize>>> {
        ObservationModel::<B>::state_parts(&self.0)
    }
}

#[test]
fn the_default_state_likelihood_matches_picks_host_code() {
    let device = default_device();
    let pick = Pick::new(TrajectoryShape::new(9, 3), vec![0, 4, 8], vec![0, 2], 0.3).unwrap();
    let y: Vec<f64> = (0..6).map(|i| (i as f64 - 2.5) / 2.0).collect();
    let xs: Vec<f64> = (0..5 * 3)
        .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
        .collect();
    let by_default = ByDefault(pick.clone());
    for state in 0..9 {
        let host = ObservationModel::<DefaultBackend>::state_log_likelihood(
            &pick, &y, state, &xs, &device,
        )
        .unwrap();
        let tensors = ObservationModel::<DefaultBackend>::state_log_likelihood(
            &by_default,
            &y,
            state,
            &xs,
            &device,
        )
        .unwrap();
        assert_eq!(host.len(), 5);
        for (a, b) in host.iter().zip(&tensors) {
            // the tensor path computes A(x) in single precision
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                "state {state}: {a} vs {b}"
            );
        }
        assert_eq!(host.iter().all(|v| *v == 0.0), state % 4 != 0);
    }
}

/// Registered classical smoothers are scored beside SDA and the filter, with the same
/// statistics (RMSE, spread and CRPS against the truth on every row); a non-linear
/// observation is refused by name, before anything is written.
#[test]
fn shards_without_particle_filters_merge_with_their_smoothers_and_samples() {
    // rows per observation: no BPF′ row (--particles 0), the sampler's, the two smoothers'
    let flags = [
        "--observation",
        "lo",
        "--observations",
        "3",
        "--particles",
        "0",
        "--smoother",
        "enks",
        "--smoother-params",
        "",
        "--smoother",
        "enks",
        "--smoother-params",
        "analysis = \"etkf\"",
        "--save-samples",
    ];
    let whole = folder("whole-smoother");
    evaluate(&whole, &flags).unwrap();
    let shards: Vec<PathBuf> = (0..2)
        .map(|i| folder(&format!("shard-smoother{i}")))
        .collect();
    for (i, dir) in shards.iter().enumerate() {
        evaluate(dir, &[&flags[..], &["--shard", &format!("{i}/2")]].concat()).unwrap();
    }
    let merged = folder("merged-smoother");
    let mut args = vec!["merge".to_string(), "--out".into(), s(&merged)];
    args.extend(shards.iter().map(|d| s(d)));
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    assert_eq!(rows(&whole).len(), 3 * 3);
    assert_eq!(rows(&merged), rows(&whole));
    for j in 0..3 {
        let part = format!("samples/observation-{j:04}/1-enks-enkf-perturbed-obs.npy");
        let a = std::fs::read(merged.join(&part)).unwrap();
        assert_eq!(a, std::fs::read(whole.join(&part)).unwrap(), "{part}");
    }
}

#[test]
fn classical_smoothers_are_scored_beside_sda() {
    let out = folder("smoothers");
    evaluate(
        &out,
        &[
            "--observation",
            "lo",
            "--indices",
            "2",
            "--smoother",
            "enks",
            "--smoother",
            "var4d-weak",
            "--smoother-params",
            "analysis = \"etkf\"",
            "--smoother-params",
            "iterations = 200",
            "--save-samples",
        ],
    )
    .unwrap();
    let rows = rows(&out);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            r["smoother"]
                .as_str()
                .or(r["sampler"].as_str())
                .unwrap_or("BPF′")
                .to_string()
        })
        .collect();
    assert_eq!(labels.len(), 4, "{labels:?}");
    assert_eq!(labels[2], "EnKS, ETKF");
    assert!(
        labels[3].starts_with("weak-constraint 4D-Var"),
        "{labels:?}"
    );
    for r in &rows {
        for key in [
            "w1_ratio",
            "log_likelihood",
            "log_prior",
            "rmse",
            "spread",
            "crps",
        ] {
            assert!(r["stats"][key].as_f64().unwrap().is_finite(), "{key}: {r}");
        }
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("| EnKS, ETKF |") && table.contains("CRPS"),
        "{table}"
    );
    let settings: serde_json::Value = sda::data::read_json(&out.join("settings.json")).unwrap();
    assert_eq!(settings["smoothers"][0], "EnKS, ETKF");

    // --save-samples keeps the arrays behind the rows: each method's file scores its row's RMSE
    let kept = out.join("samples").join("observation-0002");
    let load = |name: &str| sda::data::read_npy(&kept.join(name)).unwrap();
    let truth = load("truth.npy");
    assert_eq!(truth.shape, [17, 3]);
    assert_eq!(load("reference.npy").shape, [8, 17, 3]);
    assert_eq!(load("y.npy").shape.len(), 1);
    let wide = |a: &sda::data::Array| a.data.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let mut files: Vec<String> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(files[1], "1-enks-etkf.npy");
    for (file, row) in files.iter().zip(&rows[1..]) {
        let x = load(file);
        assert_eq!(x.shape, [8, 17, 3], "{file}");
        let rmse = sda::experiments::evaluate::ensemble_scores(&wide(&x), &wide(&truth)).rmse;
        let want = row["stats"]["rmse"].as_f64().unwrap();
        assert!(
            (rmse - want).abs() <= 1e-4 * want.max(1.0),
            "{file}: {rmse} against {want}"
        );
    }

    let refused = folder("smoothers-tanh");
    let err = evaluate(
        &refused,
        &[
            "--observation",
            "tanh",
            "--observation-params",
            "component = 0, every = 8, sigma = 0.1",
            "--indices",
            "2",
            "--corrections",
            "0",
            "--smoother",
            "enks",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("linear observation") && err.contains("tanh"),
        "{err}"
    );
    assert!(!refused.join("rows.jsonl").exists());
}
