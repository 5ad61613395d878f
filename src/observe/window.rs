//! The observation of a window of a longer trajectory: what SDA conditions on when it
//! assimilates a part of the trajectory that an [`ObservationModel`] observes — the sliding
//! windows of [`crate::experiments::filtering`], where each window sees only the observations
//! up to its last analysed state.

use std::ops::Range;

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use super::{checked_state_parts, ObservationModel};
use crate::{Error, Result, TrajectoryShape};

/// The part of an observation `y = A(x_{0:L}) + η` that falls on the states
/// `start … start + len − 1` of the trajectory, restricted to the states up to `last_observed`:
/// `y_w = (y_{parts[i]})_{start ≤ i ≤ min(last_observed, start + len − 1)}`, state-major, an
/// observation of the `len`-state window. The model must factorise over states
/// ([`ObservationModel::state_parts`]), so that those values depend on the window alone:
/// A is applied to the window placed in an otherwise-zero trajectory and the window's values
/// are read out (differentiable, so guidance sees the window's own likelihood).
///
/// A pointwise link of the whole observation ([`ObservationModel::link`]) is not carried over:
/// the window is for SDA, whose guidance differentiates through A itself.
pub struct SubWindow<'a, B: Backend> {
    inner: &'a dyn ObservationModel<B>,
    start: usize,
    len: usize,
    /// Indices of the whole observation's y that the window keeps, in window order.
    kept: Vec<usize>,
    /// The window's parts of its own y.
    parts: Vec<Range<usize>>,
}

impl<'a, B: Backend> SubWindow<'a, B> {
    /// The window of `len` states from `start` of the trajectories `inner` observes, seeing the
    /// observations of states up to `last_observed` (none after it). An error when the window
    /// leaves the trajectory or `inner` does not factorise over states.
    pub fn new(
        inner: &'a dyn ObservationModel<B>,
        start: usize,
        len: usize,
        last_observed: usize,
    ) -> Result<Self> {
        let whole = inner.trajectory_shape().len;
        if len == 0 || start.checked_add(len).is_none_or(|end| end > whole) {
            return Err(Error::Shape(format!(
                "a window of {len} states from state {start} is not inside the {whole} states \
                 that {} observes",
                inner.describe()
            )));
        }
        let whole_parts = checked_state_parts(inner)?;
        let mut kept = Vec::new();
        let mut parts = Vec::with_capacity(len);
        for (state, part) in whole_parts.iter().enumerate().skip(start).take(len) {
            let from = kept.len();
            if state <= last_observed {
                kept.extend(part.clone());
            }
            parts.push(from..kept.len());
        }
        Ok(Self {
            inner,
            start,
            len,
            kept,
            parts,
        })
    }

    /// The window's values of the whole observation `y` (its [`ObservationModel::output_dim`]
    /// values, in the window's order).
    pub fn select(&self, y: &[f64]) -> Result<Vec<f64>> {
        if y.len() != self.inner.output_dim() {
            return Err(Error::Shape(format!(
                "an observation of {} values is not one of {} ({} values)",
                y.len(),
                self.inner.describe(),
                self.inner.output_dim()
            )));
        }
        Ok(self.kept.iter().map(|&i| y[i]).collect())
    }

    /// Whether no state of the window is observed (the window's posterior is the prior).
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

impl<B: Backend> ObservationModel<B> for SubWindow<'_, B> {
    fn trajectory_shape(&self) -> TrajectoryShape {
        TrajectoryShape::new(self.len, self.inner.trajectory_shape().dim)
    }

    fn output_dim(&self) -> usize {
        self.kept.len()
    }

    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let device = x.device();
        let [n, _, d] = x.dims();
        let whole = self.inner.trajectory_shape().len;
        let after = whole - self.start - self.len;
        let mut pieces = Vec::with_capacity(3);
        if self.start > 0 {
            pieces.push(Tensor::zeros([n, self.start, d], &device));
        }
        pieces.push(x);
        if after > 0 {
            pieces.push(Tensor::zeros([n, after, d], &device));
        }
        let y = self.inner.apply(Tensor::cat(pieces, 1));
        let idx: Vec<i64> = self.kept.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [self.kept.len()]), &device);
        y.select(1, idx)
    }

    fn noise_std(&self) -> Vec<f64> {
        let std = self.inner.noise_std();
        self.kept.iter().map(|&i| std[i]).collect()
    }

    fn describe(&self) -> String {
        format!(
            "states {}–{} of {}",
            self.start,
            self.start + self.len - 1,
            self.inner.describe()
        )
    }

    fn state_parts(&self) -> Option<Vec<Range<usize>>> {
        Some(self.parts.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{from_host, to_host, DefaultBackend as B};
    use crate::observe::ops::Pick;

    #[test]
    fn a_window_reads_its_states_values_up_to_the_last_observed() {
        let device = Default::default();
        let shape = TrajectoryShape::new(10, 3);
        let pick = Pick::new(shape, vec![0, 2, 4, 6, 8], vec![0, 2], 0.5).unwrap();
        let x: Vec<f64> = (0..30).map(|v| v as f64 * 0.1).collect();
        let whole = to_host(ObservationModel::<B>::apply(
            &pick,
            from_host::<B, 3>(&x, [1, 10, 3], &device),
        ));
        // states 3–7, observations up to state 6: states 4 and 6 of the pick (y[4..8])
        let w = SubWindow::<B>::new(&pick, 3, 5, 6).unwrap();
        assert_eq!(w.output_dim(), 4);
        assert_eq!(w.select(&whole).unwrap(), whole[4..8].to_vec());
        let window = to_host(w.apply(from_host::<B, 3>(&x[9..24], [1, 5, 3], &device)));
        assert_eq!(window, whole[4..8].to_vec());
        assert_eq!(w.noise_std(), vec![0.5; 4]);
        assert_eq!(w.state_parts().unwrap(), vec![0..0, 0..2, 2..2, 2..4, 4..4]);
        checked_state_parts(&w).unwrap();
        // no observed state before the window's end
        let empty = SubWindow::<B>::new(&pick, 5, 1, 5).unwrap();
        assert!(empty.is_empty());
        // outside the trajectory, or a y of the wrong size: named errors
        assert!(SubWindow::<B>::new(&pick, 6, 5, 9).is_err());
        assert!(SubWindow::<B>::new(&pick, 0, 0, 9).is_err());
        assert!(w.select(&whole[1..]).is_err());
    }
}
