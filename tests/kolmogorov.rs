//! Physics tests of the pseudo-spectral Navier–Stokes solver, on small grids (seconds).

use rand::{rngs::StdRng, SeedableRng};
use sda::systems::kolmogorov::solver::{FlowParams, NavierStokes2d};
use sda::systems::kolmogorov::spectral::C64;
use sda::systems::kolmogorov::{Kolmogorov, KolmogorovConfig};

const TAU: f64 = 2.0 * std::f64::consts::PI;

fn field(n: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for iy in 0..n {
        for ix in 0..n {
            out[iy * n + ix] = f(TAU * ix as f64 / n as f64, TAU * iy as f64 / n as f64);
        }
    }
    out
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn unforced(nu: f64, drag: f64) -> FlowParams {
    FlowParams {
        nu,
        drag,
        forcing_amplitude: 0.0,
        forcing_wavenumber: 4,
    }
}

/// A random band-limited start on a small grid.
fn random_start(n: usize, flow: FlowParams, peak: f64, seed: u64) -> (Kolmogorov, Vec<C64>) {
    let sys = Kolmogorov::new(KolmogorovConfig {
        grid: n,
        flow,
        peak_wavenumber: peak,
        max_velocity: 1.0,
        coarsen: 1,
        ..KolmogorovConfig::default()
    })
    .unwrap();
    let mut ws = sys.solver().workspace();
    let w = sys.random_vorticity(&mut StdRng::seed_from_u64(seed), &mut ws);
    (sys, w)
}

/// A single Fourier mode is an exact solution without forcing (u·∇ω = 0): its amplitude decays
/// as exp(−(ν|k|² + α) t).
#[test]
fn single_mode_decays_exactly() {
    let n = 32;
    for (nu, drag) in [(0.01, 0.0), (0.05, 0.1)] {
        let s = NavierStokes2d::new(n, unforced(nu, drag)).unwrap();
        let mut ws = s.workspace();
        let w0 = field(n, |x, y| {
            (3.0 * x + 2.0 * y).cos() + 0.5 * (3.0 * x + 2.0 * y).sin()
        });
        let mut w = s.to_spectral(&w0, &mut ws);
        let t = 2.0;
        s.advance_steps(&mut w, t, 200, &mut ws);
        let got = s.to_physical(&w, &mut ws);
        let decay = (-(nu * 13.0 + drag) * t).exp();
        let want: Vec<f64> = w0.iter().map(|v| v * decay).collect();
        let rel = max_abs_diff(&got, &want) / max_abs(&want);
        assert!(rel < 1e-6, "ν = {nu}, α = {drag}: relative error {rel:.2e}");
    }
}

/// At low Re the laminar Kolmogorov state ω = −4 cos(4y)/(16ν + α) attracts a perturbed start.
#[test]
fn laminar_kolmogorov_state_is_reached() {
    let n = 32;
    let flow = FlowParams {
        nu: 0.1,
        drag: 0.1,
        forcing_amplitude: 1.0,
        forcing_wavenumber: 4,
    };
    let (sys, noise) = random_start(n, flow, 2.0, 1);
    let s = sys.solver();
    let mut ws = s.workspace();
    let laminar = field(n, |_, y| -4.0 * (4.0 * y).cos() / (16.0 * 0.1 + 0.1));
    let mut w = s.to_spectral(&laminar, &mut ws);
    for (a, b) in w.iter_mut().zip(&noise) {
        *a += *b; // perturbation with max velocity 1
    }
    for _ in 0..80 {
        s.advance(&mut w, 1.0, 0.5, &mut ws);
    }
    let got = s.to_physical(&w, &mut ws);
    let rel = max_abs_diff(&got, &laminar) / max_abs(&laminar);
    assert!(rel < 1e-4, "distance to the laminar state {rel:.2e}");
}

/// Inviscid, unforced, well resolved: energy and enstrophy are conserved (the 2/3-rule
/// truncation conserves both; only the time integration errs).
#[test]
fn inviscid_flow_conserves_energy_and_enstrophy() {
    let (sys, mut w) = random_start(64, unforced(0.0, 0.0), 3.0, 2);
    let s = sys.solver();
    let mut ws = s.workspace();
    let (e0, z0) = s.energy_enstrophy(&w, &mut ws);
    for _ in 0..5 {
        s.advance(&mut w, 0.1, 0.2, &mut ws);
    }
    let (e1, z1) = s.energy_enstrophy(&w, &mut ws);
    assert!(((e1 - e0) / e0).abs() < 1e-6, "energy {e0} → {e1}");
    assert!(((z1 - z0) / z0).abs() < 1e-6, "enstrophy {z0} → {z1}");
}

fn convergence_orders(flow: FlowParams) -> Vec<f64> {
    let (sys, w0) = random_start(32, flow, 3.0, 3);
    let s = sys.solver();
    let mut ws = s.workspace();
    let t = 0.5;
    let run = |steps: usize, ws: &mut _| {
        let mut w = w0.clone();
        s.advance_steps(&mut w, t, steps, ws);
        s.to_physical(&w, ws)
    };
    let reference = run(1024, &mut ws);
    eprintln!("flow {flow:?}");
    let errors: Vec<f64> = [8, 16, 32]
        .iter()
        .map(|&m| max_abs_diff(&run(m, &mut ws), &reference))
        .collect();
    let orders = errors.windows(2).map(|e| (e[0] / e[1]).log2()).collect();
    eprintln!("errors at 8, 16, 32 steps: {errors:?}; orders {orders:?}");
    orders
}

/// Crank–Nicolson makes the IMEX scheme second order in Δt when the linear part is active.
#[test]
fn imex_scheme_is_second_order() {
    let orders = convergence_orders(FlowParams {
        nu: 0.05,
        drag: 0.1,
        forcing_amplitude: 1.0,
        forcing_wavenumber: 4,
    });
    for p in &orders {
        assert!((1.8..2.3).contains(p), "observed orders {orders:?}");
    }
}

/// Without a linear part the low-storage Runge–Kutta scheme is fourth order.
#[test]
fn explicit_part_is_fourth_order() {
    let orders = convergence_orders(unforced(0.0, 0.0));
    for p in &orders {
        assert!((3.7..4.5).contains(p), "observed orders {orders:?}");
    }
}

/// The velocity derived from the stream function is divergence-free to round-off.
#[test]
fn velocity_is_divergence_free() {
    let (sys, w) = random_start(32, FlowParams::kolmogorov(), 4.0, 4);
    let s = sys.solver();
    let g = s.grid();
    let mut ws = s.workspace();
    let (u, v) = s.velocity(&w, &mut ws);
    let mut scratch = g.scratch();
    let mut uh = vec![C64::default(); g.spectral_len()];
    let mut vh = uh.clone();
    g.forward(&u, &mut uh, &mut scratch);
    g.forward(&v, &mut vh, &mut scratch);
    let n = g.n();
    let div: Vec<C64> = (0..g.spectral_len())
        .map(|i| C64::new(0.0, g.kx[i / n]) * uh[i] + C64::new(0.0, g.ky[i % n]) * vh[i])
        .collect();
    let mut d = vec![0.0; n * n];
    g.inverse(&div, &mut d, &mut scratch);
    assert!(
        max_abs(&d) < 1e-12 * max_abs(&u).max(1.0) * n as f64,
        "divergence {}",
        max_abs(&d)
    );
}

/// Coarse vorticity by central differences approximates ∂_x v − ∂_y u of a smooth field.
#[test]
fn coarse_vorticity_by_central_differences() {
    let n = 64;
    let u = field(n, |_, y| y.sin());
    let v = field(n, |x, _| (2.0 * x).cos());
    let w = sda::systems::kolmogorov::vorticity_from_velocity(&u, &v, n);
    let want = field(n, |x, y| -2.0 * (2.0 * x).sin() - y.cos());
    let h = TAU / n as f64;
    assert!(max_abs_diff(&w, &want) < 2.0 * h * h * 4.0 / 6.0 * 2.0);
}

/// Parameters that cannot simulate are refused by name when the solver is built.
#[test]
fn bad_flow_parameters_are_clear_errors() {
    let flow = FlowParams::kolmogorov();
    for (params, needle) in [
        (
            FlowParams {
                nu: f64::NAN,
                ..flow
            },
            "ν = NaN",
        ),
        (FlowParams { drag: -0.1, ..flow }, "α = -0.1"),
        (
            FlowParams {
                forcing_amplitude: f64::INFINITY,
                ..flow
            },
            "forcing amplitude must be finite, got inf",
        ),
    ] {
        let err = NavierStokes2d::new(16, params).err().unwrap();
        assert!(err.to_string().contains(needle), "{err}");
    }
    for (cfg, needle) in [
        (
            KolmogorovConfig {
                snapshot_dt: f64::NAN,
                ..KolmogorovConfig::default()
            },
            "snapshot_dt must be positive, got NaN",
        ),
        (
            KolmogorovConfig {
                grid: 128,
                coarsen: 3,
                ..KolmogorovConfig::default()
            },
            "coarsening factor 3 must divide the grid size 128",
        ),
    ] {
        let err = Kolmogorov::new(cfg).err().unwrap();
        assert!(err.to_string().contains(needle), "{err}");
    }
}
