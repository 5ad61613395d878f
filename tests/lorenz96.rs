//! Lorenz-96 is a registered system like the others: `sda generate lorenz96` writes a dataset
//! of any ring size, its manifest records the parameters, the site names and Δt, and a ring too
//! small for the stencil is refused by name. (The model's tangent-linear model and adjoint are
//! checked against finite differences in `src/systems/lorenz96.rs`.)

mod common;

use common::{fails_with, ok, sda};
use sda::data::{load_split, Manifest};

#[test]
fn generate_writes_a_lorenz96_dataset_of_any_ring_size() {
    let dir = std::env::temp_dir().join(format!("sda-lorenz96-{}", std::process::id()));
    let out = dir.join("n12");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    ok(&sda(&[
        "generate",
        "lorenz96",
        "--system-params",
        "n = 12, forcing = 8.0",
        "--trajectories",
        "10",
        "--burn-in",
        "200",
        "--keep",
        "33",
        "--out",
        &s(&out),
    ]));
    let manifest = Manifest::read(&out).unwrap().unwrap();
    assert_eq!(manifest.system, "lorenz96");
    assert_eq!(manifest.state_shape, [12]);
    assert_eq!(manifest.state.variables.len(), 12);
    assert_eq!(manifest.state.dt, Some(0.05));
    let train = load_split(&out, "train", &[12]).unwrap();
    assert_eq!(train.shape, [8, 33, 12]);
    // after the burn-in the states are on the attractor: bounded, not at the fixed point x = F
    let spread = train
        .data
        .iter()
        .map(|v| (v - 8.0).abs())
        .fold(0.0f32, f32::max);
    assert!(spread > 1.0 && train.data.iter().all(|v| v.abs() < 30.0));
    fails_with(
        &sda(&[
            "generate",
            "lorenz96",
            "--system-params",
            "n = 3",
            "--out",
            &s(&dir.join("n3")),
        ]),
        "n must be at least 4",
    );
    std::fs::remove_dir_all(&dir).ok();
}
