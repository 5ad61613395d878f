//! Reverse-diffusion samplers (paper §3.3, **Algorithm 4**) and the one driver that owns the
//! sampling loop.
//!
//! A [`Sampler`] defines only how one reverse step `t → t'` is taken; [`sample`] owns the loop,
//! the time grid, seeding, the progress bar and the diagnostics, so every sampler gets them.

use std::time::Instant;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::backend::{to_host, NoiseSource};
use crate::progress::Progress;
use crate::schedule::NoiseSchedule;
use crate::score::EpsilonModel;
use crate::{Error, Result, TrajectoryShape};

/// One reverse step of a diffusion sampler in ε-space.
pub trait Sampler<B: Backend> {
    /// Maps `x(t)` to `x(t')`, `t' < t`, using the noise model `eps`.
    fn step(
        &self,
        eps: &dyn EpsilonModel<B>,
        x: Tensor<B, 3>,
        t: f64,
        t_next: f64,
        noise: &mut NoiseSource,
    ) -> Tensor<B, 3>;
    /// Number of ε evaluations per step (1 + C for predictor–corrector).
    fn evaluations_per_step(&self) -> usize;
    /// One-line description for tables.
    fn describe(&self) -> String;
}

/// Predictor–corrector sampling (**Algorithm 4**).
///
/// Predictor (exponential integrator, DDIM for VP; paper eq. 16): with `r = μ(t')/μ(t)`,
/// `x ← r x + (σ(t') − r σ(t)) ε(x, t)`.
///
/// Corrector, `C` times at `t'` (Langevin Monte Carlo, paper eq. 17, in ε-space): `z ~ N(0, I)`,
/// `ε = ε(x, t')`, `δ = τ / mean(ε²)` per trajectory, `x ← x − σ(t') (δ ε + √(2δ) z)` —
/// i.e. `x ← x + δ' s + √(2δ') z` with `δ' = σ(t')² δ`.
///
/// With `C = 0` this is deterministic DDIM. A Langevin corrector with finite τ is biased where
/// the posterior is much narrower than σ(t') (tightly observed coordinates); this is measured by
/// the oracle table, not hidden.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PredictorCorrector {
    /// Number of Langevin corrections C per step.
    #[serde(default)]
    pub corrections: usize,
    /// Langevin step scale τ (0.25 for Lorenz, 0.5 for Kolmogorov in the paper).
    #[serde(default = "default_tau")]
    pub tau: f64,
}

fn default_tau() -> f64 {
    0.25
}

impl PredictorCorrector {
    /// `C` corrections of scale τ > 0 (τ is unused when C = 0).
    pub fn new(corrections: usize, tau: f64) -> Result<Self> {
        if corrections > 0 && !(tau.is_finite() && tau > 0.0) {
            return Err(Error::Invalid(format!(
                "corrector scale tau must be positive, got {tau}"
            )));
        }
        Ok(Self { corrections, tau })
    }

    /// Plain DDIM: the predictor alone (C = 0).
    pub fn ddim() -> Self {
        Self {
            corrections: 0,
            tau: default_tau(),
        }
    }

    /// The predictor's coefficients `(r, c)` of the step `t → t'`:
    /// `x(t') = r x(t) + c ε(x(t), t)`, `r = μ(t')/μ(t)`, `c = σ(t') − r σ(t)`.
    pub fn predictor_coefficients(schedule: &dyn NoiseSchedule, t: f64, t_next: f64) -> (f64, f64) {
        let r = schedule.mu(t_next) / schedule.mu(t);
        (r, schedule.sigma(t_next) - r * schedule.sigma(t))
    }
}

impl<B: Backend> Sampler<B> for PredictorCorrector {
    fn step(
        &self,
        eps: &dyn EpsilonModel<B>,
        x: Tensor<B, 3>,
        t: f64,
        t_next: f64,
        noise: &mut NoiseSource,
    ) -> Tensor<B, 3> {
        let schedule = eps.schedule();
        let (r, coef) = Self::predictor_coefficients(schedule, t, t_next);
        let e = eps.epsilon(x.clone(), t);
        let mut x = x * r + e * coef;
        let sigma = schedule.sigma(t_next);
        for _ in 0..self.corrections {
            let [n, l, d] = x.dims();
            let z = noise.normal::<B, 3>([n, l, d], &x.device());
            let e = eps.epsilon(x.clone(), t_next);
            let mean_sq = e.clone().powi_scalar(2).mean_dim(2).mean_dim(1);
            let delta = mean_sq.recip() * self.tau;
            let step = e * delta.clone() + z * (delta * 2.0).sqrt();
            x = x - step * sigma;
        }
        x
    }

    fn evaluations_per_step(&self) -> usize {
        1 + self.corrections
    }

    fn describe(&self) -> String {
        if self.corrections == 0 {
            "DDIM (C=0)".into()
        } else {
            format!("PC (C={}, tau={})", self.corrections, self.tau)
        }
    }
}

/// The time grid of [`sample`]: `steps` steps `(t, t')` between evenly spaced times
/// `1 = t_0 > t_1 > … > t_S = 0`.
pub fn time_grid(steps: usize) -> impl Iterator<Item = (f64, f64)> {
    (0..steps).map(move |s| {
        (
            1.0 - s as f64 / steps as f64,
            1.0 - (s + 1) as f64 / steps as f64,
        )
    })
}

/// The most network evaluations one sampling run may take per sample (steps × the sampler's
/// evaluations per step): beyond, a run would take days (e.g. `corrections = 1e12`).
pub const MAX_EVALUATIONS: usize = 1_000_000_000;

/// Steps between two checks that the samples are finite (each reads a value back from the
/// device).
const DIVERGENCE_CHECK: usize = 16;

/// Options of one sampling run.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Number of trajectories N.
    pub samples: usize,
    /// Number of reverse steps S (evenly spaced times 1 = t_0 > … > t_S = 0).
    pub steps: usize,
    /// Seed of the initial noise and of every corrector draw.
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            samples: 1,
            steps: 256,
            seed: 0,
            progress: false,
        }
    }
}

/// What a sampling run did.
#[derive(Debug, Clone)]
pub struct SampleReport {
    /// ε evaluations (network calls on the whole batch).
    pub evaluations: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per-step diagnostics `(t, μ(t), σ(t))`.
    pub steps: Vec<(f64, f64, f64)>,
}

/// Draws `opts.samples` trajectories of `shape` by integrating the reverse diffusion of `eps`
/// from `x(1) ~ N(0, I)` to `t = 0` with `sampler`. Errors on bad options, on a shape the model
/// does not support, and when the result is not finite (divergence).
pub fn sample<B: Backend>(
    eps: &dyn EpsilonModel<B>,
    sampler: &dyn Sampler<B>,
    shape: TrajectoryShape,
    opts: &SampleOptions,
    device: &B::Device,
) -> Result<(Tensor<B, 3>, SampleReport)> {
    if opts.samples == 0 || opts.steps == 0 {
        return Err(Error::Invalid(format!(
            "sampling needs samples ≥ 1 and steps ≥ 1 (got {} and {})",
            opts.samples, opts.steps
        )));
    }
    eps.check_shape(shape.len, shape.dim)?;
    // the state and a few tensors of its size (noise, ε, the guidance's gradient), in single
    // precision, and the per-step report
    let state = crate::resources::product(&[opts.samples, shape.len, shape.dim, 8 * 4]);
    let report = crate::resources::product(&[opts.steps, 24]);
    crate::resources::check_memory(
        &format!(
            "sampling --samples {} trajectories of {}×{} values in --steps {}",
            opts.samples, shape.len, shape.dim, opts.steps
        ),
        state.zip(report).and_then(|(a, b)| a.checked_add(b)),
    )?;
    let evaluations = opts
        .steps
        .checked_mul(sampler.evaluations_per_step())
        .filter(|&e| e <= MAX_EVALUATIONS)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--steps {} of {} ({} network evaluations each) exceed {MAX_EVALUATIONS} \
                 evaluations per sample; reduce the steps or the corrections",
                opts.steps,
                sampler.describe(),
                sampler.evaluations_per_step()
            ))
        })?;
    let start = Instant::now();
    let mut noise = NoiseSource::new(opts.seed);
    let mut x = noise.normal::<B, 3>([opts.samples, shape.len, shape.dim], device);
    let bar = Progress::new(
        opts.steps as u64,
        &sampler.describe(),
        "steps",
        "{msg} [{bar:30}] {pos}/{len} steps, ETA {eta}",
        opts.progress,
    );
    let schedule = eps.schedule();
    let mut steps = Vec::with_capacity(opts.steps);
    for (s, (t, t_next)) in time_grid(opts.steps).enumerate() {
        x = sampler.step(eps, x, t, t_next, &mut noise);
        steps.push((t_next, schedule.mu(t_next), schedule.sigma(t_next)));
        bar.inc(1);
        // a diverged run is named by the steps where it diverged; the check reads one value
        // back from the device, so only every DIVERGENCE_CHECK steps (and after the last)
        let step = s + 1;
        if step % DIVERGENCE_CHECK == 0 || step == opts.steps {
            let largest = to_host(x.clone().abs().max())[0];
            if !largest.is_finite() {
                bar.finish();
                return Err(Error::Numerical(format!(
                    "sampling with {} diverged between steps {} and {step} of {} (t = \
                     {t_next:.4}): the samples became non-finite",
                    sampler.describe(),
                    (step - 1) / DIVERGENCE_CHECK * DIVERGENCE_CHECK + 1,
                    opts.steps
                )));
            }
        }
    }
    bar.finish();
    Ok((
        x,
        SampleReport {
            evaluations,
            seconds: start.elapsed().as_secs_f64(),
            steps,
        },
    ))
}

/// Posterior trajectories of `prior` given `y`: the prior guided by `guidance` ([`Guided`](crate::guidance::Guided),
/// Algorithm 3) integrated by `sampler` (Algorithm 4), with the trajectories evaluated
/// `samples_per_piece` at a time on all cores ([`crate::score::chunked::Chunked`]; they are
/// independent, so the result does not depend on the piece size).
#[allow(clippy::too_many_arguments)]
pub fn sample_posterior<B: AutodiffBackend, E: EpsilonModel<B> + Sync>(
    prior: E,
    observation: &dyn crate::observe::ObservationModel<B>,
    y: &[f64],
    guidance: &dyn crate::guidance::Guidance<B>,
    sampler: &dyn Sampler<B>,
    opts: &SampleOptions,
    samples_per_piece: usize,
    device: &B::Device,
) -> Result<(Tensor<B, 3>, SampleReport)> {
    let shape = observation.trajectory_shape();
    let guided =
        crate::guidance::Guided::<B, _, _, _>::new(prior, observation, y, guidance, device)?;
    let chunked = crate::score::chunked::Chunked::new(guided, samples_per_piece);
    sample::<B>(&chunked, sampler, shape, opts, device)
}
