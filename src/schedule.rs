//! Noise schedules of the forward diffusion and the **ε-space convention** used everywhere.
//!
//! The forward process perturbs a clean trajectory x with Gaussian noise,
//! `x(t) = μ(t) x + σ(t) ε`, `ε ~ N(0, I)`, `t ∈ [0, 1]` (paper eq. 3), with `μ(0) = 1`,
//! `σ(0) ≪ 1` and `p(x(1)) ≈ N(0, σ(1)² I)`.
//!
//! # The ε-space convention (stated once, used by every module)
//!
//! Networks and analytic models predict the **noise** `ε(x(t), t)`, never the score. The score
//! is `s(x(t), t) = ∇ log p(x(t)) = −ε(x(t), t) / σ(t)` (paper §2, eq. 6). Because σ(t) is shared
//! by all states of a trajectory, local ε's compose exactly like local scores (Algorithm 2), and a
//! likelihood score `s_y` enters as `ε_post = ε − σ(t) s_y` (Algorithm 3). Guidance and samplers
//! therefore multiply by σ(t) and never divide by a small σ. Tweedie's formula (paper eq. 9) reads
//! `E[x | x(t)] = (x(t) − σ(t) ε) / μ(t)`.

/// A variance-preserving (or other) noise schedule `t ↦ (μ(t), σ(t))` of the forward
/// perturbation kernel `p(x(t) | x) = N(μ(t) x, σ(t)² I)` (paper eq. 3).
///
/// Requirements: μ decreasing from μ(0) = 1, σ increasing, σ(0) small, μ(1)/σ(1) ≈ 0.
pub trait NoiseSchedule: Send + Sync {
    /// Signal scale μ(t).
    fn mu(&self, t: f64) -> f64;
    /// Noise scale σ(t).
    fn sigma(&self, t: f64) -> f64;
    /// Short human-readable name (for tables and logs).
    fn name(&self) -> String;
}

/// VP cosine schedule (Nichol & Dhariwal), the one used in every experiment of the paper:
/// `μ(t) = cos(ω t)²`, `ω = arccos √η`, `σ(t) = √(1 − μ(t)² + η²)`.
/// So μ(0) = 1, σ(0) = η, μ(1) = η, σ(1) ≈ 1.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VpCosine {
    /// Smallest noise level η (1e-3 in the paper).
    #[serde(default = "default_eta")]
    pub eta: f64,
}

/// VP linear schedule: `μ(t) = 1 − (1 − η) t`, `σ(t) = √(1 − μ(t)² + η²)`.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VpLinear {
    /// Smallest noise level η.
    #[serde(default = "default_eta")]
    pub eta: f64,
}

/// VP exponential schedule: `μ(t) = exp(ln(η) t²)`, `σ(t) = √(1 − μ(t)² + η²)`.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VpExp {
    /// Smallest noise level η.
    #[serde(default = "default_eta")]
    pub eta: f64,
}

fn default_eta() -> f64 {
    1e-3
}

/// The paper's η.
pub const PAPER_ETA: f64 = 1e-3;

fn vp_sigma(mu: f64, eta: f64) -> f64 {
    (1.0 - mu * mu + eta * eta).max(0.0).sqrt()
}

impl Default for VpCosine {
    fn default() -> Self {
        Self { eta: PAPER_ETA }
    }
}
impl Default for VpLinear {
    fn default() -> Self {
        Self { eta: PAPER_ETA }
    }
}
impl Default for VpExp {
    fn default() -> Self {
        Self { eta: PAPER_ETA }
    }
}

impl NoiseSchedule for VpCosine {
    fn mu(&self, t: f64) -> f64 {
        let omega = self.eta.sqrt().acos();
        (omega * t).cos().powi(2)
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_sigma(self.mu(t), self.eta)
    }
    fn name(&self) -> String {
        format!("vp-cosine(eta={})", self.eta)
    }
}

impl NoiseSchedule for VpLinear {
    fn mu(&self, t: f64) -> f64 {
        1.0 - (1.0 - self.eta) * t
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_sigma(self.mu(t), self.eta)
    }
    fn name(&self) -> String {
        format!("vp-linear(eta={})", self.eta)
    }
}

impl NoiseSchedule for VpExp {
    fn mu(&self, t: f64) -> f64 {
        (self.eta.ln() * t * t).exp()
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_sigma(self.mu(t), self.eta)
    }
    fn name(&self) -> String {
        format!("vp-exp(eta={})", self.eta)
    }
}

/// Checks that η is in (0, 1) — shared by the schedule constructors of the registry.
pub fn check_eta(eta: f64) -> crate::Result<()> {
    if eta.is_finite() && eta > 0.0 && eta < 1.0 {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "schedule eta must lie in (0, 1), got {eta}"
        )))
    }
}

/// Score from noise: `s = −ε / σ(t)`.
pub fn score_from_epsilon(epsilon: f64, sigma: f64) -> f64 {
    -epsilon / sigma
}

/// Noise from score: `ε = −σ(t) s`.
pub fn epsilon_from_score(score: f64, sigma: f64) -> f64 {
    -sigma * score
}

/// Tweedie's formula in ε-space: `x̂ = (x(t) − σ(t) ε) / μ(t)` (paper eq. 9).
pub fn tweedie(x_t: f64, epsilon: f64, mu: f64, sigma: f64) -> f64 {
    (x_t - sigma * epsilon) / mu
}
