//! Evaluating a trajectory noise model in pieces: `ε(x)` of a batch of trajectories is the
//! concatenation of `ε` on sub-batches, because every [`EpsilonModel`] here acts on each
//! trajectory independently (the composed prior by construction; SDA and DPS guidance with a
//! per-sample likelihood). [`Chunked`] exploits it to keep intermediate tensors cache-sized and
//! to use every core: the sub-batches are evaluated in parallel (rayon) and concatenated in
//! order, so the result does not depend on the number of threads.

use burn::tensor::{backend::Backend, Tensor};
use rayon::prelude::*;

use super::{EpsilonModel, Passes};
use crate::schedule::NoiseSchedule;
use crate::Result;

/// An [`EpsilonModel`] evaluated on sub-batches of at most `samples` trajectories.
pub struct Chunked<E> {
    inner: E,
    samples: usize,
}

impl<E> Chunked<E> {
    /// Wraps `inner`; `samples` (≥ 1) trajectories per sub-batch.
    pub fn new(inner: E, samples: usize) -> Self {
        Self {
            inner,
            samples: samples.max(1),
        }
    }

    /// A sub-batch size giving about `rows` local-score windows (or states) per piece for
    /// trajectories of `len` states.
    pub fn for_rows(inner: E, rows: usize, len: usize) -> Self {
        Self::new(inner, rows / len.max(1))
    }
}

impl<B, E> EpsilonModel<B> for Chunked<E>
where
    B: Backend,
    E: EpsilonModel<B> + Sync,
    Tensor<B, 3>: Send,
{
    fn schedule(&self) -> &dyn NoiseSchedule {
        self.inner.schedule()
    }

    fn check_shape(&self, len: usize, dim: usize) -> Result<()> {
        self.inner.check_shape(len, dim)
    }

    fn epsilon(&self, x_t: Tensor<B, 3>, t: f64) -> Tensor<B, 3> {
        let n = x_t.dims()[0];
        if n <= self.samples {
            return self.inner.epsilon(x_t, t);
        }
        let pieces: Vec<Tensor<B, 3>> = (0..n)
            .step_by(self.samples)
            .map(|s| x_t.clone().narrow(0, s, self.samples.min(n - s)))
            .collect();
        let out: Vec<Tensor<B, 3>> = pieces
            .into_par_iter()
            .map(|x| self.inner.epsilon(x, t))
            .collect();
        Tensor::cat(out, 0)
    }

    fn passes(&self) -> Option<Passes> {
        self.inner.passes()
    }

    fn divergence_hint(&self) -> Option<String> {
        self.inner.divergence_hint()
    }
}
