//! Observation models `p(y | x_{1:L}) = N(y | A(x_{1:L}), Σ_y)` (paper eq. 1), used only at
//! inference time to guide the reverse diffusion (zero-shot scenarios).
//!
//! The measurement function A is written once, on tensors, so autodiff can differentiate through
//! it inside guidance; the same code evaluated on host data serves the particle filter and the
//! metrics. Σ_y is diagonal.

pub mod field;
pub mod link;
pub mod ops;
pub mod window;

pub use link::{ArctanLink, Link};

use burn::tensor::{backend::Backend, Tensor};
use std::ops::Range;

use nalgebra::DMatrix;

use crate::backend::{from_host, to_host, NoiseSource};
use crate::{Error, Result, TrajectoryShape};

/// A (possibly non-linear) Gaussian observation process `y = A(x_{1:L}) + η`,
/// `η ~ N(0, diag(noise_std)²)`.
///
/// An implementation is built for one trajectory shape (L, D) and validates it at construction,
/// so `apply` never sees a shape it did not agree to.
pub trait ObservationModel<B: Backend>: Send + Sync {
    /// The trajectory shape (L, D) this model was built for.
    fn trajectory_shape(&self) -> TrajectoryShape;
    /// Dimension M of y.
    fn output_dim(&self) -> usize;
    /// The measurement function A: `[N, L, D]` → `[N, M]`, differentiable.
    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2>;
    /// Square roots of the diagonal of Σ_y (length M).
    fn noise_std(&self) -> Vec<f64>;
    /// One-line description for tables and logs.
    fn describe(&self) -> String;

    /// The layout `[S, C, H, W]` of y when it is `S` observed images of `C` channels on an
    /// `H × W` grid (row-major, in this order), so that figures can draw the observation
    /// next to the states; `None` (the default) when y is not a stack of images.
    fn image_layout(&self) -> Option<[usize; 4]> {
        None
    }

    /// The trajectory states (0-based, in order) that the `S` images of
    /// [`image_layout`](Self::image_layout) observe, so that a figure can draw each observed
    /// image under its state; `None` (the default) when unknown or when y is not images.
    fn observed_states(&self) -> Option<Vec<usize>> {
        None
    }

    /// How y factorises over states, when it does: `parts[i]` is the range of y's indices whose
    /// values depend on state `i` alone (empty where state `i` is not observed), the ranges
    /// disjoint and covering y, so `p(y | x_{1:L}) = Π_i p(y_{parts[i]} | x_i)` — what a
    /// particle filter weighs each state with. `None` (the default) when some value of y
    /// depends on several states. [`state_major_parts`] writes the common case.
    fn state_parts(&self) -> Option<Vec<Range<usize>>> {
        None
    }

    /// When `A = g ∘ A_lin`, a linear observation followed by a pointwise [`Link`] `g` of each
    /// value: `g` and `A_lin` (same shape, same noise). `None` (the default) for a linear model
    /// and for any other non-linear one. The classical window smoothers, which see a Gaussian
    /// observation of each state on the host, read a linked observation through it (the arctan
    /// of picked sites of the Ensemble Score Filter paper).
    fn link(&self) -> Option<(Link, Box<dyn ObservationModel<B>>)> {
        None
    }

    /// `log N(y_i | A(x)_i, Σ_{y,i})` up to a constant in x, with `i` the part of y of state
    /// `state` ([`state_parts`](Self::state_parts)), for each of the values `xs` (`[n, D]`,
    /// row-major, in the model's units) of that state: the per-state likelihood of a particle
    /// filter. The default places each value in an otherwise-zero trajectory, applies A on
    /// `device` (a bounded number of trajectories at a time) and reads the state's part; a model
    /// may answer on the host instead. An error when the model does not factorise.
    fn state_log_likelihood(
        &self,
        y: &[f64],
        state: usize,
        xs: &[f64],
        device: &B::Device,
    ) -> Result<Vec<f64>> {
        let parts = checked_state_parts(self)?;
        let TrajectoryShape { len, dim } = self.trajectory_shape();
        let part = parts.get(state).cloned().ok_or_else(|| {
            Error::Shape(format!(
                "state {state} is outside the trajectory (L = {len})"
            ))
        })?;
        if !xs.len().is_multiple_of(dim) {
            return Err(Error::Shape(format!(
                "{} values are not whole states of {dim}",
                xs.len()
            )));
        }
        let n = xs.len() / dim;
        if part.is_empty() {
            return Ok(vec![0.0; n]);
        }
        let (m, std) = (self.output_dim(), self.noise_std());
        let batch = (BASIS_BATCH_VALUES / (len * dim)).clamp(1, n.max(1));
        let mut out = Vec::with_capacity(n);
        for chunk in xs.chunks(batch * dim) {
            let count = chunk.len() / dim;
            let mut x = vec![0.0; count * len * dim];
            for (j, value) in chunk.chunks(dim).enumerate() {
                x[(j * len + state) * dim..(j * len + state + 1) * dim].copy_from_slice(value);
            }
            let a = to_host(self.apply(from_host::<B, 3>(&x, [count, len, dim], device)));
            out.extend((0..count).map(|j| {
                part.clone()
                    .map(|r| -0.5 * ((y[r] - a[j * m + r]) / std[r]).powi(2))
                    .sum::<f64>()
            }));
        }
        Ok(out)
    }

    /// Draws `y ~ N(A(x), Σ_y)` for each trajectory of the batch.
    fn sample(&self, x: Tensor<B, 3>, noise: &mut NoiseSource) -> Tensor<B, 2> {
        let device = x.device();
        let n = x.dims()[0];
        let m = self.output_dim();
        let std = from_host::<B, 2>(&self.noise_std(), [1, m], &device);
        self.apply(x) + noise.normal::<B, 2>([n, m], &device) * std
    }

    /// `log N(y | A(x), Σ_y)` for each trajectory of the batch `[N, L, D]` → `[N]`.
    fn log_likelihood(&self, y: &[f64], x: Tensor<B, 3>) -> Tensor<B, 1> {
        let device = x.device();
        let m = self.output_dim();
        let std = self.noise_std();
        let log_norm: f64 = std
            .iter()
            .map(|s| -(s * (2.0 * std::f64::consts::PI).sqrt()).ln())
            .sum();
        let y = from_host::<B, 2>(y, [1, m], &device);
        let inv = from_host::<B, 2>(
            &std.iter().map(|s| 1.0 / s).collect::<Vec<_>>(),
            [1, m],
            &device,
        );
        let z = (y - self.apply(x)) * inv;
        let n = z.dims()[0];
        (z.powi_scalar(2).sum_dim(1) * (-0.5) + log_norm).reshape([n])
    }
}

/// Checks an observation vector against a model: right length, finite values.
pub fn check_observation<B: Backend>(model: &dyn ObservationModel<B>, y: &[f64]) -> Result<()> {
    if y.len() != model.output_dim() {
        return Err(Error::Shape(format!(
            "observation y has {} values but {} produces {}",
            y.len(),
            model.describe(),
            model.output_dim()
        )));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "observation y[{i}] = {} (NaN or infinite)",
            y[i]
        )));
    }
    if let Some(s) = model
        .noise_std()
        .iter()
        .find(|s| !(s.is_finite() && **s > 0.0))
    {
        return Err(Error::Invalid(format!(
            "observation noise std must be positive and finite, got {s}"
        )));
    }
    Ok(())
}

/// The [`ObservationModel::state_parts`] of a y ordered state-major with `per_state` values for
/// each of the observed `states` (in that order), in trajectories of `len` states.
pub fn state_major_parts(len: usize, states: &[usize], per_state: usize) -> Vec<Range<usize>> {
    let mut parts = vec![0..0; len];
    for (j, &s) in states.iter().enumerate() {
        if let Some(p) = parts.get_mut(s) {
            *p = j * per_state..(j + 1) * per_state;
        }
    }
    parts
}

/// A model's [`ObservationModel::state_parts`], checked: one range per state, within y,
/// disjoint and covering it; an error naming the model when it does not factorise over states
/// or its parts are inconsistent.
pub fn checked_state_parts<B: Backend, M: ObservationModel<B> + ?Sized>(
    model: &M,
) -> Result<Vec<Range<usize>>> {
    let parts = model.state_parts().ok_or_else(|| {
        Error::Invalid(format!(
            "{} does not factorise over states (its `state_parts` is None), and a particle \
             filter needs a per-state likelihood",
            model.describe()
        ))
    })?;
    let (len, m) = (model.trajectory_shape().len, model.output_dim());
    if parts.len() != len {
        return Err(Error::Shape(format!(
            "{} gives state parts for {} states of a trajectory of {len}",
            model.describe(),
            parts.len()
        )));
    }
    let mut seen = vec![false; m];
    for (i, part) in parts.iter().enumerate() {
        for r in part.clone() {
            if r >= m || std::mem::replace(&mut seen[r], true) {
                return Err(Error::Shape(format!(
                    "{}: the part of state {i} ({part:?}) is outside y (M = {m}) or overlaps \
                     another state's",
                    model.describe()
                )));
            }
        }
    }
    if let Some(r) = seen.iter().position(|s| !s) {
        return Err(Error::Shape(format!(
            "{}: y[{r}] belongs to no state's part",
            model.describe()
        )));
    }
    Ok(parts)
}

/// The number of values in one batch of basis trajectories [`linear_matrix`] applies A to:
/// the basis is applied a slice at a time, so its memory stays bounded for long trajectories.
const BASIS_BATCH_VALUES: usize = 1 << 22;

/// The matrix H of a **linear** observation model (A(x) = H vec(x)), built by applying A to the
/// L·D basis trajectories, in batches of at most 2²² values (one trajectory at a time when
/// L·D is larger): the basis held at once grows with L·D, not (L·D)².
/// Returns an error if A is not linear (A(0) ≠ 0 or not additive on a random pair), since
/// exact Gaussian oracles need linear A.
pub fn linear_matrix<B: Backend>(
    model: &dyn ObservationModel<B>,
    device: &B::Device,
) -> Result<DMatrix<f64>> {
    let TrajectoryShape { len, dim } = model.trajectory_shape();
    let n = len * dim;
    let m = model.output_dim();
    let batch = (BASIS_BATCH_VALUES / n.max(1)).clamp(1, n.max(1));
    let mut h = DMatrix::zeros(m, n);
    for start in (0..n).step_by(batch) {
        let count = batch.min(n - start);
        let mut basis = vec![0.0; count * n];
        for j in 0..count {
            basis[j * n + start + j] = 1.0;
        }
        let cols = to_host(model.apply(from_host::<B, 3>(&basis, [count, len, dim], device)));
        for j in 0..count {
            h.column_mut(start + j)
                .copy_from_slice(&cols[j * m..(j + 1) * m]);
        }
    }
    // linearity checks: A(0) = 0 and A(a + b) = A(a) + A(b) for a fixed pseudo-random pair
    let zero = to_host(model.apply(from_host::<B, 3>(&vec![0.0; n], [1, len, dim], device)));
    let a: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
    let b: Vec<f64> = (0..n).map(|i| ((i * 53 % 7) as f64 - 3.0) / 2.0).collect();
    let ab: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let fa = to_host(model.apply(from_host::<B, 3>(&ab, [1, len, dim], device)));
    let expect = &h * nalgebra::DVector::from_vec(ab);
    let scale = 1.0 + expect.amax();
    let off = zero.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
    let err = fa
        .iter()
        .zip(expect.iter())
        .fold(0.0f64, |acc, (u, v)| acc.max((u - v).abs()));
    if off > 1e-5 * scale || err > 1e-4 * scale {
        return Err(Error::Invalid(format!(
            "{} is not linear (|A(0)| = {off:.2e}, additivity error {err:.2e}); \
             the exact Gaussian oracle needs a linear observation",
            model.describe()
        )));
    }
    Ok(h)
}

/// The blocks `A_i` (p_i × D) of a **linear** observation that factorises over states
/// (`y[parts[i]] = A_i x_i`, [`ObservationModel::state_parts`]): A applied to the basis
/// trajectories of the observed states only, in batches of at most 2²² values — D basis
/// trajectories per observed state instead of [`linear_matrix`]'s L·D, and no p × L·D matrix
/// (2.3 GB for every 4th of 1 024 sites at every 4th of 65 states). `None` for a state nothing
/// observes. An error if A is not linear on a fixed pseudo-random pair.
pub fn linear_state_blocks<B: Backend>(
    model: &dyn ObservationModel<B>,
    parts: &[std::ops::Range<usize>],
    device: &B::Device,
) -> Result<Vec<Option<DMatrix<f64>>>> {
    let TrajectoryShape { len, dim } = model.trajectory_shape();
    let n = len * dim;
    let m = model.output_dim();
    if parts.len() != len {
        return Err(Error::Shape(format!(
            "{} parts for a trajectory of {len} states",
            parts.len()
        )));
    }
    let batch = (BASIS_BATCH_VALUES / n.max(1)).clamp(1, dim.max(1));
    let mut blocks = Vec::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            blocks.push(None);
            continue;
        }
        let mut h = DMatrix::zeros(part.len(), dim);
        for start in (0..dim).step_by(batch) {
            let count = batch.min(dim - start);
            let mut basis = vec![0.0; count * n];
            for j in 0..count {
                basis[j * n + i * dim + start + j] = 1.0;
            }
            let cols = to_host(model.apply(from_host::<B, 3>(&basis, [count, len, dim], device)));
            for j in 0..count {
                h.column_mut(start + j)
                    .copy_from_slice(&cols[j * m + part.start..j * m + part.end]);
            }
        }
        blocks.push(Some(h));
    }
    // linearity check: A(a) against the blocks' Σ A_i a_i for a fixed pseudo-random a
    let a: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
    let fa = to_host(model.apply(from_host::<B, 3>(&a, [1, len, dim], device)));
    let mut err = 0.0f64;
    let mut scale = 1.0f64;
    for (i, (part, h)) in parts.iter().zip(&blocks).enumerate() {
        let Some(h) = h else { continue };
        let expect = h * nalgebra::DVector::from_column_slice(&a[i * dim..(i + 1) * dim]);
        scale = scale.max(1.0 + expect.amax());
        for (u, v) in fa[part.clone()].iter().zip(expect.iter()) {
            err = err.max((u - v).abs());
        }
    }
    if err > 1e-4 * scale {
        return Err(Error::Invalid(format!(
            "{} is not linear (error {err:.2e} of its per-state blocks); the classical \
             smoothers take a linear observation",
            model.describe()
        )));
    }
    Ok(blocks)
}

/// `impl ObservationModel` for a pointer type (`Box<T>`, `&T`) that forwards every method,
/// the default ones included, to the pointee — so a wrapped model answers exactly like the bare
/// one (a forwarding impl that leaves out a default method silently answers with the default).
macro_rules! forward_observation {
    ($($ptr:ty),*) => {$(
        impl<B: Backend, T: ObservationModel<B> + ?Sized> ObservationModel<B> for $ptr {
            fn trajectory_shape(&self) -> TrajectoryShape {
                (**self).trajectory_shape()
            }
            fn output_dim(&self) -> usize {
                (**self).output_dim()
            }
            fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
                (**self).apply(x)
            }
            fn noise_std(&self) -> Vec<f64> {
                (**self).noise_std()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn image_layout(&self) -> Option<[usize; 4]> {
                (**self).image_layout()
            }
            fn observed_states(&self) -> Option<Vec<usize>> {
                (**self).observed_states()
            }
            fn state_parts(&self) -> Option<Vec<Range<usize>>> {
                (**self).state_parts()
            }
            fn link(&self) -> Option<(Link, Box<dyn ObservationModel<B>>)> {
                (**self).link()
            }
            fn state_log_likelihood(
                &self,
                y: &[f64],
                state: usize,
                xs: &[f64],
                device: &B::Device,
            ) -> Result<Vec<f64>> {
                (**self).state_log_likelihood(y, state, xs, device)
            }
            fn sample(&self, x: Tensor<B, 3>, noise: &mut NoiseSource) -> Tensor<B, 2> {
                (**self).sample(x, noise)
            }
            fn log_likelihood(&self, y: &[f64], x: Tensor<B, 3>) -> Tensor<B, 1> {
                (**self).log_likelihood(y, x)
            }
        }
    )*};
}
forward_observation!(Box<T>, &T);
