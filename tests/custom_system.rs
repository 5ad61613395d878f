//! A dynamical system written outside the crate (the book's example, compiled here verbatim) is
//! registered with `inventory` and run by name through every command: generated, trained with
//! the units of its data, assimilated (posterior against the exact Kalman posterior) and
//! evaluated against particle filters of the same system, with samplers and blankets written
//! outside the crate too.

#[path = "../examples/custom_blanket.rs"]
mod custom_blanket;
#[path = "../examples/custom_sampler.rs"]
mod custom_sampler;
#[path = "../examples/custom_system.rs"]
mod custom_system;

use std::path::{Path, PathBuf};

use custom_system::{ShiftedOracle, ShiftedOracleConfig};
use nalgebra::DMatrix;
use sda::data::{load_states, read_npy, Standardisation};
use sda::metrics::MomentComparison;

fn cli(args: &[&str]) -> sda::Result<()> {
    sda::cli::run(std::iter::once("sda").chain(args.iter().copied()))
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sda-custom-system-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn f64s(path: &Path) -> Vec<f64> {
    read_npy(path)
        .unwrap()
        .data
        .iter()
        .map(|&v| v as f64)
        .collect()
}

const OBSERVED: [usize; 4] = [0, 5, 10, 15];
const SIGMA: f64 = 0.1;

#[test]
fn a_registered_system_is_generated_trained_assimilated_and_evaluated_by_name() {
    let base = folder("pipeline");
    let (data, run, post, eval) = (
        base.join("data"),
        base.join("run"),
        base.join("assimilate"),
        base.join("evaluate"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_string();
    cli(&[
        "generate",
        "shifted-oracle",
        "--trajectories",
        "64",
        "--keep",
        "64",
        "--burn-in",
        "16",
        "--out",
        &s(&data),
    ])
    .unwrap();
    // no config: the dataset's manifest names the system and its state dimension
    cli(&[
        "train",
        "--data",
        &s(&data),
        "--steps",
        "1500",
        "--out",
        &s(&run),
    ])
    .unwrap();
    let state: serde_json::Value = sda::data::read_json(&run.join("state.json")).unwrap();
    assert_eq!(state["config"]["system"], "shifted-oracle");
    assert_eq!(state["config"]["network"]["state_dim"], 2);
    // the stored units are the training split's mean and standard deviation
    let units: Standardisation = serde_json::from_value(state["units"].clone()).unwrap();
    let expected = Standardisation::of_split(&load_states(&data, "train", 2).unwrap()).unwrap();
    assert_eq!(units, expected);
    // … which for this system are near c = (50, −20) and s·√(stationary variance) ≈ 10
    assert!((units.mean[0] - 50.0).abs() < 3.0 && (units.mean[1] + 20.0).abs() < 3.0);
    assert!(
        units.scale.iter().all(|s| (7.0..14.0).contains(s)),
        "{units:?}"
    );

    let params = format!("states = {OBSERVED:?}, components = [0], sigma = {SIGMA}");
    // `sda COMMAND` on the trained run and test trajectory 0 of the data, observed by `pick`
    let on_run = |command: &str, out: &Path, more: &[&str]| {
        let (run, data, out) = (s(&run), s(&data), s(out));
        let mut args = vec![
            command,
            "--run",
            &run,
            "--data",
            &data,
            "--len",
            "16",
            "--observation",
            "pick",
            "--observation-params",
            &params,
            "--out",
            &out,
        ];
        args.extend_from_slice(more);
        cli(&args)
    };
    let assimilate = |out: &Path, samples: &str, steps: &str, extra: &[&str]| {
        let args = [&["--samples", samples, "--steps", steps][..], extra].concat();
        on_run("assimilate", out, &args)
    };
    assimilate(
        &post,
        "512",
        "64",
        &["--sampler-params", "corrections = 1, tau = 0.25"],
    )
    .unwrap();
    let summary: serde_json::Value = sda::data::read_json(&post.join("assimilate.json")).unwrap();
    // the system was rebuilt from the manifest by its registered name for the log-prior
    assert!(summary["expected_log_prior"].is_f64(), "{summary}");
    assert!(post.join("trajectories.png").exists());

    // the exact posterior of the physical trajectory: y (standardised units) back in physical
    // units, then dense Gaussian conditioning of the fluctuation x − c
    let system =
        ShiftedOracle::new(&serde_json::from_str::<ShiftedOracleConfig>("{}").unwrap()).unwrap();
    let (len, d) = (16, 2);
    let y = f64s(&post.join("y.npy"));
    let mut h = DMatrix::zeros(OBSERVED.len(), len * d);
    let (mut y_z, mut std) = (Vec::new(), Vec::new());
    for (r, &i) in OBSERVED.iter().enumerate() {
        h[(r, i * d)] = 1.0;
        y_z.push(units.mean[0] + units.scale[0] * y[r] - system.centre()[0]);
        std.push(units.scale[0] * SIGMA);
    }
    let (mean, cov) = system.fluctuation.posterior(len, &h, &std, &y_z).unwrap();
    let mean: Vec<f64> = (0..len * d)
        .map(|j| mean[j] + system.centre()[j % d])
        .collect();
    let var: Vec<f64> = (0..len * d).map(|j| cov[(j, j)]).collect();
    let samples = f64s(&post.join("samples.npy"));
    let cmp = MomentComparison::new(&samples, &mean, &var).unwrap();
    let observed: Vec<usize> = OBSERVED.iter().map(|i| i * d).collect();
    let (lo, hi) = cmp.variance_ratio_range(None);
    let (lo_obs, hi_obs) = cmp.variance_ratio_range(Some(&observed));
    eprintln!(
        "learned prior (1500 steps) vs exact posterior: max |Δmean|/std {:.3}, variance ratios \
         {lo:.3}–{hi:.3}, at the observed coordinates {lo_obs:.3}–{hi_obs:.3}",
        cmp.max_mean_error()
    );
    // A units check, not an accuracy claim for a briefly trained network: a slip in the units
    // (samples left standardised, or shifted or scaled by the wrong amounts) moves the samples
    // by tens of posterior standard deviations (c = 50 and −20 against posterior stds of
    // 1–10), and scales their spread by s ≈ 10 (variance by 100).
    assert!(cmp.max_mean_error() < 1.5, "{cmp:?}");
    assert!(lo > 0.2 && hi < 5.0, "{cmp:?}");

    // the trained network composed by a blanket registered outside the crate, by name; a
    // blanket whose windows are not the network's is refused
    let assimilate_with = |blanket: &str, out: &str| {
        let extra = ["--blanket", "window-average", "--blanket-params", blanket];
        assimilate(&base.join(out), "8", "8", &extra)
    };
    assimilate_with("k = 2", "average").unwrap();
    let summary: serde_json::Value =
        sda::data::read_json(&base.join("average").join("assimilate.json")).unwrap();
    assert_eq!(summary["blanket"], "window average k=2", "{summary}");
    let err = assimilate_with("k = 3", "mismatch")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("windows of 5") && err.contains("windows of 7"),
        "{err}"
    );

    // Figure-2 evaluation: particle filters of the manifest's system, rebuilt by name; the
    // paper's sampler with C = 1 and, by name, a sampler registered outside the crate
    let evaluate = |out: &Path, samples: &str, particles: &str, extra: &[&str]| {
        let fixed = [
            "--observations",
            "1",
            "--samples",
            samples,
            "--steps",
            "32",
            "--corrections",
            "1",
            "--particles",
            particles,
        ];
        on_run("evaluate", out, &[&fixed[..], extra].concat())
    };
    evaluate(&eval, "128", "4096", &["--sampler", "dpm-solver-2"]).unwrap();
    let rows = std::fs::read_to_string(eval.join("rows.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let samplers: Vec<&serde_json::Value> = rows.iter().map(|r| &r["sampler"]).collect();
    assert_eq!(
        samplers,
        [
            &serde_json::Value::Null,
            &"PC (C=1, tau=0.25)".into(),
            &"DPM-Solver-2".into()
        ]
    );
    // the cost beside each: 32 steps of one predictor and one corrector, or of two ε
    let evaluations: Vec<u64> = rows
        .iter()
        .map(|r| r["evaluations"].as_u64().unwrap())
        .collect();
    assert_eq!(evaluations, [0, 64, 64]);
    for r in &rows {
        assert!(r["stats"]["w1_ratio"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["stats"]["log_prior"].as_f64().unwrap().is_finite(), "{r}");
    }
    let table = std::fs::read_to_string(eval.join("table.md")).unwrap();
    assert!(table.contains("| SDA, DPM-Solver-2 |"), "{table}");
    // parameters once per --sampler or never; a sampler twice would name two rows alike
    let refused = |extra: &[&str], needle: &str| {
        let err = evaluate(&base.join("refused"), "8", "64", extra)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    };
    refused(
        &[
            "--sampler",
            "ddim",
            "--sampler",
            "pc",
            "--sampler-params",
            "",
        ],
        "once per sampler",
    );
    refused(
        &["--sampler", "pc", "--sampler-params", "corrections = 1"],
        "PC (C=1, tau=0.25)",
    );
    refused(&["--sampler", "nope"], "dpm-solver-2");
    // any registered guidance, by name
    let eval_dps = base.join("evaluate-dps");
    evaluate(
        &eval_dps,
        "32",
        "1024",
        &["--guidance", "dps", "--guidance-params", "zeta = 1"],
    )
    .unwrap();
    let settings: serde_json::Value =
        sda::data::read_json(&eval_dps.join("settings.json")).unwrap();
    assert_eq!(settings["guidance"], "DPS(zeta=1)", "{settings}");
    let settings: serde_json::Value = sda::data::read_json(&eval.join("settings.json")).unwrap();
    assert_eq!(settings["guidance"], "SDA(gamma=0.03)", "{settings}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn commands_refuse_a_dataset_of_another_system() {
    let base = folder("mismatch");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (shifted, lg, run) = (base.join("shifted"), base.join("lg"), base.join("run"));
    for (name, dir) in [("shifted-oracle", &shifted), ("linear-gaussian", &lg)] {
        cli(&[
            "generate",
            name,
            "--trajectories",
            "10",
            "--keep",
            "16",
            "--burn-in",
            "4",
            "--out",
            &s(dir),
        ])
        .unwrap();
    }
    // too few trajectories for a validation split
    let few = base.join("few");
    cli(&[
        "generate",
        "shifted-oracle",
        "--trajectories",
        "8",
        "--keep",
        "16",
        "--out",
        &s(&few),
    ])
    .unwrap();
    let err = cli(&[
        "train",
        "--data",
        &s(&few),
        "--steps",
        "1",
        "--out",
        &s(&run),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("valid split") && err.contains("no trajectory"),
        "{err}"
    );
    // a training config whose system or state dimension is not the dataset's
    let cfg = base.join("train.toml");
    let train_with = |system: &str, state_dim: usize| {
        std::fs::write(
            &cfg,
            format!(
                "system = \"{system}\"\ndata = \"{}\"\nsteps = 10\n[network]\nk = 1\n\
                 state_dim = {state_dim}\nwidth = 16\nblocks = 1\nembedding = 8\n",
                s(&shifted)
            ),
        )
        .unwrap();
        cli(&["train", "--config", &s(&cfg), "--out", &s(&run)])
            .unwrap_err()
            .to_string()
    };
    let err = train_with("shifted-orcale", 2);
    assert!(
        err.contains("shifted-oracle") && err.contains("shifted-orcale"),
        "{err}"
    );
    let err = train_with("shifted-oracle", 3);
    assert!(err.contains("states of 3 values"), "{err}");
    // a run trained on one system, assimilating another system's data
    cli(&[
        "train",
        "--data",
        &s(&shifted),
        "--k",
        "1",
        "--steps",
        "10",
        "--out",
        &s(&run),
    ])
    .unwrap();
    let err = cli(&[
        "assimilate",
        "--run",
        &s(&run),
        "--data",
        &s(&lg),
        "--len",
        "8",
        "--observation",
        "pick",
        "--observation-params",
        "states = [0], components = [0], sigma = 0.1",
        "--samples",
        "2",
        "--steps",
        "2",
        "--out",
        &s(&base.join("a")),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("linear-gaussian") && err.contains("shifted-oracle"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn the_training_schedule_is_chosen_by_name_and_kept_with_the_checkpoint() {
    use sda::prelude::*;
    let base = folder("schedule");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let data = base.join("data");
    cli(&[
        "generate",
        "shifted-oracle",
        "--trajectories",
        "10",
        "--keep",
        "16",
        "--out",
        &s(&data),
    ])
    .unwrap();
    let train = |schedule: Option<&str>, out: &str| {
        let (data, out) = (s(&data), s(&base.join(out)));
        let mut args = vec![
            "train", "--data", &data, "--k", "1", "--steps", "20", "--out", &out,
        ];
        if let Some(name) = schedule {
            args.extend(["--schedule", name]);
        }
        cli(&args)
    };
    train(Some("vp-linear"), "linear").unwrap();
    train(None, "cosine").unwrap();
    let state: serde_json::Value =
        sda::data::read_json(&base.join("linear").join("state.json")).unwrap();
    assert_eq!(state["config"]["schedule"]["name"], "vp-linear", "{state}");
    // the default is not written, so older checkpoints read as the paper's schedule
    let state: serde_json::Value =
        sda::data::read_json(&base.join("cosine").join("state.json")).unwrap();
    assert!(state["config"].get("schedule").is_none(), "{state}");
    // the schedule reached the training batches: same seed, other noise levels, other losses
    let loss = |run: &str| -> Vec<f64> {
        let state: serde_json::Value =
            sda::data::read_json(&base.join(run).join("state.json")).unwrap();
        serde_json::from_value(state["log"]["loss"].clone()).unwrap()
    };
    assert_ne!(loss("linear"), loss("cosine"));
    // and every use of the network gets it back
    let device = default_device();
    let prior = sda::checkpoint::Checkpoint::read(&base.join("linear"))
        .unwrap()
        .prior::<DefaultBackend>(&device)
        .unwrap();
    let (linear, cosine) = (VpLinear::default(), VpCosine::default());
    let sigma = prior.composed.local().schedule().sigma(0.3);
    assert!((sigma - linear.sigma(0.3)).abs() < 1e-12, "{sigma}");
    assert!((sigma - cosine.sigma(0.3)).abs() > 1e-3);
    // unknown names and bad parameters are errors; resuming with another schedule is refused
    let err = train(Some("vp-cos"), "typo").unwrap_err().to_string();
    assert!(err.contains("vp-cos") && err.contains("vp-linear"), "{err}");
    let err = cli(&[
        "train",
        "--data",
        &s(&data),
        "--steps",
        "20",
        "--out",
        &s(&base.join("eta")),
        "--schedule",
        "vp-exp",
        "--schedule-params",
        "eta = 2",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("eta"), "{err}");
    let err = cli(&[
        "train",
        "--data",
        &s(&data),
        "--k",
        "1",
        "--steps",
        "20",
        "--resume",
        "--out",
        &s(&base.join("linear")),
        "--schedule",
        "vp-exp",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("same settings"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}
