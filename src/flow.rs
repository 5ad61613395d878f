//! The Kolmogorov-flow experiment (paper §4.2) as library calls: the trained U-Net prior
//! (Algorithm 2 over a [`UNetScore`]), observations of test trajectories by any registered
//! field observation, SDA or DPS posteriors (Algorithms 3–4), the residual check
//! `std(A(x) − y) ≈ σ_y`, and vorticity figures. States are `(u, v)` on the learning grid,
//! unnormalised, flattened `[2, n, n]`.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::backend::{from_host, to_host, NoiseSource};
use crate::blanket::TemporalWindow;
use crate::data::load_split;
use crate::guidance::{Guidance, Guided};
use crate::observe::ObservationModel;
use crate::sampler::{sample, SampleOptions, SampleReport, Sampler};
use crate::schedule::{NoiseSchedule, VpCosine};
use crate::score::chunked::Chunked;
use crate::score::train::load_trained;
use crate::score::unet::{UNet, UNetScore};
use crate::score::Composed;
use crate::systems::kolmogorov::vorticity_from_velocity;
use crate::{Error, Result};

/// The composed prior of a trained U-Net.
pub type FlowPrior<B> = Composed<UNetScore<B>, TemporalWindow>;

/// Loads the checkpoint of a U-Net training folder as a composed prior.
pub fn load_prior<B: Backend>(run: &Path, device: &B::Device) -> Result<FlowPrior<B>> {
    let (net, cfg) = load_trained::<B, UNet<B>>(run, device)?;
    let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
    let k = cfg.k;
    Composed::new::<B>(UNetScore::new(net, cfg, schedule), TemporalWindow::new(k)?)
}

/// The first `len` states of trajectory `index` of a split of `[N, T, 2, n, n]` fields
/// (`[len·2n²]`).
pub fn trajectory(
    data: &Path,
    split: &str,
    index: usize,
    len: usize,
    grid: usize,
) -> Result<Vec<f64>> {
    let a = load_split(data, split, &[2, grid, grid])?;
    let (n, t) = (a.shape[0], a.shape[1]);
    if index >= n || len > t {
        return Err(Error::Invalid(format!(
            "the {split} split of {} has {n} trajectories of {t} states; asked for trajectory \
             {index}, {len} states",
            data.display()
        )));
    }
    let d = 2 * grid * grid;
    let off = index * t * d;
    Ok(a.data[off..off + len * d]
        .iter()
        .map(|&v| v as f64)
        .collect())
}

/// The observation: `A(truth) + η` (seeded), or, for scenarios that prescribe an event
/// (`fixed`, e.g. the circle's 0.6), that value everywhere.
pub fn observe<B: Backend>(
    observation: &dyn ObservationModel<B>,
    truth: &[f64],
    fixed: Option<f64>,
    seed: u64,
    device: &B::Device,
) -> Result<Vec<f64>> {
    if let Some(v) = fixed {
        return Ok(vec![v; observation.output_dim()]);
    }
    let s = observation.trajectory_shape();
    if truth.len() != s.len * s.dim {
        return Err(Error::Shape(format!(
            "a truth of {} values does not fit the observation's {}×{} trajectories",
            truth.len(),
            s.len,
            s.dim
        )));
    }
    let x = from_host::<B, 3>(truth, [1, s.len, s.dim], device);
    Ok(to_host(observation.sample(x, &mut NoiseSource::new(seed))))
}

/// Posterior trajectories `[N·L·2n²]` of the guided prior; trajectories are evaluated a few at
/// a time on all cores ([`Chunked`]).
#[allow(clippy::too_many_arguments)]
pub fn posterior<B: AutodiffBackend>(
    prior: &FlowPrior<B>,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    guidance: &dyn Guidance<B>,
    sampler: &dyn Sampler<B>,
    opts: &SampleOptions,
    device: &B::Device,
) -> Result<(Vec<f64>, SampleReport)> {
    let shape = observation.trajectory_shape();
    let guided = Guided::<B, _, _, _>::new(prior, observation, y, guidance, device)?;
    let chunked = Chunked::new(guided, 1);
    let (x, report) = sample::<B>(&chunked, sampler, shape, opts, device)?;
    Ok((to_host(x), report))
}

/// The residual standard deviation `sqrt(mean((A(x) − y)²))` over samples and observed values:
/// close to σ_y for a posterior consistent with the observation.
pub fn residual_std<B: Backend>(
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    x: &[f64],
    device: &B::Device,
) -> f64 {
    let s = observation.trajectory_shape();
    let n = x.len() / (s.len * s.dim);
    let ax = to_host(observation.apply(from_host::<B, 3>(x, [n, s.len, s.dim], device)));
    let m = y.len();
    let ss: f64 = ax
        .chunks_exact(m)
        .flat_map(|row| row.iter().zip(y).map(|(a, b)| (a - b).powi(2)))
        .sum();
    (ss / (n * m) as f64).sqrt()
}

/// The vorticity of every `every`-th state of one trajectory `[L·2n²]`.
pub fn vorticity_strip(x: &[f64], len: usize, grid: usize, every: usize) -> Vec<Vec<f64>> {
    let d = 2 * grid * grid;
    (0..len)
        .step_by(every.max(1))
        .map(|s| {
            let st = &x[s * d..(s + 1) * d];
            vorticity_from_velocity(&st[..grid * grid], &st[grid * grid..], grid)
        })
        .collect()
}
