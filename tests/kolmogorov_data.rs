//! A small Kolmogorov dataset generates, resumes after an interruption with identical bytes,
//! loads back with the right shapes, and corrupt files are reported clearly.

use std::path::{Path, PathBuf};

use sda::data::{load_split, read_npy, split_path};
use sda::experiments::generate::{generate_kolmogorov, GenerateOptions, Outcome};
use sda::systems::kolmogorov::KolmogorovConfig;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sda-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn cfg() -> KolmogorovConfig {
    KolmogorovConfig {
        grid: 64,
        coarsen: 1,
        ..KolmogorovConfig::default()
    }
}

fn opts(out: &Path, max_new: Option<usize>) -> GenerateOptions {
    GenerateOptions {
        out: out.to_path_buf(),
        trajectories: 16,
        seed: 7,
        burn_in: 4,
        keep: 8,
        max_new,
        progress: false,
        force: false,
    }
}

#[test]
fn dataset_generates_resumes_and_loads() {
    let a = tmp("resumed");
    let b = tmp("fresh");
    // an interrupted run: 5 trajectories finished
    assert_eq!(
        generate_kolmogorov(&cfg(), &opts(&a, Some(5))).unwrap(),
        Outcome::Partial {
            computed: 5,
            remaining: 11
        }
    );
    // resuming keeps them
    assert_eq!(
        generate_kolmogorov(&cfg(), &opts(&a, None)).unwrap(),
        Outcome::Complete {
            computed: 11,
            reused: 5
        }
    );
    assert_eq!(
        generate_kolmogorov(&cfg(), &opts(&b, None)).unwrap(),
        Outcome::Complete {
            computed: 16,
            reused: 0
        }
    );
    for (split, n) in [("train", 12), ("valid", 1), ("test", 3)] {
        let arr = load_split(&a, split, &[2, 64, 64]).unwrap();
        assert_eq!(arr.shape, vec![n, 8, 2, 64, 64]);
        assert!(arr.data.iter().all(|v| v.is_finite()));
        let bytes_a = std::fs::read(split_path(&a, split)).unwrap();
        let bytes_b = std::fs::read(split_path(&b, split)).unwrap();
        assert!(bytes_a == bytes_b, "{split}: resumed and fresh runs differ");
    }
    assert_eq!(
        std::fs::read(a.join("manifest.json")).unwrap(),
        std::fs::read(b.join("manifest.json")).unwrap()
    );
    // the velocity field moves: consecutive states differ, magnitudes are O(1)
    let test = read_npy(&split_path(&a, "test")).unwrap();
    let state = 2 * 64 * 64;
    let diff: f32 = (0..state)
        .map(|i| (test.data[i] - test.data[state + i]).abs())
        .sum::<f32>()
        / state as f32;
    let max = test.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        diff > 1e-3 && max > 0.3 && max < 20.0,
        "diff {diff}, max {max}"
    );
    let _ = std::fs::remove_dir_all(&b);

    // corrupt files are reported by name
    let path = split_path(&a, "valid");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_split(&a, "valid", &[2, 64, 64])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("valid.npy") && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&path, b"not an array").unwrap();
    let err = load_split(&a, "valid", &[2, 64, 64])
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad magic"), "{err}");
    let err = load_split(&a, "train", &[2, 32, 32])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not [trajectories, time, 2, 32, 32]"),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    let err = load_split(&a, "valid", &[2, 64, 64])
        .unwrap_err()
        .to_string();
    assert!(err.contains("valid.npy"), "{err}");
    let _ = std::fs::remove_dir_all(&a);
}

#[test]
fn staging_of_other_settings_is_refused() {
    let dir = tmp("settings");
    generate_kolmogorov(&cfg(), &opts(&dir, Some(1))).unwrap();
    let mut other = opts(&dir, None);
    other.seed = 8;
    let err = generate_kolmogorov(&cfg(), &other).unwrap_err().to_string();
    assert!(err.contains("other settings"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_solver_settings_are_errors() {
    let bad = KolmogorovConfig { grid: 63, ..cfg() };
    assert!(sda::systems::kolmogorov::Kolmogorov::new(bad)
        .err()
        .unwrap()
        .to_string()
        .contains("even"));
    let bad = KolmogorovConfig {
        grid: 64,
        coarsen: 3,
        ..cfg()
    };
    assert!(sda::systems::kolmogorov::Kolmogorov::new(bad)
        .err()
        .unwrap()
        .to_string()
        .contains("divide"));
    let err = toml::from_str::<KolmogorovConfig>("grd = 64")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `grd`"), "{err}");
}
