//! Kolmogorov flow (paper §4.2): 2-D turbulence on the torus with forcing `(sin 4y, 0)`, drag
//! 0.1 and Re = 1000, simulated by our pseudo-spectral solver ([`solver`]). States for learning
//! are snapshots every Δ = 0.2 of the velocity `(u, v)`, coarsened by mean pooling.

pub mod solver;
pub mod spectral;

use rand::{rngs::StdRng, RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use self::solver::{FlowParams, NavierStokes2d, Workspace};
use self::spectral::C64;
use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// Configuration of the system and its snapshots (unknown keys are rejected).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KolmogorovConfig {
    /// Solver grid size n (n × n, even).
    pub grid: usize,
    /// Physical parameters.
    pub flow: FlowParams,
    /// Time between snapshots Δ.
    pub snapshot_dt: f64,
    /// CFL number: `Δt ≤ cfl · Δx / u_max`.
    pub cfl: f64,
    /// Peak wavenumber of random initial velocity fields.
    pub peak_wavenumber: f64,
    /// Maximum velocity of random initial fields.
    pub max_velocity: f64,
    /// Mean-pooling factor from the solver grid to the learning grid.
    pub coarsen: usize,
}

impl Default for KolmogorovConfig {
    fn default() -> Self {
        Self {
            grid: 256,
            flow: FlowParams::kolmogorov(),
            snapshot_dt: 0.2,
            cfl: 0.5,
            peak_wavenumber: 4.0,
            max_velocity: 3.0,
            coarsen: 4,
        }
    }
}

/// The Kolmogorov-flow system. As a [`Dynamics`] its state is the vorticity on the solver grid
/// (`[n, n]`, row-major `[iy][ix]`) and one step is one snapshot interval Δ (deterministic).
pub struct Kolmogorov {
    cfg: KolmogorovConfig,
    solver: NavierStokes2d,
}

impl Kolmogorov {
    /// Builds the solver; errors on an odd grid, a pooling factor that does not divide it, or
    /// non-positive Δ, CFL or velocity.
    pub fn new(cfg: KolmogorovConfig) -> Result<Self> {
        if cfg.coarsen == 0 || !cfg.grid.is_multiple_of(cfg.coarsen) {
            return Err(Error::Invalid(format!(
                "coarsening factor {} must divide the grid size {}",
                cfg.coarsen, cfg.grid
            )));
        }
        for (name, v) in [
            ("snapshot_dt", cfg.snapshot_dt),
            ("cfl", cfg.cfl),
            ("max_velocity", cfg.max_velocity),
            ("peak_wavenumber", cfg.peak_wavenumber),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Invalid(format!("{name} must be positive, got {v}")));
            }
        }
        Ok(Self {
            solver: NavierStokes2d::new(cfg.grid, cfg.flow)?,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KolmogorovConfig {
        &self.cfg
    }

    /// The solver.
    pub fn solver(&self) -> &NavierStokes2d {
        &self.solver
    }

    /// Side of the coarse (learning) grid, n / coarsen.
    pub fn coarse_grid(&self) -> usize {
        self.cfg.grid / self.cfg.coarsen
    }

    /// A random band-limited initial vorticity (spectral): white noise filtered so the velocity
    /// amplitude `∝ |k| exp(−|k|²/(2 k₀²))` peaks at k₀ = `peak_wavenumber`, dealiased, zero
    /// mean, scaled so that `max(|u|, |v|) = max_velocity`.
    pub fn random_vorticity(&self, rng: &mut dyn RngCore, ws: &mut Workspace) -> Vec<C64> {
        let n = self.cfg.grid;
        let noise: Vec<f64> = (0..n * n).map(|_| StandardNormal.sample(rng)).collect();
        let mut w = self.solver.to_spectral(&noise, ws);
        let g = self.solver.grid();
        let k0 = self.cfg.peak_wavenumber;
        for ((w, k2), m) in w.iter_mut().zip(&g.k2).zip(&g.dealias) {
            *w *= k2 * (-k2 / (2.0 * k0 * k0)).exp() * m;
        }
        let (u, v) = self.solver.velocity(&w, ws);
        let umax = u
            .iter()
            .chain(&v)
            .fold(0.0f64, |a, x| a.max(x.abs()))
            .max(1e-12);
        let scale = self.cfg.max_velocity / umax;
        w.iter_mut().for_each(|x| *x *= scale);
        w
    }

    /// Velocity `(u, v)` mean-pooled by `coarsen`: `[2, n_c, n_c]` flattened.
    pub fn coarse_velocity(&self, omega_hat: &[C64], ws: &mut Workspace) -> Vec<f64> {
        let (u, v) = self.solver.velocity(omega_hat, ws);
        let mut out = mean_pool(&u, self.cfg.grid, self.cfg.coarsen);
        out.extend(mean_pool(&v, self.cfg.grid, self.cfg.coarsen));
        out
    }

    /// One trajectory from the seeded random start: `burn_in` discarded snapshots, then `keep`
    /// snapshots of coarse velocity, `[keep, 2, n_c, n_c]` flattened.
    pub fn simulate(&self, seed: u64, burn_in: usize, keep: usize) -> Vec<f64> {
        self.stored_trajectory(keep, burn_in, &mut StdRng::seed_from_u64(seed))
    }
}

impl Dynamics for Kolmogorov {
    fn stored_shape(&self) -> Vec<usize> {
        let nc = self.coarse_grid();
        vec![2, nc, nc]
    }
    /// From a random band-limited start ([`Kolmogorov::random_vorticity`]), `burn_in`
    /// discarded snapshots, then `keep` snapshots of coarse velocity.
    fn stored_trajectory(&self, keep: usize, burn_in: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        let mut ws = self.solver.workspace();
        let mut w = self.random_vorticity(rng, &mut ws);
        for _ in 0..burn_in {
            self.solver
                .advance(&mut w, self.cfg.snapshot_dt, self.cfg.cfl, &mut ws);
        }
        let nc = self.coarse_grid();
        let mut out = Vec::with_capacity(keep * 2 * nc * nc);
        for i in 0..keep {
            if i > 0 {
                self.solver
                    .advance(&mut w, self.cfg.snapshot_dt, self.cfg.cfl, &mut ws);
            }
            out.extend(self.coarse_velocity(&w, &mut ws));
        }
        out
    }
    fn parameters(&self) -> Option<serde_json::Value> {
        Some(serde_json::to_value(&self.cfg).expect("the configuration serialises"))
    }
    fn state_info(&self) -> crate::dynamics::StateInfo {
        let nc = self.coarse_grid();
        crate::dynamics::StateInfo {
            variables: vec!["u".into(), "v".into()],
            units: format!(
                "nondimensional velocity (x, y components) on a {nc}×{nc} grid of the periodic \
                 domain [0, 2π)², row-major [iy][ix]"
            ),
            dt: Some(self.cfg.snapshot_dt),
        }
    }
    fn name(&self) -> String {
        format!("kolmogorov({}²)", self.cfg.grid)
    }
    fn state_shape(&self) -> Vec<usize> {
        vec![self.cfg.grid, self.cfg.grid]
    }
    fn sample_initial(&self, rng: &mut dyn RngCore) -> Vec<f64> {
        let mut ws = self.solver.workspace();
        let w = self.random_vorticity(rng, &mut ws);
        self.solver.to_physical(&w, &mut ws)
    }
    fn step(&self, x: &[f64], _rng: &mut dyn RngCore) -> Vec<f64> {
        let mut ws = self.solver.workspace();
        let mut w = self.solver.to_spectral(x, &mut ws);
        self.solver
            .advance(&mut w, self.cfg.snapshot_dt, self.cfg.cfl, &mut ws);
        self.solver.to_physical(&w, &mut ws)
    }
}

/// Mean pooling of an n × n field by f × f blocks → (n/f) × (n/f).
pub fn mean_pool(field: &[f64], n: usize, f: usize) -> Vec<f64> {
    let m = n / f;
    let mut out = vec![0.0; m * m];
    for iy in 0..n {
        for ix in 0..n {
            out[(iy / f) * m + ix / f] += field[iy * n + ix];
        }
    }
    let s = 1.0 / (f * f) as f64;
    out.iter_mut().for_each(|v| *v *= s);
    out
}

/// Vorticity `ω = ∂_x v − ∂_y u` of an n × n velocity field on [0, 2π)² by circular central
/// differences, in physical units (the figures' vorticity). The observation operator
/// [`crate::observe::field::FieldOp::Vorticity`] is this times the grid spacing `2π / n`.
pub fn vorticity_from_velocity(u: &[f64], v: &[f64], n: usize) -> Vec<f64> {
    let h2 = 2.0 * (2.0 * std::f64::consts::PI / n as f64);
    let mut w = vec![0.0; n * n];
    for iy in 0..n {
        let (yp, ym) = ((iy + 1) % n, (iy + n - 1) % n);
        for ix in 0..n {
            let (xp, xm) = ((ix + 1) % n, (ix + n - 1) % n);
            w[iy * n + ix] =
                (v[iy * n + xp] - v[iy * n + xm]) / h2 - (u[yp * n + ix] - u[ym * n + ix]) / h2;
        }
    }
    w
}

inventory::submit! {
    crate::registry::SystemPlugin {
        name: "kolmogorov",
        description: "Kolmogorov flow (paper 4.2), pseudo-spectral, Re 1000; datasets store the coarse velocity [2, grid/coarsen, grid/coarsen] every snapshot_dt: grid, coarsen, snapshot_dt, cfl, peak_wavenumber, max_velocity, flow (defaults: paper)",
        build: |p| {
            let cfg: KolmogorovConfig = crate::registry::params(p)?;
            Ok(Box::new(Kolmogorov::new(cfg)?))
        },
    }
}
