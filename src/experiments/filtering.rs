//! SDA as a filter, beyond the paper: the posterior of each state given the observations up to
//! it, `p(x_i | y_{0:i})`, from SDA posteriors of sliding windows of `W` states — what an
//! ensemble filter (the LETKF, the Ensemble Score Filter) estimates, so SDA is scored beside
//! them on the same states ([`crate::methods::window_filter`] runs a filter through the same
//! trajectory).
//!
//! The windows ([`filter_windows`]): the states between two observed states, `o ≤ i < o′`,
//! are the analysis at `o` and its forecasts, all given `y_{0:o}`. One window of `W` states
//! ends at `o′ − 1` and sees the observations up to `o` (none after): SDA samples it, and its
//! states `o … o′ − 1` are the estimates of those states — one SDA posterior per observed
//! state, not one per state. The window reaches `W − (o′ − o)` states before `o`, so the filter
//! remembers the observations of those states only (a `W`-state memory, where a Kalman filter
//! carries all of the past in its ensemble). Windows near the start begin at state 0; states
//! before the first observed state, and states more than `W` after the last observed one, get
//! windows that see no observation: the prior's (unguided) samples, the climatology.
//!
//! [`sliding_window_filter`] assembles the estimates from any window sampler (checked against
//! the linear-Gaussian chain's Kalman filter with exact window posteriors);
//! [`filtering_posterior`] is SDA's ([`Sda`]: Algorithms 3–4 on each window).

use std::ops::Range;

use burn::tensor::backend::AutodiffBackend;

use super::posterior::Sda;
use crate::blanket::MarkovBlanket;
use crate::observe::window::SubWindow;
use crate::observe::{checked_state_parts, ObservationModel};
use crate::sampler::{SampleOptions, SampleReport};
use crate::{Error, Result, TrajectoryShape};

/// One window of the sliding-window filter ([`filter_windows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterWindow {
    /// The window's first state in the trajectory (it has `W` states).
    pub start: usize,
    /// The states whose filtering estimates the window gives (inside the window).
    pub states: Range<usize>,
    /// The last state whose observation the window sees; the window sees the observed states
    /// from `start` up to it (`None`: no observed state precedes these states).
    pub last_observed: Option<usize>,
}

/// The windows of `window` states (`W`) that give the filtering estimates of every state of a
/// trajectory observed state by state as `parts` ([`ObservationModel::state_parts`]; empty where
/// a state is not observed), in order; see the module docs. An error when `W` is 0 or longer
/// than the trajectory.
pub fn filter_windows(parts: &[Range<usize>], window: usize) -> Result<Vec<FilterWindow>> {
    let len = parts.len();
    if window == 0 || window > len {
        return Err(Error::Invalid(format!(
            "a filtering window of {window} states does not fit a trajectory of {len} states \
             (1 ≤ W ≤ L)"
        )));
    }
    let observed: Vec<usize> = (0..len).filter(|&i| !parts[i].is_empty()).collect();
    // the groups of states that share their last observed state
    let mut groups: Vec<(Range<usize>, Option<usize>)> = Vec::new();
    let first = observed.first().copied().unwrap_or(len);
    if first > 0 {
        groups.push((0..first, None));
    }
    for (j, &o) in observed.iter().enumerate() {
        let next = observed.get(j + 1).copied().unwrap_or(len);
        groups.push((o..next, Some(o)));
    }
    let mut windows = Vec::new();
    for (group, last_observed) in groups {
        let mut from = group.start;
        while from < group.end {
            let to = (from + window).min(group.end);
            windows.push(FilterWindow {
                start: to.saturating_sub(window),
                states: from..to,
                last_observed,
            });
            from = to;
        }
    }
    Ok(windows)
}

/// What a window sampler is given: the window's shape and observation, and its place in the
/// list of windows (for its seed).
pub struct WindowRequest<'w, 'a, B: burn::tensor::backend::Backend> {
    /// The window's trajectory shape (`W` states).
    pub shape: TrajectoryShape,
    /// The window's observation and its y; `None` when it sees no observed state.
    pub observed: Option<(&'w SubWindow<'a, B>, &'w [f64])>,
    /// The window's index in [`filter_windows`]' list.
    pub index: usize,
}

/// The filtering estimates (`[S·L·D]`, sample-major, in the sampler's units) of the `states`
/// (a range of the trajectory's; NaN elsewhere) of the trajectory that `observation` observes
/// as `y`, assembled from `draw`, which samples the posterior of each window
/// ([`filter_windows`]; those that estimate none of `states` are skipped) and returns
/// `samples` trajectories of it (`[S·W·D]`) and its cost; the reports are summed (seconds,
/// evaluations, passes). An error when the observation does not factorise over states, the
/// range leaves the trajectory or a window's samples have the wrong size.
pub fn sliding_window_filter<B: burn::tensor::backend::Backend>(
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    window: usize,
    samples: usize,
    states: Range<usize>,
    mut draw: impl FnMut(&WindowRequest<'_, '_, B>) -> Result<(Vec<f64>, SampleReport)>,
) -> Result<(Vec<f64>, SampleReport)> {
    crate::observe::check_observation(observation, y)?;
    let parts = checked_state_parts(observation)?;
    let TrajectoryShape { len, dim } = observation.trajectory_shape();
    if states.is_empty() || states.end > len {
        return Err(Error::Invalid(format!(
            "states {states:?} are not a range of the trajectory's {len}"
        )));
    }
    let shape = TrajectoryShape::new(window, dim);
    let mut out = vec![f64::NAN; samples * len * dim];
    let mut total = SampleReport {
        evaluations: 0,
        passes: Default::default(),
        samples,
        seconds: 0.0,
        steps: Vec::new(),
    };
    for (index, w) in filter_windows(&parts, window)?.into_iter().enumerate() {
        let estimated = w.states.start.max(states.start)..w.states.end.min(states.end);
        if estimated.is_empty() {
            continue;
        }
        let sub = match w.last_observed {
            Some(o) if o >= w.start => Some(SubWindow::new(observation, w.start, window, o)?),
            _ => None,
        };
        let y_sub = sub.as_ref().map(|s| s.select(y)).transpose()?;
        let request = WindowRequest {
            shape,
            observed: sub.as_ref().zip(y_sub.as_deref()),
            index,
        };
        let (x, report) = draw(&request)?;
        if x.len() != samples * window * dim {
            return Err(Error::Shape(format!(
                "the window sampler returned {} values for {samples} samples of {window}×{dim} \
                 states",
                x.len()
            )));
        }
        for s in 0..samples {
            for i in estimated.clone() {
                let from = (s * window + i - w.start) * dim;
                let to = (s * len + i) * dim;
                out[to..to + dim].copy_from_slice(&x[from..from + dim]);
            }
        }
        total.evaluations += report.evaluations;
        total.passes.forwards += report.passes.forwards;
        total.passes.vjps += report.passes.vjps;
        total.seconds += report.seconds;
        if total.steps.is_empty() {
            total.steps = report.steps;
        }
    }
    Ok((out, total))
}

/// SDA's filtering estimates (physical units, `[S·L·D]`) of the trajectory `observation`
/// observes as `y`: [`sliding_window_filter`] with `sda`'s posteriors of windows of `window`
/// states ([`Sda::posterior`]), and the prior's unguided samples for a window that sees no
/// observation ([`Sda::prior_samples`]); only the `states` asked for are estimated (NaN
/// elsewhere). Window `j` draws from `sda`'s seed mixed with `j`.
pub fn filtering_posterior<B: AutodiffBackend, M: MarkovBlanket<B>>(
    sda: &Sda<'_, B, M>,
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    window: usize,
    states: Range<usize>,
    device: &B::Device,
) -> Result<(Vec<f64>, SampleReport)> {
    let prior = sda.prior;
    crate::score::EpsilonModel::<B>::check_shape(&prior.composed, window, prior.dim())?;
    sliding_window_filter(
        observation,
        y,
        window,
        sda.opts.samples,
        states,
        |request| {
            let mixed = (request.index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let sda = Sda {
                opts: SampleOptions {
                    seed: sda.opts.seed.wrapping_add(mixed),
                    ..sda.opts.clone()
                },
                ..*sda
            };
            match request.observed {
                Some((sub, y_sub)) => sda.posterior(sub, y_sub, device),
                None => sda.prior_samples(request.shape, device),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(observed: &[usize], len: usize) -> Vec<Range<usize>> {
        crate::observe::state_major_parts(len, observed, 2)
    }

    #[test]
    fn one_window_per_observed_state_ending_before_the_next() {
        // observed every 4th state of 13, windows of 6 states
        let w = filter_windows(&parts(&[0, 4, 8, 12], 13), 6).unwrap();
        let expect = [(0, 0..4, 0), (2, 4..8, 4), (6, 8..12, 8), (7, 12..13, 12)];
        assert_eq!(w.len(), expect.len());
        for (w, (start, states, o)) in w.iter().zip(expect) {
            assert_eq!(
                (w.start, w.states.clone(), w.last_observed),
                (start, states, Some(o))
            );
        }
        // the first observed state is 2: states 0–1 see nothing; a gap longer than the window
        // is cut into windows of W states, the later ones seeing no observed state
        let w = filter_windows(&parts(&[2, 9], 12), 3).unwrap();
        let got: Vec<_> = w
            .iter()
            .map(|w| (w.start, w.states.clone(), w.last_observed))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0..2, None),
                (2, 2..5, Some(2)),
                (5, 5..8, Some(2)),
                (6, 8..9, Some(2)),
                (9, 9..12, Some(9)),
            ]
        );
        assert!(filter_windows(&parts(&[0], 5), 6).is_err());
        assert!(filter_windows(&parts(&[0], 5), 0).is_err());
    }
}
