//! The Ensemble Score Filter (EnSF; Bao, Zhang & Zhang, "An ensemble score filter for tracking
//! high-dimensional nonlinear dynamical systems", CMAME 432, 2024): a training-free diffusion
//! filter, the other diffusion approach to data assimilation beside SDA.
//!
//! The forecast ensemble `{x_j}` defines the prior; the analysis samples the posterior by the
//! reverse SDE of the linear schedule `x(t) = α(t) x + β(t) z`, `α(t) = 1 − (1 − ε_α) t`,
//! `β²(t) = ε_β + (1 − ε_β) t`, from `t = 1` to 0 with Euler–Maruyama steps:
//! `x ← x − Δt [f(t) x − g²(t) s(x, t)] + √(Δt g²(t)) ξ`, `f = d log α/dt`,
//! `g² = dβ²/dt − 2 f β²`. The score `s` is the prior's plus the likelihood's damped by
//! `h(t) = 1 − t`: `s = s_prior + (1 − t) ∇_x log p(y | x)` evaluated at x(t) itself (no
//! network, no Tweedie), clipped to ±1000 per component as in the reference code.
//!
//! The prior score has two forms ([`EnsfPrior`]): the paper's Monte-Carlo estimate over the
//! whole forecast ensemble (the score of the mixture `Σ_j N(α x_j, β² I)/N`), or the
//! reference code's tuned per-member form, where analysis member j follows the score of
//! `N(α x_j, β² I)` of its own forecast member.

use nalgebra::DMatrix;
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use super::ensemble::{checked_members, draw_ensemble, forecast_ensemble};
use super::{Estimate, Filter, GaussianObservation, Prior};
use crate::dynamics::Dynamics;
use crate::{Error, Result};

/// The score of the diffused prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnsfPrior {
    /// Member j's reverse SDE follows `−(x − α x_j)/β²` (the reference code's tuned form).
    #[default]
    Member,
    /// The paper's Monte-Carlo score of the mixture of the diffused forecast members.
    Mixture,
}

/// EnSF's settings (the defaults are the reference code's tuned Lorenz-96 ones).
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnsfSettings {
    /// Members N (≥ 2; default 20).
    #[serde(default = "default_members")]
    pub ensemble: usize,
    /// Euler–Maruyama steps of the reverse SDE per analysis (default 500).
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// `α(1) = ε_α` (default 0.5).
    #[serde(default = "default_eps_alpha")]
    pub eps_alpha: f64,
    /// `β²(0) = ε_β` (default 0.025).
    #[serde(default = "default_eps_beta")]
    pub eps_beta: f64,
    /// The prior score's form (default `member`).
    #[serde(default)]
    pub prior: EnsfPrior,
}

fn default_members() -> usize {
    20
}
fn default_steps() -> usize {
    500
}
fn default_eps_alpha() -> f64 {
    0.5
}
fn default_eps_beta() -> f64 {
    0.025
}

/// Largest magnitude of a score component (the reference code's clip).
const SCORE_CLIP: f64 = 1000.0;

impl Default for EnsfSettings {
    fn default() -> Self {
        Self {
            ensemble: default_members(),
            steps: default_steps(),
            eps_alpha: default_eps_alpha(),
            eps_beta: default_eps_beta(),
            prior: EnsfPrior::default(),
        }
    }
}

/// The Ensemble Score Filter (see the module docs).
pub struct Ensf {
    settings: EnsfSettings,
    ensemble: DMatrix<f64>,
}

impl Ensf {
    /// An EnSF; errors on fewer than 2 members, no steps, or ε outside (0, 1).
    pub fn new(settings: EnsfSettings) -> Result<Self> {
        if settings.ensemble < 2 {
            return Err(Error::Invalid(format!(
                "EnSF needs at least 2 members, got {}",
                settings.ensemble
            )));
        }
        if settings.steps == 0 {
            return Err(Error::Invalid(
                "EnSF needs at least one reverse-SDE step".into(),
            ));
        }
        for (name, v) in [
            ("eps_alpha", settings.eps_alpha),
            ("eps_beta", settings.eps_beta),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(Error::Invalid(format!(
                    "EnSF's {name} must lie in (0, 1), got {v}"
                )));
            }
        }
        Ok(Self {
            settings,
            ensemble: DMatrix::zeros(0, 0),
        })
    }

    /// `(α, β², d log α/dt, dβ²/dt)` at diffusion time t.
    fn schedule(&self, t: f64) -> (f64, f64, f64, f64) {
        let (ea, eb) = (self.settings.eps_alpha, self.settings.eps_beta);
        let alpha = 1.0 - (1.0 - ea) * t;
        (alpha, eb + (1.0 - eb) * t, -(1.0 - ea) / alpha, 1.0 - eb)
    }

    /// The prior score at `x` (member `j` of the analysis) at time t, written into `out`.
    fn prior_score(&self, forecast: &DMatrix<f64>, j: usize, x: &[f64], t: f64, out: &mut [f64]) {
        let (alpha, beta2, _, _) = self.schedule(t);
        match self.settings.prior {
            EnsfPrior::Member => {
                for (o, (xi, fi)) in out.iter_mut().zip(x.iter().zip(forecast.column(j).iter())) {
                    *o = -(xi - alpha * fi) / beta2;
                }
            }
            EnsfPrior::Mixture => {
                // weights ∝ exp(−|x − α x_m|²/(2β²)), normalised in log space
                let logw: Vec<f64> = forecast
                    .column_iter()
                    .map(|m| {
                        -0.5 * x
                            .iter()
                            .zip(m.iter())
                            .map(|(xi, mi)| (xi - alpha * mi).powi(2))
                            .sum::<f64>()
                            / beta2
                    })
                    .collect();
                let max = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = logw.iter().map(|l| (l - max).exp()).collect();
                let total: f64 = w.iter().sum();
                out.fill(0.0);
                for (m, wm) in forecast.column_iter().zip(&w) {
                    for (si, (xi, mi)) in out.iter_mut().zip(x.iter().zip(m.iter())) {
                        *si -= wm / total * (xi - alpha * mi) / beta2;
                    }
                }
            }
        }
    }
}

/// `∇_x log p(y | x) = J(x)ᵀ diag(σ⁻²) (y − H(x))`.
fn likelihood_score(observation: &dyn GaussianObservation, y: &[f64], x: &[f64]) -> Vec<f64> {
    let r: Vec<f64> = observation
        .observe(x)
        .iter()
        .zip(y)
        .zip(observation.sigma())
        .map(|((h, y), s)| (y - h) / (s * s))
        .collect();
    observation.vjp(x, &r)
}

impl Filter for Ensf {
    fn describe(&self) -> String {
        let s = &self.settings;
        format!(
            "EnSF N={} steps={} eps_alpha={} eps_beta={} prior={:?}",
            s.ensemble, s.steps, s.eps_alpha, s.eps_beta, s.prior
        )
    }

    fn initialise(&mut self, prior: &Prior, rng: &mut dyn RngCore) -> Result<()> {
        self.ensemble = draw_ensemble(prior, self.settings.ensemble, rng);
        Ok(())
    }

    fn members(&self) -> Option<usize> {
        Some(self.settings.ensemble)
    }

    fn initialise_members(&mut self, members: DMatrix<f64>) -> Result<()> {
        self.ensemble = checked_members(&self.describe(), members, self.settings.ensemble)?;
        Ok(())
    }

    fn forecast(&mut self, model: &dyn Dynamics, rng: &mut dyn RngCore) -> Result<()> {
        forecast_ensemble(&mut self.ensemble, model, rng);
        Ok(())
    }

    fn analyse(
        &mut self,
        y: &[f64],
        observation: &dyn GaussianObservation,
        _model: &dyn Dynamics,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        let forecast = &self.ensemble;
        let (n, members) = forecast.shape();
        // x(1): standard normal draws, standardised per component over the members as in the
        // reference code
        let mut x: DMatrix<f64> =
            DMatrix::from_fn(n, members, |_, _| StandardNormal.sample(&mut *rng));
        for mut row in x.row_iter_mut() {
            let mean = row.mean();
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (members - 1) as f64;
            let sd = var.sqrt().max(1e-12);
            row.apply(|v| *v = (*v - mean) / sd);
        }
        let dt = 1.0 / self.settings.steps as f64;
        let mut score = vec![0.0; n];
        for step in 0..self.settings.steps {
            let t = 1.0 - step as f64 * dt;
            let (_, beta2, f, dbeta2) = self.schedule(t);
            let g2 = dbeta2 - 2.0 * f * beta2;
            let damping = 1.0 - t;
            for j in 0..members {
                let mut member = x.column_mut(j);
                let col = member.as_mut_slice();
                self.prior_score(forecast, j, col, t, &mut score);
                if damping > 0.0 {
                    for (s, l) in score.iter_mut().zip(likelihood_score(observation, y, col)) {
                        *s += damping * l;
                    }
                }
                // each component moves with its own score: the member is updated in place
                for (xi, s) in col.iter_mut().zip(&score) {
                    let s = s.clamp(-SCORE_CLIP, SCORE_CLIP);
                    let z: f64 = StandardNormal.sample(&mut *rng);
                    *xi = *xi - dt * (f * *xi - g2 * s) + (dt * g2).sqrt() * z;
                }
            }
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(
                "EnSF's reverse SDE gave a non-finite analysis member".into(),
            ));
        }
        self.ensemble = x;
        Ok(())
    }

    fn estimate(&self) -> Estimate<'_> {
        Estimate::Ensemble(&self.ensemble)
    }
}
