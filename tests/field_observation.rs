//! The Kolmogorov observation operators (`sda::observe::field`) against plain host
//! computations (`mean_pool`, `vorticity_from_velocity`), their composition, their gradients
//! (what guidance differentiates) and their shape errors.

use burn::tensor::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};
use sda::backend::{default_device, from_host, to_host, DefaultBackend};
use sda::observe::field::{FieldObservation, FieldOp, FieldScenario};
use sda::observe::ObservationModel;
use sda::registry::{build_for, parse_params, ObservationPlugin};
use sda::systems::kolmogorov::{mean_pool, vorticity_from_velocity};
use sda::TrajectoryShape;

type B = DefaultBackend;

/// `n` random trajectories of `len` states of (u, v) on `g²`, `[n·len·2·g·g]`.
fn fields(n: usize, len: usize, g: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * len * 2 * g * g)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect()
}

fn apply(obs: &FieldObservation, x: &[f64], n: usize) -> Vec<f64> {
    let s = ObservationModel::<B>::trajectory_shape(obs);
    let t = from_host::<B, 3>(x, [n, s.len, s.dim], &default_device());
    to_host(ObservationModel::<B>::apply(obs, t))
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (u, v)) in a.iter().zip(b).enumerate() {
        assert!((u - v).abs() <= tol * (1.0 + v.abs()), "{i}: {u} vs {v}");
    }
}

/// u and v of state `s` of trajectory `j`.
fn uv(x: &[f64], j: usize, s: usize, len: usize, g: usize) -> (&[f64], &[f64]) {
    let off = (j * len + s) * 2 * g * g;
    (&x[off..off + g * g], &x[off + g * g..off + 2 * g * g])
}

#[test]
fn assimilation_scenario_is_state_selection_then_pooling() {
    let (n, len, g) = (2, 9, 64);
    let x = fields(n, len, g, 1);
    let obs = FieldScenario::Assimilation.build(len, g).unwrap();
    assert_eq!(obs.output_shape(), [3, 2, 8, 8]);
    let y = apply(&obs, &x, n);
    let mut expect = Vec::new();
    for j in 0..n {
        for s in [0, 4, 8] {
            let (u, v) = uv(&x, j, s, len, g);
            expect.extend(mean_pool(u, g, 8));
            expect.extend(mean_pool(v, g, 8));
        }
    }
    close(&y, &expect, 1e-5);
}

#[test]
fn saturation_scenario_matches_host_vorticity() {
    let (n, len, g) = (1, 7, 64);
    let x = fields(n, len, g, 2);
    let obs = FieldScenario::Saturation.build(len, g).unwrap();
    assert_eq!(obs.output_shape(), [3, 1, 12, 12]);
    let y = apply(&obs, &x, n);
    let mut expect = Vec::new();
    for s in [0, 3, 6] {
        let (u, v) = uv(&x, 0, s, len, g);
        let w = vorticity_from_velocity(&mean_pool(u, g, 4), &mean_pool(v, g, 4), 16);
        for iy in 2..14 {
            for ix in 2..14 {
                // grid units: physical ω times the 16² grid's spacing
                let w = w[iy * 16 + ix] * std::f64::consts::TAU / 16.0;
                expect.push(w / (1.0 + w.abs()));
            }
        }
    }
    close(&y, &expect, 1e-4);
}

#[test]
fn extrapolation_subsampling_circle_and_loop() {
    let (len, g) = (8, 32);
    let x = fields(1, len, g, 3);
    // extrapolation: states 0, 3, 6 pooled 4× → 8², crop [4:12) is outside → clear error
    let err = FieldScenario::Extrapolation
        .build(len, g)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not inside the 8×8 grid"), "{err}");
    let obs = FieldScenario::Extrapolation.build(len, 64).unwrap();
    assert_eq!(obs.output_shape(), [3, 2, 8, 8]);
    // subsampling every 4th grid point
    let obs = FieldScenario::Subsampling(4).build(len, g).unwrap();
    let y = apply(&obs, &x, 1);
    let (u, _) = uv(&x, 0, 0, len, g);
    assert_eq!(y.len(), len * 2 * 8 * 8);
    for iy in 0..8 {
        for ix in 0..8 {
            assert_eq!(y[iy * 8 + ix] as f32, u[iy * 4 * g + ix * 4] as f32);
        }
    }
    // circle: vorticity of the last state on the ring
    let obs = FieldScenario::Circle.build(len, g).unwrap();
    let y = apply(&obs, &x, 1);
    let (u, v) = uv(&x, 0, len - 1, len, g);
    let w = vorticity_from_velocity(u, v, g);
    let c = |i: usize| -1.0 + (2.0 * i as f64 + 1.0) / g as f64;
    let expect: Vec<f64> = (0..g * g)
        .filter(|&p| (0.4..0.6).contains(&(c(p / g).powi(2) + c(p % g).powi(2))))
        .map(|p| w[p] * std::f64::consts::TAU / g as f64)
        .collect();
    assert!(expect.len() > 50);
    close(&y, &expect, 1e-4);
    assert_eq!(FieldScenario::Circle.fixed_y(), Some(0.6));
    // loop closure
    let obs = FieldScenario::Loop.build(len, g).unwrap();
    let y = apply(&obs, &x, 1);
    let d = 2 * g * g;
    let expect: Vec<f64> = (0..d).map(|i| x[i] - x[(len - 1) * d + i]).collect();
    close(&y, &expect, 1e-5);
}

#[test]
fn observed_states_follow_the_state_selections() {
    let states = |obs: &FieldObservation| ObservationModel::<B>::observed_states(obs);
    // the paper's assimilation scenario on L = 9: states 1, 5, 9 (0-based 0, 4, 8)
    let obs = FieldScenario::Assimilation.build(9, 64).unwrap();
    assert_eq!(states(&obs), Some(vec![0, 4, 8]));
    let obs = FieldScenario::Extrapolation.build(8, 64).unwrap();
    assert_eq!(states(&obs), Some(vec![0, 3, 6]));
    // composed selections: states [1, 2, 5, 7], then every 2nd of those
    let obs = FieldObservation::new(
        8,
        16,
        vec![
            FieldOp::States {
                states: vec![1, 2, 5, 7],
            },
            FieldOp::EveryState { every: 2 },
            FieldOp::Pool { factor: 4 },
        ],
        0.1,
    )
    .unwrap();
    assert_eq!(states(&obs), Some(vec![1, 5]));
    // y that is not images of states has none
    let obs = FieldScenario::Loop.build(8, 16).unwrap();
    assert_eq!(states(&obs), None);
}

#[test]
fn pipeline_is_differentiable() {
    // d/dx Σ A(x) for pooling of every 2nd state: 1/f² on kept states, 0 elsewhere
    let (len, g, f) = (4, 16, 4);
    let obs = FieldObservation::new(
        len,
        g,
        vec![
            FieldOp::EveryState { every: 2 },
            FieldOp::Pool { factor: f },
        ],
        0.1,
    )
    .unwrap();
    let device = default_device();
    let x = from_host::<B, 3>(&fields(1, len, g, 4), [1, len, 2 * g * g], &device).require_grad();
    let grads = ObservationModel::<B>::apply(&obs, x.clone())
        .sum()
        .backward();
    let gx: Tensor<_, 3> = x.grad(&grads).unwrap();
    let gx = to_host(gx);
    for (i, v) in gx.iter().enumerate() {
        let state = i / (2 * g * g);
        let expect = if state % 2 == 0 {
            1.0 / (f * f) as f64
        } else {
            0.0
        };
        assert!((v - expect).abs() < 1e-6, "{i}: {v}");
    }
}

#[test]
fn shape_errors_are_clear() {
    let msg = |ops: Vec<FieldOp>| {
        FieldObservation::new(8, 64, ops, 0.1)
            .unwrap_err()
            .to_string()
    };
    assert!(msg(vec![FieldOp::Pool { factor: 5 }]).contains("5 does not divide the 64×64 grid"));
    assert!(msg(vec![FieldOp::States { states: vec![8] }]).contains("state 8 is outside"));
    assert!(msg(vec![FieldOp::Vorticity, FieldOp::Vorticity]).contains("needs (u, v)"));
    assert!(msg(vec![FieldOp::LoopClosure, FieldOp::LoopClosure]).contains("at least 2 states"));
    assert!(FieldObservation::new(8, 64, vec![], 0.0).is_err());
    // by name: presets, the generic pipeline, typos and wrong state sizes
    let build = |name: &str, p: &str, shape| {
        build_for::<ObservationPlugin>(name, &parse_params(p).unwrap(), shape)
    };
    let shape = TrajectoryShape::new(9, 2 * 64 * 64);
    assert_eq!(
        build("kolmogorov-assimilation", "", shape)
            .unwrap()
            .output_dim(),
        3 * 2 * 8 * 8
    );
    assert_eq!(
        build(
            "field",
            "ops = [{every-state = {every = 4}}, {pool = {factor = 8}}, \"vorticity\"], sigma = 0.1",
            shape
        )
        .unwrap()
        .output_dim(),
        3 * 8 * 8
    );
    let err = build("field", "ops = [{pol = {factor = 8}}], sigma = 0.1", shape)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("pol"), "{err}");
    let err = build("kolmogorov-assimilation", "", TrajectoryShape::new(9, 3))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not (u, v) on a square grid"), "{err}");
    let err = build("kolmogorov-subsampling", "stride = 3", shape)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("3 does not divide"), "{err}");
}
