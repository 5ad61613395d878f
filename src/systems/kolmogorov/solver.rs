//! Pseudo-spectral solver of 2-D incompressible Navier–Stokes in vorticity form on the periodic
//! square [0, 2π)²:
//!
//! `∂_t ω + u·∇ω = ν ∇²ω − α ω + f_ω`,  `ψ̂ = ω̂ / |k|²` (k = 0 → 0),  `u = ∂_y ψ`, `v = −∂_x ψ`,
//!
//! with the Kolmogorov forcing `f = (A sin(k_f y), 0)` on velocity, i.e. `f_ω = −A k_f cos(k_f y)`.
//! Advection is evaluated in physical space (5 FFTs) and dealiased with the 2/3 rule. Time
//! stepping is IMEX: the linear part `L̂ = −ν|k|² − α` implicit (Crank–Nicolson), the advection
//! and forcing explicit (low-storage RK4), with the Carpenter–Kennedy coefficients of jax-cfd's
//! `crank_nicolson_rk4`: per stage `h ← N(ω) + β_s h`, `μ = ½ Δt (α_{s+1} − α_s)`,
//! `ω̂ ← (ω̂ + γ_s Δt h + μ L̂ ω̂) / (1 − μ L̂)`. Second order overall (Crank–Nicolson), fourth
//! order when the linear part vanishes.

use super::spectral::{FftScratch, SpectralGrid, C64};
use crate::{Error, Result};

const ALPHA: [f64; 6] = [
    0.0,
    0.1496590219993,
    0.3704009573644,
    0.6222557631345,
    0.9582821306748,
    1.0,
];
const BETA: [f64; 5] = [
    0.0,
    -0.4178904745,
    -1.192151694643,
    -1.697784692471,
    -1.514183444257,
];
const GAMMA: [f64; 5] = [
    0.1496590219993,
    0.3792103129999,
    0.8229550293869,
    0.6994504559488,
    0.1530572479681,
];

/// Physical parameters of the flow.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowParams {
    /// Kinematic viscosity ν = 1/Re.
    pub nu: f64,
    /// Linear drag α on velocity (and so on vorticity).
    pub drag: f64,
    /// Forcing amplitude A of `(A sin(k_f y), 0)`; 0 for unforced flow.
    pub forcing_amplitude: f64,
    /// Forcing wavenumber k_f.
    pub forcing_wavenumber: usize,
}

impl FlowParams {
    /// The paper's Kolmogorov flow: Re = 1000, drag 0.1, forcing sin(4y).
    pub fn kolmogorov() -> Self {
        Self {
            nu: 1e-3,
            drag: 0.1,
            forcing_amplitude: 1.0,
            forcing_wavenumber: 4,
        }
    }
}

/// Buffers of one integration (allocated once, reused every step). One integration runs on one
/// thread: splitting its transforms over two threads measured slower here (the transforms are
/// memory-bound), so parallelism is over trajectories instead.
pub struct Workspace {
    fft: FftScratch,
    spec: Vec<C64>,
    nonlinear: Vec<C64>,
    h: Vec<C64>,
    u: Vec<f64>,
    v: Vec<f64>,
    wx: Vec<f64>,
    wy: Vec<f64>,
}

/// The solver: grid, parameters, the linear operator and the forcing, all precomputed.
pub struct NavierStokes2d {
    grid: SpectralGrid,
    params: FlowParams,
    linear: Vec<f64>,
    forcing_hat: Vec<C64>,
    /// Spectral factors of u, v, ∂_xω, ∂_yω from ω̂: `i k_y/|k|²`, `−i k_x/|k|²`, `i k_x`, `i k_y`.
    derivative: [Vec<C64>; 4],
}

impl NavierStokes2d {
    /// A solver on an n × n grid.
    pub fn new(n: usize, params: FlowParams) -> Result<Self> {
        if !(params.nu >= 0.0
            && params.drag >= 0.0
            && params.nu.is_finite()
            && params.drag.is_finite())
        {
            return Err(Error::Invalid(format!(
                "viscosity and drag must be ≥ 0, got ν = {} and α = {}",
                params.nu, params.drag
            )));
        }
        if !params.forcing_amplitude.is_finite() {
            return Err(Error::Invalid(format!(
                "forcing amplitude must be finite, got {}",
                params.forcing_amplitude
            )));
        }
        let grid = SpectralGrid::new(n)?;
        if params.forcing_amplitude != 0.0 && 3 * params.forcing_wavenumber >= n {
            return Err(Error::Invalid(format!(
                "forcing wavenumber {} is not resolved on a {n}² grid",
                params.forcing_wavenumber
            )));
        }
        let linear = grid
            .k2
            .iter()
            .map(|k2| -params.nu * k2 - params.drag)
            .collect();
        let kf = params.forcing_wavenumber as f64;
        let mut f = vec![0.0; n * n];
        for iy in 0..n {
            let y = 2.0 * std::f64::consts::PI * iy as f64 / n as f64;
            let value = -params.forcing_amplitude * kf * (kf * y).cos();
            f[iy * n..(iy + 1) * n].fill(value);
        }
        let mut forcing_hat = vec![C64::default(); grid.spectral_len()];
        let mut ws = grid.scratch();
        grid.forward(&f, &mut forcing_hat, &mut ws);
        let n_ = grid.n();
        let factor = |f: &dyn Fn(f64, f64, f64) -> C64| -> Vec<C64> {
            (0..grid.spectral_len())
                .map(|i| f(grid.kx[i / n_], grid.ky[i % n_], grid.k2[i]))
                .collect()
        };
        let derivative = [
            factor(&|_, ky, k2| C64::new(0.0, ky * inv(k2))),
            factor(&|kx, _, k2| C64::new(0.0, -kx * inv(k2))),
            factor(&|kx, _, _| C64::new(0.0, kx)),
            factor(&|_, ky, _| C64::new(0.0, ky)),
        ];
        Ok(Self {
            grid,
            params,
            linear,
            forcing_hat,
            derivative,
        })
    }

    /// The spectral grid.
    pub fn grid(&self) -> &SpectralGrid {
        &self.grid
    }

    /// The flow parameters.
    pub fn params(&self) -> FlowParams {
        self.params
    }

    /// Buffers for [`Self::step`] and friends.
    pub fn workspace(&self) -> Workspace {
        let (p, s) = (self.grid.n() * self.grid.n(), self.grid.spectral_len());
        Workspace {
            fft: self.grid.scratch(),
            spec: vec![C64::default(); s],
            nonlinear: vec![C64::default(); s],
            h: vec![C64::default(); s],
            u: vec![0.0; p],
            v: vec![0.0; p],
            wx: vec![0.0; p],
            wy: vec![0.0; p],
        }
    }

    /// Spectral vorticity of a physical field.
    pub fn to_spectral(&self, omega: &[f64], ws: &mut Workspace) -> Vec<C64> {
        let mut out = vec![C64::default(); self.grid.spectral_len()];
        self.grid.forward(omega, &mut out, &mut ws.fft);
        out
    }

    /// Physical vorticity of a spectral field.
    pub fn to_physical(&self, omega_hat: &[C64], ws: &mut Workspace) -> Vec<f64> {
        let n = self.grid.n();
        let mut out = vec![0.0; n * n];
        self.grid.inverse(omega_hat, &mut out, &mut ws.fft);
        out
    }

    /// Velocity (u, v) in physical space: `û = i k_y ψ̂`, `v̂ = −i k_x ψ̂`, `ψ̂ = ω̂/|k|²`.
    pub fn velocity(&self, omega_hat: &[C64], ws: &mut Workspace) -> (Vec<f64>, Vec<f64>) {
        let Workspace {
            fft, spec, u, v, ..
        } = ws;
        let all = self.grid.kx.len();
        for (out, factor) in [
            (&mut *u, &self.derivative[0]),
            (&mut *v, &self.derivative[1]),
        ] {
            for ((s, f), w) in spec.iter_mut().zip(factor).zip(omega_hat) {
                *s = f * w;
            }
            self.grid.inverse_band_in_place(spec, out, fft, all);
        }
        (u.clone(), v.clone())
    }

    /// Explicit terms `N̂ = −P(FFT(u ∂_xω + v ∂_yω)) + f̂_ω`, P the 2/3-rule mask.
    fn explicit(&self, omega_hat: &[C64], ws: &mut Workspace) {
        let Workspace {
            fft,
            spec,
            nonlinear,
            u,
            v,
            wx,
            wy,
            ..
        } = ws;
        let g = &self.grid;
        let b = g.band();
        let [fu, fv, fwx, fwy] = &self.derivative;
        for (out, factor) in [
            (&mut *u, fu),
            (&mut *v, fv),
            (&mut *wx, fwx),
            (&mut *wy, fwy),
        ] {
            let len = b * g.n();
            for ((s, f), w) in spec[..len]
                .iter_mut()
                .zip(&factor[..len])
                .zip(&omega_hat[..len])
            {
                *s = f * w;
            }
            g.inverse_band_in_place(spec, out, fft, b);
        }
        for i in 0..u.len() {
            wx[i] = u[i] * wx[i] + v[i] * wy[i];
        }
        g.forward_band(wx, nonlinear, fft, b);
        for ((nl, m), f) in nonlinear.iter_mut().zip(&g.dealias).zip(&self.forcing_hat) {
            *nl = -*nl * *m + *f;
        }
    }

    /// Projects a spectral field onto the dealiased modes (the 2/3 rule); the stepping
    /// functions assume their input is dealiased and keep it so.
    pub fn dealias(&self, omega_hat: &mut [C64]) {
        for (w, m) in omega_hat.iter_mut().zip(&self.grid.dealias) {
            *w *= m;
        }
    }

    /// One IMEX Crank–Nicolson / low-storage RK4 step of size `dt`, in place (input dealiased).
    pub fn step(&self, omega_hat: &mut [C64], dt: f64, ws: &mut Workspace) {
        let _ftz = FlushSubnormals::new();
        ws.h.iter_mut().for_each(|h| *h = C64::default());
        for s in 0..5 {
            self.explicit(omega_hat, ws);
            let mu = 0.5 * dt * (ALPHA[s + 1] - ALPHA[s]);
            let gdt = GAMMA[s] * dt;
            for (((w, h), nl), l) in omega_hat
                .iter_mut()
                .zip(ws.h.iter_mut())
                .zip(&ws.nonlinear)
                .zip(&self.linear)
            {
                *h = *nl + *h * BETA[s];
                *w = (*w + *h * gdt + *w * (mu * l)) / (1.0 - mu * l);
            }
        }
    }

    /// The CFL step `Δt = cfl · Δx / u_max` for the current field, `u_max = max(|u|, |v|)`.
    pub fn cfl_dt(&self, omega_hat: &[C64], cfl: f64, ws: &mut Workspace) -> f64 {
        let (u, v) = self.velocity(omega_hat, ws);
        let umax = u
            .iter()
            .chain(&v)
            .fold(0.0f64, |m, x| m.max(x.abs()))
            .max(1e-6);
        cfl * 2.0 * std::f64::consts::PI / self.grid.n() as f64 / umax
    }

    /// Advances by `duration` in a whole number of equal steps no longer than the CFL step
    /// (computed at the start); returns the number of steps taken.
    pub fn advance(
        &self,
        omega_hat: &mut [C64],
        duration: f64,
        cfl: f64,
        ws: &mut Workspace,
    ) -> usize {
        self.dealias(omega_hat);
        let dt_max = self.cfl_dt(omega_hat, cfl, ws);
        let steps = (duration / dt_max).ceil().max(1.0) as usize;
        self.advance_steps(omega_hat, duration, steps, ws);
        steps
    }

    /// Advances by `duration` in exactly `steps` equal steps.
    pub fn advance_steps(
        &self,
        omega_hat: &mut [C64],
        duration: f64,
        steps: usize,
        ws: &mut Workspace,
    ) {
        self.dealias(omega_hat);
        let dt = duration / steps as f64;
        for _ in 0..steps {
            self.step(omega_hat, dt, ws);
        }
    }

    /// Domain-averaged kinetic energy `½⟨u² + v²⟩` and enstrophy `½⟨ω²⟩`.
    pub fn energy_enstrophy(&self, omega_hat: &[C64], ws: &mut Workspace) -> (f64, f64) {
        let (u, v) = self.velocity(omega_hat, ws);
        let w = self.to_physical(omega_hat, ws);
        let p = w.len() as f64;
        let e = u.iter().zip(&v).map(|(a, b)| a * a + b * b).sum::<f64>() / (2.0 * p);
        let z = w.iter().map(|a| a * a).sum::<f64>() / (2.0 * p);
        (e, z)
    }

    /// Shell-summed energy spectrum `E(k) = Σ_{|k'| ∈ [k−½, k+½)} ½|û(k')|²/n⁴`, k = 0..n/2,
    /// with the real-FFT half plane counted twice where it stands for two modes.
    pub fn energy_spectrum(&self, omega_hat: &[C64]) -> Vec<f64> {
        let g = &self.grid;
        let n = g.n();
        let mut e = vec![0.0; n / 2 + 1];
        let norm = (n * n) as f64;
        for a in 0..g.kx.len() {
            let mult = if a == 0 || a == n / 2 { 1.0 } else { 2.0 };
            for b in 0..n {
                let i = a * n + b;
                let k = g.k2[i].sqrt();
                let shell = k.round() as usize;
                if shell < e.len() && g.k2[i] > 0.0 {
                    let psi2 = (omega_hat[i] / norm).norm_sqr() / g.k2[i];
                    e[shell] += mult * 0.5 * psi2;
                }
            }
        }
        e
    }
}

/// Flushes subnormal floats to zero (x86-64 MXCSR FTZ and DAZ bits) while alive, restoring
/// the previous mode on drop. Band-limited fields carry spectral amplitudes that decay over
/// hundreds of orders of magnitude; their products underflow into subnormal numbers, which
/// x86 processors handle about a hundred times slower. Values below 2.2e-308 do not matter
/// to the flow.
struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushSubnormals {
    #[allow(deprecated)]
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            // SAFETY: reading and writing MXCSR only changes how this thread rounds
            // subnormal results; it is restored on drop.
            unsafe {
                let saved = _mm_getcsr();
                _mm_setcsr(saved | 0x8040);
                Self { saved }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushSubnormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the mode saved in `new`.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        }
    }
}

fn inv(k2: f64) -> f64 {
    if k2 > 0.0 {
        1.0 / k2
    } else {
        0.0
    }
}
