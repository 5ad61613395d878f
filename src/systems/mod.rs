//! Dynamical systems: the Markov chains `p(x_1) Π p(x_{i+1} | x_i)` whose trajectories SDA
//! learns and assimilates (paper eq. 1). Simulation is plain `f64` on the host.

pub mod kolmogorov;
pub mod linear_gaussian;
pub mod lorenz63;
pub mod lorenz96;
pub mod rk4;

pub use crate::dynamics::Dynamics;
