//! The dynamical systems SDA learns and assimilates: Markov chains
//! `p(x_1) Π p(x_{i+1} | x_i)` (paper eq. 1), simulated as plain `f64` on the host. The
//! built-in systems are in [`crate::systems`]; the particle filter, the metrics and dataset
//! generation see only this trait.

use rand::RngCore;

/// What a stored state holds, as a dataset's manifest records it for readers of the data.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateInfo {
    /// Names of the variables along the stored state's first axis (Lorenz-63: x, y, z;
    /// Kolmogorov flow: u, v, each on the grid of the remaining axes).
    pub variables: Vec<String>,
    /// Their units.
    pub units: String,
    /// Time between consecutive stored states; `None` for a chain in discrete time.
    pub dt: Option<f64>,
}

/// The deterministic part `M` of a transition `x_{i+1} = M(x_i) + η` with its derivatives, for
/// the variational methods: the tangent-linear model `M'(x) dx` and its adjoint `M'(x)ᵀ λ`
/// (checked against finite differences and by the dot-product test by each system).
pub trait TangentLinear: Send + Sync {
    /// `M(x)`: one transition without its noise.
    fn mean_step(&self, x: &[f64]) -> Vec<f64>;
    /// `M'(x) dx`.
    fn tangent_linear(&self, x: &[f64], dx: &[f64]) -> Vec<f64>;
    /// `M'(x)ᵀ λ`.
    fn adjoint(&self, x: &[f64], lambda: &[f64]) -> Vec<f64>;
    /// The variance of each component of the transition's noise η (zeros for a deterministic
    /// model) when its components are independent, else `None`: the model-error covariance
    /// `Q = diag(·)` of weak-constraint 4D-Var.
    fn noise_variance(&self) -> Option<Vec<f64>>;
}

/// A discrete-time stochastic dynamical system.
pub trait Dynamics: Send + Sync {
    /// Short name (as registered).
    fn name(&self) -> String;
    /// Shape of one state (e.g. `[3]` for Lorenz-63, `[2, 64, 64]` for Kolmogorov flow).
    fn state_shape(&self) -> Vec<usize>;
    /// Flattened dimension D of one state.
    fn state_dim(&self) -> usize {
        self.state_shape().iter().product()
    }
    /// Draws `x_1` from the initial prior `p(x_1)`.
    fn sample_initial(&self, rng: &mut dyn RngCore) -> Vec<f64>;
    /// Draws `x_{i+1} ~ p(x_{i+1} | x_i)`.
    fn step(&self, x: &[f64], rng: &mut dyn RngCore) -> Vec<f64>;
    /// The deterministic transition and its derivatives, if the system has them (Lorenz-96).
    fn linearised(&self) -> Option<&dyn TangentLinear> {
        None
    }
    /// `log p(x_{i+1} | x_i)` when the transition density is known in closed form.
    fn log_transition(&self, _x: &[f64], _x_next: &[f64]) -> Option<f64> {
        None
    }

    /// A trajectory of `len` states after `burn_in` discarded transitions, flattened `[L·D]`.
    fn trajectory(&self, len: usize, burn_in: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        let mut x = self.sample_initial(rng);
        for _ in 0..burn_in {
            x = self.step(&x, rng);
        }
        let mut out = Vec::with_capacity(len * x.len());
        for i in 0..len {
            if i > 0 {
                x = self.step(&x, rng);
            }
            out.extend_from_slice(&x);
        }
        out
    }

    /// Shape of one state as a dataset stores it (`sda generate`); the state itself by default.
    /// Kolmogorov flow stores the coarse velocity `[2, n/f, n/f]` of its vorticity state.
    fn stored_shape(&self) -> Vec<usize> {
        self.state_shape()
    }

    /// A dataset trajectory (`sda generate`): `keep` stored states after `burn_in` discarded
    /// transitions, flattened `[keep · Π stored_shape]`; [`trajectory`](Self::trajectory) by
    /// default.
    fn stored_trajectory(&self, keep: usize, burn_in: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        self.trajectory(keep, burn_in, rng)
    }

    /// Every parameter of the system, defaults included, as a dataset's manifest records it (and
    /// its registered constructor accepts back); `None` records the parameters it was built from.
    fn parameters(&self) -> Option<serde_json::Value> {
        None
    }

    /// The names, units and time step of the stored states; by default `x[0]`, `x[1]`, … along
    /// the first axis of [`stored_shape`](Self::stored_shape), in units the system does not
    /// state, in discrete time.
    fn state_info(&self) -> StateInfo {
        let n = self.stored_shape().first().copied().unwrap_or(1);
        StateInfo {
            variables: (0..n).map(|i| format!("x[{i}]")).collect(),
            units: "not stated by the system".into(),
            dt: None,
        }
    }

    /// `log p(x_{2:L} | x_1) = Σ_i log p(x_{i+1} | x_i)` of a flattened trajectory, if known.
    fn log_prior(&self, trajectory: &[f64]) -> Option<f64> {
        let d = self.state_dim();
        trajectory
            .chunks_exact(d)
            .zip(trajectory.chunks_exact(d).skip(1))
            .map(|(a, b)| self.log_transition(a, b))
            .sum()
    }
}
