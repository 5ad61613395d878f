//! Ground truth for nonlinear systems: the **bootstrap particle filter** over whole trajectories
//! (paper §4.1), with two ways to draw posterior trajectories from it:
//! - [`Smoother::Genealogy`]: resample whole histories at each observation and trace the
//!   surviving ancestries back (the paper's choice; early states collapse when observations are
//!   dense);
//! - [`Smoother::BackwardSimulation`]: forward-filtering backward-simulation (FFBSi), which
//!   redraws each earlier state with weights `W_i^p · p(x_{i+1} | x_i^p)`; it needs the
//!   transition density.
//!
//! Particles start from the system's initial prior, take `burn_in` transitions, then follow the
//! trajectory. Randomness is drawn per block of particles from seeds derived from
//! `(seed, step, block)`, so results do not depend on the number of threads.

use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// `log p(y_i | x_i)` of an observation that factorises over states, for the particles of one
/// state at a time.
pub trait StateLikelihood {
    /// `log p(y_state | x)` (up to a constant in x) for each of the values `xs` (`[n, dim]`,
    /// row-major) of state `state`; `None` where that state is not observed.
    fn log_likelihoods(&self, state: usize, xs: &[f64], dim: usize) -> Result<Option<Vec<f64>>>;
}

/// A closure `|state, x| Some(log p(y_state | x))` (or `None` where the state is not observed),
/// evaluated over the particles in parallel.
impl<F: Fn(usize, &[f64]) -> Option<f64> + Sync> StateLikelihood for F {
    fn log_likelihoods(&self, state: usize, xs: &[f64], dim: usize) -> Result<Option<Vec<f64>>> {
        let values: Vec<Option<f64>> = xs.par_chunks(dim).map(|x| self(state, x)).collect();
        Ok(values
            .iter()
            .any(Option::is_some)
            .then(|| values.iter().map(|v| v.unwrap_or(0.0)).collect()))
    }
}

/// How posterior trajectories are drawn from the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Smoother {
    /// Trace resampled ancestries back (bootstrap filter with history resampling).
    Genealogy,
    /// Forward-filtering backward-simulation.
    BackwardSimulation,
}

/// Settings of the particle filter.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticleFilter {
    /// Number of particles (2^14 by default in the paper's range 2^14–2^16).
    pub particles: usize,
    /// Transitions from the initial prior before the first state.
    pub burn_in: usize,
    /// Posterior trajectories to return.
    pub samples: usize,
    /// Seed.
    pub seed: u64,
    /// Trajectory drawing method.
    pub smoother: Smoother,
}

impl Default for ParticleFilter {
    fn default() -> Self {
        Self {
            particles: 1 << 14,
            burn_in: 64,
            samples: 1024,
            seed: 0,
            smoother: Smoother::Genealogy,
        }
    }
}

const BLOCK: usize = 1024;

fn block_rng(seed: u64, step: usize, block: usize) -> StdRng {
    let mix = seed
        ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (block as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    StdRng::seed_from_u64(mix)
}

/// Normalised weights from log-weights (max-shifted).
fn normalise(logw: &[f64]) -> Result<Vec<f64>> {
    let max = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return Err(Error::Numerical(
            "all particle weights vanished (observation impossible under the prior?)".into(),
        ));
    }
    let w: Vec<f64> = logw.iter().map(|l| (l - max).exp()).collect();
    let s: f64 = w.iter().sum();
    Ok(w.iter().map(|v| v / s).collect())
}

/// `count` multinomial draws of indices with probabilities `w`.
fn multinomial(w: &[f64], count: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut cdf = Vec::with_capacity(w.len());
    let mut acc = 0.0;
    for v in w {
        acc += v;
        cdf.push(acc);
    }
    (0..count)
        .map(|_| {
            let u: f64 = rng.random::<f64>() * acc;
            cdf.partition_point(|c| *c < u).min(w.len() - 1)
        })
        .collect()
}

impl ParticleFilter {
    /// Posterior trajectories `x_{1:len} | y`, `[samples, len, D]` row-major.
    pub fn run<D: Dynamics + ?Sized>(
        &self,
        system: &D,
        len: usize,
        likelihood: &dyn StateLikelihood,
    ) -> Result<Vec<f64>> {
        let (np, d) = (self.particles, system.state_dim());
        if np < 2 || len == 0 || self.samples == 0 {
            return Err(Error::Invalid(format!(
                "particle filter needs ≥ 2 particles, len ≥ 1 and samples ≥ 1 (got {np}, {len}, {})",
                self.samples
            )));
        }
        // every state of every particle is kept for the smoother, with its ancestor and weight
        crate::resources::check_memory(
            &format!("a particle filter of {np} particles over {len} states of {d} values"),
            crate::resources::product(&[np, len, d + 2, 8]),
        )?;
        // initial particles after burn-in
        let mut current: Vec<f64> = (0..np.div_ceil(BLOCK))
            .into_par_iter()
            .flat_map_iter(|b| {
                let mut rng = block_rng(self.seed, usize::MAX, b);
                let count = BLOCK.min(np - b * BLOCK);
                (0..count)
                    .flat_map(|_| {
                        let mut x = system.sample_initial(&mut rng);
                        for _ in 0..self.burn_in {
                            x = system.step(&x, &mut rng);
                        }
                        x
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut states: Vec<Vec<f64>> = Vec::with_capacity(len);
        let mut ancestors: Vec<Vec<usize>> = Vec::with_capacity(len);
        let mut weights: Vec<Vec<f64>> = Vec::with_capacity(len);
        let mut logw = vec![0.0; np];
        let mut resample_rng = block_rng(self.seed, usize::MAX - 1, 0);
        let mut parent: Vec<usize> = (0..np).collect();
        for i in 0..len {
            if i > 0 {
                let prev = &states[i - 1];
                current = parent
                    .par_chunks(BLOCK)
                    .enumerate()
                    .flat_map_iter(|(b, chunk)| {
                        let mut rng = block_rng(self.seed, i, b);
                        chunk
                            .iter()
                            .flat_map(|&a| system.step(&prev[a * d..(a + 1) * d], &mut rng))
                            .collect::<Vec<_>>()
                    })
                    .collect();
            }
            let increments = likelihood.log_likelihoods(i, &current, d)?;
            let observed = increments.is_some();
            if let Some(inc) = &increments {
                if inc.len() != np {
                    return Err(Error::Shape(format!(
                        "the likelihood of state {i} gave {} values for {np} particles",
                        inc.len()
                    )));
                }
                for (l, v) in logw.iter_mut().zip(inc) {
                    *l += v;
                }
            }
            let w = normalise(&logw)?;
            ancestors.push(parent.clone());
            states.push(std::mem::take(&mut current));
            if observed && i + 1 < len {
                parent = multinomial(&w, np, &mut resample_rng);
                logw.iter_mut().for_each(|l| *l = 0.0);
            } else {
                parent = (0..np).collect();
            }
            weights.push(w);
        }
        let mut rng = block_rng(self.seed, usize::MAX - 2, 0);
        let last = multinomial(&weights[len - 1], self.samples, &mut rng);
        let mut out = vec![0.0; self.samples * len * d];
        match self.smoother {
            Smoother::Genealogy => {
                for (s, &end) in last.iter().enumerate() {
                    let mut idx = end;
                    for i in (0..len).rev() {
                        out[(s * len + i) * d..(s * len + i + 1) * d]
                            .copy_from_slice(&states[i][idx * d..(idx + 1) * d]);
                        if i > 0 {
                            idx = ancestors[i][idx];
                        }
                    }
                }
            }
            Smoother::BackwardSimulation => {
                if system
                    .log_transition(&states[0][..d], &states[0][..d])
                    .is_none()
                {
                    return Err(Error::Invalid(format!(
                        "backward simulation needs the transition density, which {} lacks",
                        system.name()
                    )));
                }
                // filtering weights of states[i] before resampling
                let filtered: Vec<&Vec<f64>> = weights.iter().collect();
                out.par_chunks_mut(len * d)
                    .zip(last.par_iter())
                    .enumerate()
                    .try_for_each(|(s, (traj, &end))| -> Result<()> {
                        let mut rng = block_rng(self.seed, usize::MAX - 3, s);
                        let mut idx = end;
                        traj[(len - 1) * d..]
                            .copy_from_slice(&states[len - 1][idx * d..(idx + 1) * d]);
                        for i in (0..len - 1).rev() {
                            let next = &states[i + 1][idx * d..(idx + 1) * d];
                            let logb: Vec<f64> = (0..np)
                                .map(|p| {
                                    filtered[i][p].ln()
                                        + system
                                            .log_transition(&states[i][p * d..(p + 1) * d], next)
                                            .unwrap_or(f64::NEG_INFINITY)
                                })
                                .collect();
                            idx = multinomial(&normalise(&logb)?, 1, &mut rng)[0];
                            traj[i * d..(i + 1) * d]
                                .copy_from_slice(&states[i][idx * d..(idx + 1) * d]);
                        }
                        Ok(())
                    })?;
            }
        }
        Ok(out)
    }
}
