//! A plugin written outside the crate (the book's example, compiled here verbatim) is
//! registered with `inventory` and run by name; its posterior matches the exact oracle.

#[path = "../examples/custom_observation.rs"]
mod custom_observation;

use sda::experiments::oracle::{run_named, NamedRun};
use sda::prelude::*;
use sda::registry::parse_params;

#[test]
fn custom_observation_is_listed() {
    let text = sda::cli::list_text().unwrap();
    assert!(text.contains("component-sum"), "{text}");
}

#[test]
fn custom_observation_runs_by_name_and_matches_the_oracle() {
    let run = |guidance: Option<(String, toml::Value)>, corrections: usize| NamedRun {
        observation: (
            "component-sum".into(),
            parse_params("every = 3, sigma = 0.1").unwrap(),
        ),
        guidance,
        prior: Default::default(),
        blanket: ("temporal-window".into(), parse_params("k = 2").unwrap()),
        sampler: (
            "pc".into(),
            parse_params(&format!("corrections = {corrections}, tau = 0.25")).unwrap(),
        ),
        schedule: ("vp-cosine".into(), parse_params("").unwrap()),
        len: 16,
        options: SampleOptions {
            samples: 2048,
            steps: 256,
            seed: 5,
            progress: false,
            ..Default::default()
        },
        problem_seed: 4,
    };
    // exact posterior ε through the custom A: the sampler reproduces the exact posterior
    let exact = run_named(&run(None, 0)).unwrap();
    assert!(exact.max_mean_error <= 0.15, "{exact:?}");
    assert!(
        exact.var_ratio_min >= 0.85 && exact.var_ratio_max <= 1.15,
        "{exact:?}"
    );
    // SDA guidance differentiates through the custom A
    let sda = run_named(&run(
        Some(("sda".into(), parse_params("gamma = 0.01").unwrap())),
        2,
    ))
    .unwrap();
    assert!(sda.max_mean_error <= 0.3, "{sda:?}");
}

#[test]
fn custom_observation_rejects_bad_parameters() {
    let err = sda::registry::build_for::<sda::registry::ObservationPlugin>(
        "component-sum",
        &parse_params("evry = 3, sigma = 0.1").unwrap(),
        TrajectoryShape::new(16, 2),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("unknown field `evry`"), "{err}");
}
