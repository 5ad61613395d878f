//! Bad input gets a clear error naming the problem, never a panic; existing results are not
//! overwritten without `--force`. The library's refusals first, then the command line's.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{fails_with, ok, sda};

use sda::experiments::oracle::{oracle_observation, NamedRun};
use sda::prelude::*;
use sda::registry::{self, parse_params, ObservationPlugin, SamplerPlugin};
use sda::systems::linear_gaussian::LinearGaussian;

type B = DefaultBackend;

fn schedule() -> Arc<dyn NoiseSchedule> {
    Arc::new(VpCosine::default())
}

fn composed(k: usize) -> impl EpsilonModel<B> {
    let sys = LinearGaussian::oracle();
    Composed::new::<B>(
        sys.window_epsilon(k, schedule()).unwrap(),
        TemporalWindow::new(k).unwrap(),
    )
    .unwrap()
}

/// An oracle run of `len` states with the exact posterior ε, DDIM and the `pick` observation
/// of `observation_params`.
fn oracle_run(observation_params: &str, len: usize) -> NamedRun {
    NamedRun {
        observation: ("pick".into(), parse_params(observation_params).unwrap()),
        guidance: None,
        prior: Default::default(),
        blanket: ("temporal-window".into(), parse_params("k = 2").unwrap()),
        sampler: ("ddim".into(), parse_params("").unwrap()),
        schedule: ("vp-cosine".into(), parse_params("").unwrap()),
        len,
        options: SampleOptions::default(),
        problem_seed: 0,
    }
}

#[test]
fn trajectory_shorter_than_window_is_an_error() {
    let eps = composed(3);
    let err = sample::<B>(
        &eps,
        &PredictorCorrector::ddim(),
        TrajectoryShape::new(6, 2),
        &SampleOptions::default(),
        &default_device(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Shape(_)), "{msg}");
    assert!(msg.contains("L = 6") && msg.contains("2k+1 = 7"), "{msg}");
}

#[test]
fn zero_half_width_is_an_error() {
    let err = TemporalWindow::new(0).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
    assert!(LinearGaussian::oracle()
        .window_epsilon(0, schedule())
        .is_err());
    let err = registry::build::<registry::BlanketPlugin>(
        "temporal-window",
        &parse_params("k = 0").unwrap(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("k must be at least 1"), "{err}");
}

#[test]
fn stride_outside_the_window_is_an_error() {
    for stride in [0, 6] {
        let err = TemporalWindow::strided(2, stride).unwrap_err();
        assert!(
            err.to_string().contains("stride must lie in 1..=2k+1 = 5"),
            "{err}"
        );
    }
    assert_eq!(TemporalWindow::strided(2, 5).unwrap().stride(), 5);
    let err = registry::build::<registry::BlanketPlugin>(
        "space-time-window",
        &parse_params("k = 2, r = 1, patch = 4, stride = 9").unwrap(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("got 9"), "{err}");
}

#[test]
fn observation_not_matching_trajectory_is_an_error() {
    let device = default_device();
    // observation built for L = 16, prior composed for any L ≥ 5, trajectories of L = 12
    let obs = oracle_observation();
    let y = vec![0.0; 4];
    let post = Guided::<B, _, _, _>::new(
        composed(2),
        &obs,
        &y,
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .unwrap();
    let err = sample::<B>(
        &post,
        &PredictorCorrector::ddim(),
        TrajectoryShape::new(12, 2),
        &SampleOptions::default(),
        &device,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("do not match the observation"),
        "{err}"
    );
    // wrong state dimension against the prior
    let obs3 = Pick::new(TrajectoryShape::new(16, 3), vec![0], vec![0], 0.1).unwrap();
    let err = Guided::<B, _, _, _>::new(
        composed(2),
        &obs3,
        &[0.0],
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("dimension 3"), "{err}");
    // y of the wrong length
    let err = Guided::<B, _, _, _>::new(
        composed(2),
        &obs,
        &[0.0; 3],
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("has 3 values"), "{err}");
    // indices outside the trajectory
    let err = Pick::new(TrajectoryShape::new(16, 2), vec![16], vec![0], 0.1).unwrap_err();
    assert!(err.to_string().contains("state 16 is outside"), "{err}");
    let err = Pick::new(TrajectoryShape::new(16, 2), vec![0], vec![2], 0.1).unwrap_err();
    assert!(err.to_string().contains("component 2 is outside"), "{err}");
}

#[test]
fn nan_in_observation_is_an_error() {
    let device = default_device();
    let obs = oracle_observation();
    let y = vec![0.1, f64::NAN, 0.2, 0.3];
    let err = Guided::<B, _, _, _>::new(
        composed(2),
        &obs,
        &y,
        SdaGaussian::new(0.01).unwrap(),
        &device,
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::NonFinite(_)));
    assert!(err.to_string().contains("y[1]"), "{err}");
}

#[test]
fn unknown_plugin_names_list_the_known_ones() {
    let err = registry::find::<ObservationPlugin>("pik").err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("unknown observation 'pik'") && msg.contains("pick"),
        "{msg}"
    );
    let err = registry::find::<SamplerPlugin>("euler").err().unwrap();
    assert!(err.to_string().contains("ddim, ddpm, heun, pc"), "{err}");
}

#[test]
fn parameter_typos_are_rejected() {
    let err = registry::build::<SamplerPlugin>("pc", &parse_params("correction = 2").unwrap())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("unknown field `correction`"),
        "{err}"
    );
    assert!(parse_params("k = ").is_err());
    let run = oracle_run("states = [0], components = [0], sigma = -1", 16);
    let err = sda::experiments::oracle::run_named(&run).unwrap_err();
    assert!(err.to_string().contains("sigma must be positive"), "{err}");
}

#[test]
fn bad_sampling_options_are_errors() {
    let eps = composed(2);
    let opts = SampleOptions {
        steps: 0,
        ..SampleOptions::default()
    };
    let err = sample::<B>(
        &eps,
        &PredictorCorrector::ddim(),
        TrajectoryShape::new(16, 2),
        &opts,
        &default_device(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("steps ≥ 1"), "{err}");
    assert!(PredictorCorrector::new(1, -0.5).is_err());
    assert!(SdaGaussian::new(f64::NAN).is_err());
    assert!(Dps::new(f64::NAN).is_err());
    assert!(Dps::new(-1.0).is_err());
    // the registry builds DPS through the same check
    let err =
        registry::build::<registry::GuidancePlugin>("dps", &parse_params("zeta = nan").unwrap())
            .err()
            .unwrap();
    assert!(
        err.to_string().contains("DPS zeta must be ≥ 0, got NaN"),
        "{err}"
    );
}

#[test]
fn an_oracle_too_large_for_its_dense_posterior_is_refused() {
    use sda::experiments::oracle::ORACLE_MAX_DIM;
    // L = 100 000 would need a 200 000 × 200 000 dense covariance (320 GB): refused before
    // anything is allocated, naming the limit
    let len = 100_000;
    assert!(2 * len > ORACLE_MAX_DIM);
    let run = oracle_run("states = [0, 5], components = [0], sigma = 0.1", len);
    let err = sda::experiments::oracle::run_named(&run).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("L·D = 100000·2 = 200000"), "{msg}");
    assert!(
        msg.contains(&format!("L ≤ {}", ORACLE_MAX_DIM / 2)),
        "{msg}"
    );
}

#[test]
fn ddim_law_refuses_what_it_cannot_do() {
    use sda::experiments::oracle::{ddim_law, SAMPLER_LAW_MAX_DIM};
    let device = default_device();
    let system = LinearGaussian::oracle();
    let eps = system
        .prior_epsilon(16, Arc::new(VpCosine::default()))
        .unwrap();
    let shape = TrajectoryShape::new(16, 2);
    let err = ddim_law::<DefaultBackend>(&eps, shape, 0, &device).unwrap_err();
    assert!(err.to_string().contains("steps"), "{err}");
    let err = ddim_law::<DefaultBackend>(&eps, TrajectoryShape::new(8, 2), 4, &device).unwrap_err();
    assert!(err.to_string().contains("16×2"), "{err}");
    let big = TrajectoryShape::new(SAMPLER_LAW_MAX_DIM + 1, 1);
    let err = ddim_law::<DefaultBackend>(&eps, big, 4, &device).unwrap_err();
    assert!(err.to_string().contains("small problems"), "{err}");
}

#[test]
fn sampler_law_refuses_a_stochastic_step() {
    use sda::experiments::oracle::sampler_law;
    use sda::sampler::PredictorCorrector;
    let device = default_device();
    let eps = LinearGaussian::oracle()
        .prior_epsilon(16, Arc::new(VpCosine::default()))
        .unwrap();
    let shape = TrajectoryShape::new(16, 2);
    // Langevin corrections are neither deterministic nor affine (their step τ / mean(ε²) even
    // divides by zero at the probe x = 0): refused, naming the sampler
    let pc = PredictorCorrector::new(1, 0.25).unwrap();
    let err = sampler_law::<DefaultBackend>(&eps, &pc, shape, 256, Default::default(), &device)
        .unwrap_err();
    assert!(
        err.to_string().contains("deterministic step affine"),
        "{err}"
    );
    assert!(err.to_string().contains("PC (C=1, tau=0.25)"), "{err}");
}

#[test]
fn non_finite_linear_gaussian_matrices_are_refused() {
    use nalgebra::{DMatrix, DVector};
    let mut f = DMatrix::identity(2, 2) * 0.5;
    f[(0, 1)] = f64::NAN;
    let q = DMatrix::identity(2, 2) * 0.1;
    let err = LinearGaussian::new(f.clone(), q.clone(), DVector::zeros(2), q.clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("F holds NaN"), "{err}");
    // the stationary prior is solved from F first; the NaN is still named, not propagated
    let err = LinearGaussian::stationary(f, q.clone()).err().unwrap();
    assert!(err.to_string().contains("NaN"), "{err}");
    let m0 = DVector::from_vec(vec![0.0, f64::INFINITY]);
    let err = LinearGaussian::new(DMatrix::identity(2, 2) * 0.5, q.clone(), m0, q)
        .err()
        .unwrap();
    assert!(err.to_string().contains("m0 holds inf"), "{err}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sda-bad-input-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn given_plugin_parameters_are_merged_over_the_command_defaults() {
    // `oracle`'s default sampler is `pc` with C = 1: giving only tau keeps C = 1
    let text = ok(&sda(&[
        "oracle",
        "--guidance",
        "exact",
        "--sampler-params",
        "tau = 0.5",
        "--samples",
        "16",
        "--steps",
        "8",
    ]));
    assert!(text.contains("PC (C=1, tau=0.5)"), "{text}");
}

#[test]
fn the_shared_sampling_flags_set_the_same_parameters_and_refuse_what_they_cannot() {
    let oracle = |extra: &[&str]| {
        let mut args = vec![
            "oracle",
            "--guidance",
            "exact",
            "--samples",
            "16",
            "--steps",
            "8",
        ];
        args.extend(extra);
        sda(&args)
    };
    // --tau and --corrections over the defaults; a list of C gives one row each
    let text = ok(&oracle(&["--tau", "0.5", "--corrections", "0,2"]));
    // (C = 0 is the predictor alone, which `pc` describes as DDIM)
    assert!(
        text.contains("| DDIM (C=0) |") && text.contains("| PC (C=2, tau=0.5) |"),
        "{text}"
    );
    // a flag and the same key in the parameters is ambiguous
    fails_with(
        &oracle(&["--tau", "0.5", "--sampler-params", "tau = 0.3"]),
        "tau is given twice, by --tau and in --sampler-params",
    );
    // the flags belong to `pc` and `sda`
    fails_with(
        &oracle(&["--sampler", "ddim", "--corrections", "1"]),
        "--corrections sets a parameter of the `pc` sampler; give those of `ddim` with --sampler-params",
    );
    fails_with(
        &oracle(&["--tau", "nan"]),
        "--tau must be positive and finite, got NaN",
    );
    fails_with(
        &sda(&["oracle", "--gamma", "inf"]),
        "--gamma must be positive and finite, got inf",
    );
    fails_with(
        &sda(&["oracle", "--guidance", "dps", "--gamma", "0.1"]),
        "--gamma sets a parameter of the `sda` guidance",
    );
    // one sampler per assimilation: a list of C is refused before anything is read
    fails_with(
        &sda(&["assimilate", "--run", "nowhere", "--corrections", "1,2"]),
        "--corrections takes one value in this command, got [1, 2]",
    );
}

#[test]
fn a_negative_number_is_a_value_not_a_flag() {
    let dir = scratch("lr");
    let data = small_dataset(&dir);
    let out = dir.join("run");
    fails_with(
        &sda(&["train", "--data", s(&data), "--lr", "-1", "--out", s(&out)]),
        "the learning rate lr must be ≥ 0 and finite, got -1",
    );
}

#[test]
fn generate_keeps_a_finished_dataset_unless_forced() {
    let dir = scratch("generate");
    let out = dir.join("lg");
    let run = |extra: &[&str]| {
        let mut args = vec!["generate", "linear-gaussian", "--trajectories", "8"];
        args.extend(["--keep", "16", "--burn-in", "4", "--out", s(&out)]);
        args.extend(extra);
        sda(&args)
    };
    ok(&run(&[]));
    let first = std::fs::read(out.join("train.npy")).unwrap();
    // the same settings again: nothing to do, nothing rewritten
    ok(&run(&[]));
    assert_eq!(std::fs::read(out.join("train.npy")).unwrap(), first);
    // other settings are refused, and the dataset is still there
    fails_with(&run(&["--seed", "1"]), "holds a dataset of other settings");
    assert_eq!(std::fs::read(out.join("train.npy")).unwrap(), first);
    ok(&run(&["--seed", "1", "--force"]));
    assert_ne!(std::fs::read(out.join("train.npy")).unwrap(), first);
    // data files without a manifest are not overwritten either
    let bare = dir.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(out.join("train.npy"), bare.join("train.npy")).unwrap();
    fails_with(
        &sda(&["generate", "linear-gaussian", "--out", s(&bare)]),
        "holds train.npy but no manifest.json",
    );
}

#[test]
fn a_diverged_generation_leaves_nothing_that_blocks_the_corrected_rerun() {
    let out = scratch("generate-diverged").join("l63");
    let run = |extra: &[&str]| {
        let mut args = vec!["generate", "lorenz63", "--trajectories", "6", "--keep", "8"];
        args.extend(["--burn-in", "4", "--out", s(&out)]);
        args.extend(extra);
        sda(&args)
    };
    // a step of 0.5 makes RK4 blow up: named, and no staging folder is left behind
    fails_with(
        &run(&["--system-params", "dt = 0.5"]),
        "the simulation diverged",
    );
    assert!(!out.join(".staging").exists());
    ok(&run(&[]));
    assert!(out.join("manifest.json").exists() && !out.join(".staging").exists());
    // a misspelt parameter names the key, and a config file the file
    fails_with(
        &run(&["--system-params", "sigmaa = 1.0"]),
        "unknown field `sigmaa`",
    );
    let config = out.with_file_name("bad.toml");
    std::fs::write(&config, "grid = 64\n").unwrap();
    fails_with(
        &run(&["--config", s(&config), "--force"]),
        "bad.toml): configuration error in the parameters of system 'lorenz63': unknown field `grid`",
    );
}

/// Kolmogorov samples `[1, 2, 2, 64, 64]` (the default solver's learning grid), with `bad` at
/// one value.
fn field_samples(path: &Path, bad: f32) {
    let mut data = vec![0.0f32; 2 * 2 * 64 * 64];
    data[5000] = bad;
    let a = sda::data::Array::new(vec![1, 2, 2, 64, 64], data).unwrap();
    sda::data::write_npy(path, &a).unwrap();
}

#[test]
fn non_finite_samples_are_refused_and_results_kept() {
    let dir = scratch("fields");
    let nan = dir.join("nan.npy");
    field_samples(&nan, f32::NAN);
    fails_with(&sda(&["resimulate", s(&nan)]), "NaN or infinite");
    fails_with(
        &sda(&["plot", s(&nan), "--out", s(&dir.join("p.png"))]),
        "NaN or infinite",
    );
    assert!(!dir.join("p.png").exists() && !dir.join("resimulate.json").exists());
    // an existing resimulate.json beside the samples is not replaced without --force
    let fine = dir.join("samples.npy");
    field_samples(&fine, 0.0);
    std::fs::write(dir.join("resimulate.json"), b"[]").unwrap();
    fails_with(
        &sda(&["resimulate", s(&fine)]),
        "resimulate.json exists; give --force",
    );
    assert_eq!(std::fs::read(dir.join("resimulate.json")).unwrap(), b"[]");
}

#[test]
fn sizes_beyond_the_machine_are_refused_with_the_estimate() {
    let max = u64::MAX.to_string();
    for args in [
        vec!["oracle", "--samples", &max],
        vec!["oracle", "--samples", "100000000000"],
        vec!["oracle", "--steps", &max],
    ] {
        fails_with(&sda(&args), "reduce the sizes");
    }
    let dir = scratch("sizes");
    let out = dir.join("d");
    fails_with(
        &sda(&["generate", "lorenz63", "--keep", &max, "--out", s(&out)]),
        "--keep 18446744073709551615 states of 3 values needs about",
    );
    assert!(!out.exists());
}

/// A small linear-Gaussian dataset in `dir/data`.
fn small_dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    ok(&sda(&[
        "generate",
        "linear-gaussian",
        "--trajectories",
        "10",
        "--keep",
        "16",
        "--burn-in",
        "4",
        "--out",
        s(&data),
    ]));
    data
}

#[test]
fn training_refuses_a_second_writer_a_missing_run_and_an_unnamed_dataset() {
    let dir = scratch("train");
    let data = small_dataset(&dir);
    let out = dir.join("run");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            s(&data),
            "--steps",
            "4",
            "--out",
            s(&out),
        ];
        args.extend(extra);
        sda(&args)
    };
    // --resume where nothing was trained
    fails_with(&train(&["--resume"]), "holds no training run to continue");
    // another live process (pid 1 always exists) holds the folder
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(".lock"), "1").unwrap();
    fails_with(&train(&[]), "is in use by another training (process 1");
    assert!(!out.join("state.json").exists());
    // a lock left by a process that no longer exists is taken over, and released at the end
    std::fs::write(out.join(".lock"), "4000000000").unwrap();
    let text = ok(&train(&[]));
    assert!(!out.join(".lock").exists());
    assert!(!text.contains("Some("), "no Rust debug text: {text}");
    assert!(text.contains("validation loss"), "{text}");
    // the recorded data folder is absolute, so the run is used from anywhere
    let state: serde_json::Value = sda::data::read_json(&out.join("state.json")).unwrap();
    assert!(
        Path::new(state["config"]["data"].as_str().unwrap()).is_absolute(),
        "{state}"
    );
    fails_with(
        &train(&["--resume", "--max-steps", "0"]),
        "--max-steps must be ≥ 1",
    );
    // a thread count that does not divide the batch (256 by default)
    fails_with(
        &sda(&[
            "train",
            "--data",
            s(&data),
            "--steps",
            "4",
            "--threads",
            "3",
            "--out",
            s(&dir.join("t3")),
        ]),
        "threads = 3 must be ≥ 1 and divide batch = 256",
    );
    // a dataset folder without a manifest is not taken for Lorenz-63
    let bare = dir.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    for split in ["train", "valid", "test"] {
        std::fs::copy(
            data.join(format!("{split}.npy")),
            bare.join(format!("{split}.npy")),
        )
        .unwrap();
    }
    fails_with(
        &sda(&["train", "--data", s(&bare), "--out", s(&dir.join("r2"))]),
        "has no manifest.json",
    );
}
