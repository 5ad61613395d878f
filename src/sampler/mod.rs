//! Reverse-diffusion samplers (paper §3.3, **Algorithm 4**) and the one driver that owns the
//! sampling loop.
//!
//! A [`Sampler`] defines only how one reverse step `t → t'` is taken; [`sample`] owns the loop,
//! the time grid ([`TimeGrid`]), seeding, the progress bar, the cost accounting and the
//! diagnostics, so every sampler gets them. Built in: the paper's predictor–corrector with its
//! Langevin corrector, the diagonal (calibrated) one or the re-noising one
//! (`predictor_corrector.rs`), DDIM/DDPM (`ddim.rs`) and Heun's second-order solver (`heun.rs`).

pub mod ddim;
pub mod grid;
pub mod heun;
pub mod predictor_corrector;

pub use ddim::Ddim;
pub use grid::TimeGrid;
pub use heun::Heun;
pub use predictor_corrector::{Corrector, PredictorCorrector};

use std::time::Instant;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::backend::{to_host, NoiseSource};
use crate::progress::Progress;
use crate::score::{EpsilonModel, Passes};
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
    /// The fewest trajectories per batch the sampler works with (1 by default; a step that
    /// estimates something from the batch, as the diagonal corrector, needs more).
    fn min_samples(&self) -> usize {
        1
    }
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
    /// Number of reverse steps S (times 1 = t_0 > … > t_S = 0 spaced by `grid`).
    pub steps: usize,
    /// How the steps are spaced in t.
    pub grid: TimeGrid,
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
            grid: TimeGrid::Uniform,
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
    /// Network passes, summed over the trajectories (a guided ε counts its forwards and VJPs;
    /// an unguided one a forward per trajectory and evaluation).
    pub passes: Passes,
    /// Number of trajectories drawn.
    pub samples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per-step diagnostics `(t, μ(t), σ(t))`.
    pub steps: Vec<(f64, f64, f64)>,
}

impl SampleReport {
    /// Network forwards and VJPs per sample.
    pub fn passes_per_sample(&self) -> (f64, f64) {
        let n = self.samples.max(1) as f64;
        (self.passes.forwards as f64 / n, self.passes.vjps as f64 / n)
    }
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
    if opts.samples < sampler.min_samples() {
        return Err(Error::Invalid(format!(
            "{} estimates from the batch and needs at least {} samples, got --samples {}",
            sampler.describe(),
            sampler.min_samples(),
            opts.samples
        )));
    }
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
    let before = eps.passes();
    let mut steps = Vec::with_capacity(opts.steps);
    for (s, (t, t_next)) in opts.grid.steps(schedule, opts.steps).enumerate() {
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
                let hint = eps
                    .divergence_hint()
                    .map_or(String::new(), |h| format!("; {h}"));
                return Err(Error::Numerical(format!(
                    "sampling with {} diverged between steps {} and {step} of {} (t = \
                     {t_next:.4}): the samples became non-finite{hint}",
                    sampler.describe(),
                    (step - 1) / DIVERGENCE_CHECK * DIVERGENCE_CHECK + 1,
                    opts.steps
                )));
            }
        }
    }
    bar.finish();
    let passes = match (before, eps.passes()) {
        (Some(a), Some(b)) => Passes {
            forwards: b.forwards - a.forwards,
            vjps: b.vjps - a.vjps,
        },
        _ => Passes {
            forwards: (evaluations * opts.samples) as u64,
            vjps: 0,
        },
    };
    Ok((
        x,
        SampleReport {
            evaluations,
            passes,
            samples: opts.samples,
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
