//! Observation operators on trajectories of 2-D velocity fields (the Kolmogorov flow, paper
//! §4.2): each state is `(u, v)` on an n × n periodic grid over `[0, 2π)²`, flattened as
//! `[2, n, n]` (u first; row index y, column index x), so trajectories are `[N, L, 2·n·n]`.
//!
//! A [`FieldObservation`] is a pipeline of [`FieldOp`]s applied in order to a tensor
//! `[N, S, C, H, W]` (S states of C channels on an H × W grid), then flattened to y; every op
//! is differentiable, so guidance can take `∇_{x(t)}` through it. Composition is the point:
//! "every 4th state, then 8 × 8 mean pooling" is `[States(every 4), Pool(8)]`. The paper's
//! scenarios are [`FieldScenario`] presets. Shapes are checked once, at construction.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use super::ObservationModel;
use crate::{Error, Result, TrajectoryShape};

/// One step of a field-observation pipeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum FieldOp {
    /// Keep the listed states (0-based), in this order.
    States {
        /// State indices.
        states: Vec<usize>,
    },
    /// Keep every n-th state starting at state 0 (the paper's `x_{1:L:n}`).
    EveryState {
        /// n ≥ 1.
        every: usize,
    },
    /// Mean pooling by `factor × factor` blocks (coarsening).
    Pool {
        /// Pooling factor, dividing the grid size.
        factor: usize,
    },
    /// Keep every `stride`-th grid point in both directions (sparse sensors).
    Subsample {
        /// Stride ≥ 1, dividing the grid size.
        stride: usize,
    },
    /// Keep the square `[start, end) × [start, end)` of the grid.
    Crop {
        /// First kept index.
        start: usize,
        /// One past the last kept index.
        end: usize,
    },
    /// Vorticity in grid units, `Δx·ω = Δx·(∂_x v − ∂_y u)`: circular central differences
    /// with unit spacing, `(v[i, j+1] − v[i, j−1])/2 − (u[i+1, j] − u[i−1, j])/2` (channels
    /// 2 → 1). These are the units of the paper's observations (the reference implementation
    /// takes the gradient over grid indices): the circle's y = 0.6, the saturation
    /// `w/(1+|w|)` and the figures' colour range ±1.25 are stated in them. Physical
    /// `ω = w / Δx` with `Δx = 2π / n` at the grid the op sees.
    Vorticity,
    /// Saturation `w / (1 + |w|)`, elementwise (non-linear).
    Saturate,
    /// The grid points inside the ring `lo < r² < hi` of the square `[−1, 1]²` laid over the
    /// grid (cell centres); the output has those points only.
    Ring {
        /// Inner bound on r².
        lo: f64,
        /// Outer bound on r².
        hi: f64,
    },
    /// Loop closure `x_1 − x_S` (states S → 1).
    LoopClosure,
}

/// Shape `[S, C, H, W]` of the tensor between two ops (N excluded); `ring` is set once a
/// [`FieldOp::Ring`] has flattened the grid.
#[derive(Debug, Clone, PartialEq)]
struct Stage {
    states: usize,
    channels: usize,
    height: usize,
    width: usize,
    ring: Option<Vec<usize>>,
}

/// A composable observation of velocity-field trajectories: `y = ops(x) + N(0, σ_y² I)`.
#[derive(Debug, Clone)]
pub struct FieldObservation {
    shape: TrajectoryShape,
    grid: usize,
    ops: Vec<FieldOp>,
    /// Ring indices (into the flattened grid at that stage) for each op, when it is a ring.
    rings: Vec<Option<Vec<usize>>>,
    output: Stage,
    sigma: f64,
}

fn ring_indices(n: usize, lo: f64, hi: f64) -> Vec<usize> {
    let c = |i: usize| -1.0 + (2.0 * i as f64 + 1.0) / n as f64;
    (0..n * n)
        .filter(|&p| {
            let r2 = c(p / n).powi(2) + c(p % n).powi(2);
            lo < r2 && r2 < hi
        })
        .collect()
}

impl FieldObservation {
    /// Builds the pipeline for trajectories of `len` states of `(u, v)` on a `grid × grid`
    /// mesh, checking every op against the shape it receives.
    pub fn new(len: usize, grid: usize, ops: Vec<FieldOp>, sigma: f64) -> Result<Self> {
        if len == 0 || grid == 0 {
            return Err(Error::Shape(
                "field observation: empty trajectory or grid".into(),
            ));
        }
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::Invalid(format!(
                "observation noise sigma must be positive, got {sigma}"
            )));
        }
        let mut st = Stage {
            states: len,
            channels: 2,
            height: grid,
            width: grid,
            ring: None,
        };
        let mut rings = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let bad = |m: String| Error::Shape(format!("field observation step {i} ({op:?}): {m}"));
            let spatial = |st: &Stage| -> Result<()> {
                if st.ring.is_some() {
                    return Err(bad("the grid was already reduced to a ring".into()));
                }
                Ok(())
            };
            let mut ring = None;
            match op {
                FieldOp::States { states } => {
                    if states.is_empty() {
                        return Err(bad("no state selected".into()));
                    }
                    if let Some(&s) = states.iter().find(|&&s| s >= st.states) {
                        return Err(bad(format!(
                            "state {s} is outside the {} states (0-based)",
                            st.states
                        )));
                    }
                    st.states = states.len();
                }
                FieldOp::EveryState { every } => {
                    if *every == 0 {
                        return Err(bad("every must be ≥ 1".into()));
                    }
                    st.states = st.states.div_ceil(*every);
                }
                FieldOp::Pool { factor: f } | FieldOp::Subsample { stride: f } => {
                    spatial(&st)?;
                    if *f == 0 || !st.height.is_multiple_of(*f) || !st.width.is_multiple_of(*f) {
                        return Err(bad(format!(
                            "{f} does not divide the {}×{} grid",
                            st.height, st.width
                        )));
                    }
                    st.height /= f;
                    st.width /= f;
                }
                FieldOp::Crop { start, end } => {
                    spatial(&st)?;
                    if start >= end || *end > st.height.min(st.width) {
                        return Err(bad(format!(
                            "[{start}, {end}) is not inside the {}×{} grid",
                            st.height, st.width
                        )));
                    }
                    st.height = end - start;
                    st.width = end - start;
                }
                FieldOp::Vorticity => {
                    spatial(&st)?;
                    if st.channels != 2 || st.height != st.width || st.height < 3 {
                        return Err(bad(format!(
                            "needs (u, v) on a square grid of ≥ 3 points, got {} channel(s) on {}×{}",
                            st.channels, st.height, st.width
                        )));
                    }
                    st.channels = 1;
                }
                FieldOp::Saturate => {}
                FieldOp::Ring { lo, hi } => {
                    spatial(&st)?;
                    if st.height != st.width {
                        return Err(bad("needs a square grid".into()));
                    }
                    let idx = ring_indices(st.height, *lo, *hi);
                    if idx.is_empty() {
                        return Err(bad(format!(
                            "no grid point has {lo} < r² < {hi} on a {}² grid",
                            st.height
                        )));
                    }
                    st.ring = Some(idx.clone());
                    ring = Some(idx);
                }
                FieldOp::LoopClosure => {
                    if st.states < 2 {
                        return Err(bad("needs at least 2 states".into()));
                    }
                    st.states = 1;
                }
            }
            rings.push(ring);
        }
        Ok(Self {
            shape: TrajectoryShape::new(len, 2 * grid * grid),
            grid,
            ops,
            rings,
            output: st,
            sigma,
        })
    }

    /// The pipeline.
    pub fn ops(&self) -> &[FieldOp] {
        &self.ops
    }

    /// The grid size n of the observed states.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// Output shape `[S, C, H, W]` (`H·W` is the ring size and `W = 1` after a ring).
    pub fn output_shape(&self) -> [usize; 4] {
        let o = &self.output;
        match &o.ring {
            Some(r) => [o.states, o.channels, r.len(), 1],
            None => [o.states, o.channels, o.height, o.width],
        }
    }

    /// σ_y.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

/// Circular shift by `+1` (`dir = 1`) or `−1` along `axis`: `out[i] = x[i − dir]`.
fn roll<B: Backend>(x: Tensor<B, 5>, axis: usize, forward: bool) -> Tensor<B, 5> {
    let n = x.dims()[axis];
    if forward {
        // out[i] = x[i - 1]
        Tensor::cat(
            vec![x.clone().narrow(axis, n - 1, 1), x.narrow(axis, 0, n - 1)],
            axis,
        )
    } else {
        // out[i] = x[i + 1]
        Tensor::cat(
            vec![x.clone().narrow(axis, 1, n - 1), x.narrow(axis, 0, 1)],
            axis,
        )
    }
}

impl<B: Backend> ObservationModel<B> for FieldObservation {
    fn trajectory_shape(&self) -> TrajectoryShape {
        self.shape
    }

    /// The output shape, unless a ring or the loop closure made y something else than images
    /// of observed states.
    fn image_layout(&self) -> Option<[usize; 4]> {
        let flat = self.output.ring.is_some()
            || self.ops.iter().any(|op| matches!(op, FieldOp::LoopClosure));
        (!flat).then(|| self.output_shape())
    }

    /// The states left by the pipeline's `States` and `EveryState` ops, in order.
    fn observed_states(&self) -> Option<Vec<usize>> {
        <Self as ObservationModel<B>>::image_layout(self)?;
        let mut states: Vec<usize> = (0..self.shape.len).collect();
        for op in &self.ops {
            match op {
                FieldOp::States { states: keep } => {
                    states = keep.iter().map(|&i| states[i]).collect();
                }
                FieldOp::EveryState { every } => {
                    states = states.into_iter().step_by(*every).collect();
                }
                _ => {}
            }
        }
        Some(states)
    }

    fn output_dim(&self) -> usize {
        self.output_shape().iter().product()
    }

    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [n, len, _] = x.dims();
        let g = self.grid;
        let device = x.device();
        let mut t: Tensor<B, 5> = x.reshape([n, len, 2, g, g]);
        for (op, ring) in self.ops.iter().zip(&self.rings) {
            let [n, s, c, h, w] = t.dims();
            t = match op {
                FieldOp::States { states } => {
                    let idx = Tensor::<B, 1, Int>::from_data(
                        TensorData::new(states.iter().map(|&i| i as i64).collect(), [states.len()]),
                        &device,
                    );
                    t.select(1, idx)
                }
                FieldOp::EveryState { every } => {
                    let keep: Vec<i64> = (0..s).step_by(*every).map(|i| i as i64).collect();
                    let m = keep.len();
                    t.select(1, Tensor::from_data(TensorData::new(keep, [m]), &device))
                }
                FieldOp::Pool { factor: f } => t
                    .reshape([n * s * c * (h / f), *f, w / f, *f])
                    .mean_dim(3)
                    .mean_dim(1)
                    .reshape([n, s, c, h / f, w / f]),
                FieldOp::Subsample { stride: f } => t
                    .reshape([n * s * c * (h / f), *f, w / f, *f])
                    .narrow(3, 0, 1)
                    .narrow(1, 0, 1)
                    .reshape([n, s, c, h / f, w / f]),
                FieldOp::Crop { start, end } => {
                    t.narrow(3, *start, end - start)
                        .narrow(4, *start, end - start)
                }
                FieldOp::Vorticity => {
                    let u = t.clone().narrow(2, 0, 1);
                    let v = t.narrow(2, 1, 1);
                    // ∂_x v: x is the last axis; ∂_y u: y is axis 3
                    let dvdx = roll(v.clone(), 4, false) - roll(v, 4, true);
                    let dudy = roll(u.clone(), 3, false) - roll(u, 3, true);
                    (dvdx - dudy) / 2.0
                }
                FieldOp::Saturate => t.clone() / (t.abs() + 1.0),
                FieldOp::Ring { .. } => {
                    let idx = ring.as_ref().expect("ring indices are set at construction");
                    let m = idx.len();
                    let sel = Tensor::<B, 1, Int>::from_data(
                        TensorData::new(idx.iter().map(|&i| i as i64).collect(), [m]),
                        &device,
                    );
                    t.reshape([n, s, c, h * w, 1]).select(3, sel)
                }
                FieldOp::LoopClosure => t.clone().narrow(1, 0, 1) - t.narrow(1, s - 1, 1),
            };
        }
        let m = self.output_shape().iter().product::<usize>();
        t.reshape([n, m])
    }

    fn noise_std(&self) -> Vec<f64> {
        vec![self.sigma; <Self as ObservationModel<B>>::output_dim(self)]
    }

    fn describe(&self) -> String {
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|op| match op {
                FieldOp::States { states } => format!("states {states:?}"),
                FieldOp::EveryState { every } => format!("every {every}th state"),
                FieldOp::Pool { factor } => format!("{factor}×{factor} pooling"),
                FieldOp::Subsample { stride } => format!("every {stride}th grid point"),
                FieldOp::Crop { start, end } => format!("crop [{start}:{end}]²"),
                FieldOp::Vorticity => "vorticity".into(),
                FieldOp::Saturate => "w/(1+|w|)".into(),
                FieldOp::Ring { lo, hi } => format!("ring {lo}<r²<{hi}"),
                FieldOp::LoopClosure => "x_1 − x_L".into(),
            })
            .collect();
        format!("field: {} (σ_y={})", ops.join(" → "), self.sigma)
    }
}

/// The paper's Kolmogorov observation scenarios (reference setup), as presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldScenario {
    /// Every 4th state, 8 × 8 mean pooling, σ_y = 0.1.
    Assimilation,
    /// States 1, 4, 7 (0-based 0, 3, 6) coarsened 4×, centre crop `[4:12]²`, σ_y = 0.01.
    Extrapolation,
    /// Every 3rd state coarsened 4×, vorticity (grid units), `w/(1+|w|)`, crop `[2:14]²`, σ_y = 0.05.
    Saturation,
    /// Every n-th grid point of every state, σ_y = 0.1.
    Subsampling(usize),
    /// Vorticity (grid units) of the last state on the ring `0.4 < r² < 0.6`, σ_y = 0.2, y = 0.6.
    Circle,
    /// Loop closure `x_1 − x_L`, σ_y = 0.01, y = 0.
    Loop,
}

impl FieldScenario {
    /// The registered name of the preset.
    pub fn name(&self) -> String {
        match self {
            Self::Assimilation => "kolmogorov-assimilation".into(),
            Self::Extrapolation => "kolmogorov-extrapolation".into(),
            Self::Saturation => "kolmogorov-saturation".into(),
            Self::Subsampling(_) => "kolmogorov-subsampling".into(),
            Self::Circle => "kolmogorov-circle".into(),
            Self::Loop => "kolmogorov-loop".into(),
        }
    }

    /// The pipeline and σ_y of the scenario for trajectories of `len` states.
    pub fn ops(&self, len: usize) -> (Vec<FieldOp>, f64) {
        use FieldOp::*;
        match *self {
            Self::Assimilation => (vec![EveryState { every: 4 }, Pool { factor: 8 }], 0.1),
            Self::Extrapolation => (
                vec![
                    States {
                        states: vec![0, 3, 6],
                    },
                    Pool { factor: 4 },
                    Crop { start: 4, end: 12 },
                ],
                0.01,
            ),
            Self::Saturation => (
                vec![
                    EveryState { every: 3 },
                    Pool { factor: 4 },
                    Vorticity,
                    Saturate,
                    Crop { start: 2, end: 14 },
                ],
                0.05,
            ),
            Self::Subsampling(stride) => (vec![Subsample { stride }], 0.1),
            Self::Circle => (
                vec![
                    States {
                        states: vec![len.saturating_sub(1)],
                    },
                    Vorticity,
                    Ring { lo: 0.4, hi: 0.6 },
                ],
                0.2,
            ),
            Self::Loop => (vec![LoopClosure], 0.01),
        }
    }

    /// The observation model of the scenario for `len` states on a `grid²` mesh.
    pub fn build(&self, len: usize, grid: usize) -> Result<FieldObservation> {
        let (ops, sigma) = self.ops(len);
        FieldObservation::new(len, grid, ops, sigma).map_err(|e| {
            Error::Shape(format!(
                "scenario {} does not fit {len} states on a {grid}² grid: {e}",
                self.name()
            ))
        })
    }

    /// [`FieldScenario::fixed_y`] of the preset registered as `name` (`None` for other names).
    pub fn fixed_y_of(name: &str) -> Option<f64> {
        match name {
            "kolmogorov-circle" => Self::Circle.fixed_y(),
            "kolmogorov-loop" => Self::Loop.fixed_y(),
            _ => None,
        }
    }

    /// The prescribed observation value of scenarios that state an event instead of measuring
    /// a truth (circle: 0.6 on the ring; loop: 0), else `None`.
    pub fn fixed_y(&self) -> Option<f64> {
        match self {
            Self::Circle => Some(0.6),
            Self::Loop => Some(0.0),
            _ => None,
        }
    }
}

/// The grid size n of a state of flattened dimension `2·n²`, or an error.
pub fn grid_of(shape: TrajectoryShape) -> Result<usize> {
    let n = ((shape.dim / 2) as f64).sqrt().round() as usize;
    if n == 0 || 2 * n * n != shape.dim {
        return Err(Error::Shape(format!(
            "states of dimension {} are not (u, v) on a square grid (2·n²)",
            shape.dim
        )));
    }
    Ok(n)
}
