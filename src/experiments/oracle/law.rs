//! The exact law of a deterministic sampler's samples on the oracle, where every ε is affine.

use burn::tensor::backend::Backend;
use nalgebra::{DMatrix, DVector};

use crate::backend::{from_host, to_host, NoiseSource};
use crate::sampler::{PredictorCorrector, Sampler, TimeGrid};
use crate::score::EpsilonModel;
use crate::{Error, Result, TrajectoryShape};

/// The largest trajectory size `L·D` [`sampler_law`] accepts: it takes each step on `L·D + 2`
/// points and multiplies dense `L·D × L·D` matrices at every step.
pub const SAMPLER_LAW_MAX_DIM: usize = 2048;

/// The exact law of deterministic DDIM samples (Algorithm 4's predictor alone, C = 0): the
/// [`sampler_law`] of [`PredictorCorrector::ddim`]. For a noise model `eps` that is **affine**
/// in `x(t)` — the exact Gaussian ε, Algorithm 2's composition of it, and SDA guidance
/// (Algorithm 3) with a linear A all are — each step `x ← r x + c (E_t x + f_t)` is affine,
/// so the samples are exactly Gaussian. This separates a method's bias, noise-free, from what
/// sampling adds to it: the law is what infinitely many DDIM samples would give.
pub fn ddim_law<B: Backend>(
    eps: &dyn EpsilonModel<B>,
    shape: TrajectoryShape,
    steps: usize,
    device: &B::Device,
) -> Result<(DVector<f64>, DMatrix<f64>)> {
    sampler_law(
        eps,
        &PredictorCorrector::ddim(),
        shape,
        steps,
        TimeGrid::Uniform,
        device,
    )
}

/// The exact law of the samples of any **deterministic** `sampler` whose step is affine in
/// `x(t)` — DDIM, or a higher-order ODE solver, with an affine `eps` (see [`ddim_law`]) — on
/// the time grid `grid` of [`crate::sampler::sample`] from `x(1) ~ N(0, I)`: each step `x ← M_s x + b_s` maps the mean and
/// covariance as `m ← M_s m + b_s`, `P ← M_s P M_sᵀ`, from `m = 0`, `P = I`.
///
/// `M_s` and `b_s` are read off the step itself, taken on 0 and on the `L·D` unit vectors (one
/// batch); the same batch holds one more point at which affinity is checked (to 1e-3 of the
/// step's move, above float rounding), so a step that is not affine (DPS's ε, Langevin
/// corrections, any injected noise) is an error rather than a wrong law.
pub fn sampler_law<B: Backend>(
    eps: &dyn EpsilonModel<B>,
    sampler: &dyn Sampler<B>,
    shape: TrajectoryShape,
    steps: usize,
    grid: TimeGrid,
    device: &B::Device,
) -> Result<(DVector<f64>, DMatrix<f64>)> {
    if steps == 0 {
        return Err(Error::Invalid("the sampler law needs steps ≥ 1".into()));
    }
    let p = shape.len * shape.dim;
    if p > SAMPLER_LAW_MAX_DIM {
        return Err(Error::Invalid(format!(
            "the sampler law propagates a dense {p}×{p} covariance; it is meant for small \
             problems (L·D ≤ {SAMPLER_LAW_MAX_DIM})"
        )));
    }
    eps.check_shape(shape.len, shape.dim)?;
    // probe rows (row-major): 0, the unit vectors, then a spread-out check point
    let check: Vec<f64> = (0..p).map(|j| ((j + 1) as f64 * 0.7).sin()).collect();
    let mut probes = vec![0.0; (p + 2) * p];
    for j in 0..p {
        probes[(j + 1) * p + j] = 1.0;
    }
    probes[(p + 1) * p..].copy_from_slice(&check);
    let probes = from_host::<B, 3>(&probes, [p + 2, shape.len, shape.dim], device);
    let check_point = DVector::from_column_slice(&check);
    let mut noise = NoiseSource::new(0);
    let mut mean = DVector::zeros(p);
    let mut cov = DMatrix::identity(p, p);
    for (t, t_next) in grid.steps(eps.schedule(), steps) {
        let next = to_host(sampler.step(eps, probes.clone(), t, t_next, &mut noise));
        if next.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "the sampler law needs a deterministic step affine in x(t); at t = {t:.4} the \
                 step of {} is not finite at the probe points (0 and the unit vectors)",
                sampler.describe()
            )));
        }
        let next = DMatrix::from_row_slice(p + 2, p, &next);
        let b = next.row(0).transpose();
        let mut m = DMatrix::zeros(p, p);
        for j in 0..p {
            m.set_column(j, &(next.row(j + 1).transpose() - &b));
        }
        let predicted = &m * &check_point + &b;
        let actual = next.row(p + 1).transpose();
        // relative to the size of the step's move, which is small with many steps (a step
        // near the identity would hide a non-affine ε: its increment is c·ε with c ≈
        // 1/steps), above the float rounding of the step's output
        let moved = (&actual - &check_point).amax().max(b.amax());
        let rounding = 1e-5 * actual.amax().max(1.0);
        let off = (&predicted - &actual).amax();
        if off > 1e-3 * moved + rounding {
            return Err(Error::Invalid(format!(
                "the sampler law needs a deterministic step affine in x(t) (an affine ε and no \
                 injected noise); at t = {t:.4} the step of {} is not (off by {off:.3e} at a \
                 check point)",
                sampler.describe(),
            )));
        }
        mean = &m * mean + b;
        cov = &m * cov * m.transpose();
    }
    Ok((mean, cov))
}
