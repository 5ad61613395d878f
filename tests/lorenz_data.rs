//! Lorenz-63 datasets: same seed → identical bytes (also after an interruption), right shapes,
//! and the expected log-prior metric on the system's own trajectories.

use rand::{rngs::StdRng, SeedableRng};
use sda::data::{load_split, load_states, read_npy, split_path, write_npy};
use sda::experiments::generate::{generate_lorenz63, GenerateOptions, Outcome};
use sda::metrics::expected_log_prior;
use sda::systems::lorenz63::Lorenz63;
use sda::systems::Dynamics;

fn opts(out: &std::path::Path, max_new: Option<usize>) -> GenerateOptions {
    GenerateOptions {
        out: out.to_path_buf(),
        trajectories: 20,
        seed: 3,
        burn_in: 128,
        keep: 65,
        max_new,
        progress: false,
        force: false,
    }
}

#[test]
fn lorenz_dataset_is_reproducible_and_loads() {
    let base = std::env::temp_dir().join(format!("sda-lorenz-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    let sys = Lorenz63::default();
    assert_eq!(
        generate_lorenz63(&sys, &opts(&a, Some(7))).unwrap(),
        Outcome::Partial {
            computed: 7,
            remaining: 13
        }
    );
    generate_lorenz63(&sys, &opts(&a, None)).unwrap();
    generate_lorenz63(&sys, &opts(&b, None)).unwrap();
    // the manifest names the variables, their units and the time between states
    let manifest = sda::data::Manifest::read(&a).unwrap().unwrap();
    assert_eq!(manifest.state.variables, ["x", "y", "z"]);
    assert_eq!(manifest.state.dt, Some(sys.dt));
    assert!(manifest.state.units.contains("dimensionless"));
    for (split, n) in [("train", 16), ("valid", 2), ("test", 2)] {
        assert_eq!(load_split(&a, split, &[3]).unwrap().shape, vec![n, 65, 3]);
        assert_eq!(
            std::fs::read(split_path(&a, split)).unwrap(),
            std::fs::read(split_path(&b, split)).unwrap()
        );
    }
    // a NaN in the data is refused when the split is read, naming where it is
    let mut train = read_npy(&split_path(&b, "train")).unwrap();
    train.data[(3 * 65 + 40) * 3 + 2] = f32::NAN;
    write_npy(&split_path(&b, "train"), &train).unwrap();
    let expected = "value NaN of trajectory 3 at time index 40";
    let err = load_split(&b, "train", &[3]).unwrap_err();
    assert!(err.to_string().contains(expected), "{err}");
    let err = load_states(&b, "train", 3).unwrap_err();
    assert!(err.to_string().contains(expected), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}

/// On exact transitions the mean log-prior per transition is the Gaussian entropy term:
/// E[log N(x' | M(x), Δ I)] = −3/2 (1 + ln(2πΔ)), within sampling error.
#[test]
fn expected_log_prior_of_true_trajectories() {
    let sys = Lorenz63::default();
    let mut rng = StdRng::seed_from_u64(1);
    let len = 65;
    let trajs: Vec<f64> = (0..256)
        .flat_map(|_| sys.trajectory(len, 256, &mut rng))
        .collect();
    let lp = expected_log_prior(&sys, &trajs, len).unwrap() / (len - 1) as f64;
    let want = -1.5 * (1.0 + (2.0 * std::f64::consts::PI * 0.025).ln());
    // per-transition std is √(3/2) ≈ 1.22; averaged over 256·64 transitions: ≈ 0.01
    assert!((lp - want).abs() < 0.05, "{lp} vs {want}");
    assert!(expected_log_prior(&sys, &trajs[..10], len).is_err());
    assert_eq!(sys.state_dim(), 3);
}

/// Parameters that cannot simulate are refused before anything is written; parameters that
/// make the simulation blow up are reported as a divergence, naming where.
#[test]
fn bad_lorenz_parameters_are_clear_errors() {
    let base = std::env::temp_dir().join(format!("sda-lorenz-bad-{}", std::process::id()));
    for (sys, needle) in [
        (
            Lorenz63 {
                dt: f64::NAN,
                ..Lorenz63::default()
            },
            "dt must be positive and finite, got NaN",
        ),
        (
            Lorenz63 {
                dt: -0.1,
                ..Lorenz63::default()
            },
            "dt must be positive and finite, got -0.1",
        ),
        (
            Lorenz63 {
                rho: f64::INFINITY,
                ..Lorenz63::default()
            },
            "rho must be finite, got inf",
        ),
    ] {
        let err = generate_lorenz63(&sys, &opts(&base.join("a"), None)).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert!(!base.join("a").exists(), "nothing is written for {sys:?}");
    }
    // σ = 1000 with Δ = 0.025 makes RK4 unstable: the trajectories overflow
    let stiff = Lorenz63 {
        sigma: 1e3,
        ..Lorenz63::default()
    };
    let err = generate_lorenz63(&stiff, &opts(&base.join("b"), None)).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not finite (first at kept state 0 of 65)")
            && err.to_string().contains("diverged"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
