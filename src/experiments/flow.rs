//! The Kolmogorov-flow experiment (paper §4.2) as library calls: what is particular to
//! fields — the residual check `std(A(x) − y) ≈ σ_y`, vorticity figures, and the Figure-5
//! re-simulation of samples. The trained U-Net prior and its posteriors are the same as every
//! other prior's ([`crate::checkpoint::TrainedPrior`], [`crate::experiments::posterior`]).
//! States are `(u, v)` on the learning grid, unnormalised, flattened `[2, n, n]`.

use burn::tensor::backend::Backend;

use crate::backend::{from_host, to_host};
use crate::observe::ObservationModel;
use crate::systems::kolmogorov::vorticity_from_velocity;
use crate::{Error, Result};

/// The residual standard deviation `sqrt(mean((A(x) − y)²))` over samples and observed values:
/// close to σ_y for a posterior consistent with the observation.
pub fn residual_std<B: Backend>(
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    x: &[f64],
    device: &B::Device,
) -> f64 {
    let s = observation.trajectory_shape();
    let n = x.len() / (s.len * s.dim);
    let ax = to_host(observation.apply(from_host::<B, 3>(x, [n, s.len, s.dim], device)));
    let m = y.len();
    let ss: f64 = ax
        .chunks_exact(m)
        .flat_map(|row| row.iter().zip(y).map(|(a, b)| (a - b).powi(2)))
        .sum();
    (ss / (n * m) as f64).sqrt()
}

/// The vorticity of every `every`-th state of one trajectory `[L·2n²]`.
pub fn vorticity_strip(x: &[f64], len: usize, grid: usize, every: usize) -> Vec<Vec<f64>> {
    let d = 2 * grid * grid;
    (0..len)
        .step_by(every.max(1))
        .map(|s| {
            let st = &x[s * d..(s + 1) * d];
            vorticity_from_velocity(&st[..grid * grid], &st[grid * grid..], grid)
        })
        .collect()
}

/// The observed images of `y` laid out as `layout = [S, C, H, W]` (see
/// [`ObservationModel::image_layout`]), one field per observed state for a figure row:
/// the vorticity by circular central differences on the observed `H × H` grid when `C = 2`
/// (velocity), the observed scalar when `C = 1`; each is enlarged to `grid × grid` by
/// repeating cells. A cropped observation is drawn stretched to the panel, and its edge cells
/// wrap around the crop. `None` when the layout is not square images that divide the grid.
pub fn observation_strip(y: &[f64], layout: [usize; 4], grid: usize) -> Option<Vec<Vec<f64>>> {
    let [s, c, h, w] = layout;
    if h != w
        || h == 0
        || !grid.is_multiple_of(h)
        || !(c == 1 || c == 2)
        || y.len() != s * c * h * w
    {
        return None;
    }
    let r = grid / h;
    let fields = y
        .chunks_exact(c * h * h)
        .map(|img| {
            let field = if c == 2 {
                vorticity_from_velocity(&img[..h * h], &img[h * h..], h)
            } else {
                img.to_vec()
            };
            (0..grid * grid)
                .map(|p| field[(p / grid / r) * h + (p % grid) / r])
                .collect()
        })
        .collect();
    Some(fields)
}

/// The observation row of a figure whose columns show the states `shown`: the observed images
/// of `y` ([`observation_strip`]) placed under the columns of the states they observe
/// (`observed[i]` is the state of image i, [`ObservationModel::observed_states`]), empty
/// (blank) fields elsewhere. When `observed` is unknown the images are drawn from the first
/// column on. `None` when y is not drawable images or when no observed state is shown.
///
/// [`ObservationModel::observed_states`]: crate::observe::ObservationModel::observed_states
pub fn observation_row(
    y: &[f64],
    layout: [usize; 4],
    observed: Option<&[usize]>,
    shown: &[usize],
    grid: usize,
) -> Option<Vec<Vec<f64>>> {
    let images = observation_strip(y, layout, grid)?;
    let Some(observed) = observed.filter(|o| o.len() == images.len()) else {
        return Some(images);
    };
    let row: Vec<Vec<f64>> = shown
        .iter()
        .map(|s| {
            observed
                .iter()
                .position(|o| o == s)
                .map(|i| images[i].clone())
                .unwrap_or_default()
        })
        .collect();
    row.iter().any(|f| !f.is_empty()).then_some(row)
}

/// The observation row of a figure showing every `every`-th of `len` states:
/// [`observation_row`] with the layout and observed states that `observation` reports; `None`
/// when y is not drawable images.
pub fn observation_figure_row<B: Backend>(
    observation: &dyn ObservationModel<B>,
    y: &[f64],
    len: usize,
    every: usize,
    grid: usize,
) -> Option<Vec<Vec<f64>>> {
    let shown: Vec<usize> = (0..len).step_by(every.max(1)).collect();
    let layout = observation.image_layout()?;
    observation_row(
        y,
        layout,
        observation.observed_states().as_deref(),
        &shown,
        grid,
    )
}

/// "every state", "every 2nd state", "every 3rd state", "every 4th state", … for figure titles.
pub fn every_nth_state(every: usize) -> String {
    let suffix = match (every % 10, every % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    if every <= 1 {
        "every state".into()
    } else {
        format!("every {every}{suffix} state")
    }
}

/// The physical-consistency check of the paper's Figure 5 for one sampled trajectory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resimulation {
    /// The re-simulated trajectory on the learning grid (`[L·2n²]`).
    pub resimulated: Vec<f64>,
    /// Per state i ≥ 1: RMS distance between the sample and the re-simulation.
    pub distance: Vec<f64>,
    /// Per state i ≥ 1: RMS distance between the sample and its first state (persistence).
    pub persistence: Vec<f64>,
}

/// Figure 5's check: the sample's first state is lifted to the solver grid (its vorticity
/// `ω̂ = i k_x v̂ − i k_y û` computed spectrally on the learning grid and zero-padded to the
/// solver's modes, then dealiased), re-simulated with the solver for `L − 1` snapshot intervals and coarsened back by mean
/// pooling; the distance to the sampled trajectory is compared with the persistence baseline
/// (the first state held constant). A sample that obeys the dynamics stays closer to its
/// re-simulation than to persistence.
pub fn resimulate(
    sample: &[f64],
    len: usize,
    system: &crate::systems::kolmogorov::Kolmogorov,
) -> Result<Resimulation> {
    let cfg = system.config();
    let n = system.coarse_grid();
    let d = 2 * n * n;
    if sample.len() != len * d || len < 2 {
        return Err(Error::Shape(format!(
            "a trajectory of {} values is not {len} ≥ 2 states of (u, v) on the {n}² grid of \
             the solver configuration ({}² coarsened {}×)",
            sample.len(),
            cfg.grid,
            cfg.coarsen
        )));
    }
    let solver = system.solver();
    let mut ws = solver.workspace();
    let mut w = lift_vorticity(&sample[..d], n, cfg.grid)?;
    solver.dealias(&mut w);
    let mut resimulated = system.coarse_velocity(&w, &mut ws);
    for _ in 1..len {
        solver.advance(&mut w, cfg.snapshot_dt, cfg.cfl, &mut ws);
        resimulated.extend(system.coarse_velocity(&w, &mut ws));
    }
    let rms = |a: &[f64], b: &[f64]| -> f64 {
        (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
    };
    let (mut distance, mut persistence) = (Vec::new(), Vec::new());
    for i in 1..len {
        let s = &sample[i * d..(i + 1) * d];
        distance.push(rms(s, &resimulated[i * d..(i + 1) * d]));
        persistence.push(rms(s, &sample[..d]));
    }
    Ok(Resimulation {
        resimulated,
        distance,
        persistence,
    })
}

/// The spectral vorticity on the `fine` grid of a velocity field `(u, v)` that is the
/// `f × f` mean pooling (`f = fine / n`) of a fine field: `ω̂ = i k_x v̂ − i k_y û` on the
/// coarse modes (Nyquist modes dropped), shifted by the `(f − 1)/2` fine cells between a coarse
/// sample and the centre of the block it averages, divided by the block average's transfer
/// function `H(k) = sin(k f h/2) / (f sin(k h/2))` per axis (`h = 2π / fine`), placed into the
/// fine grid's `[k_x][k_y]` layout and rescaled for the unnormalised transform. Pooling the
/// velocity of the result returns the input up to the dropped and aliased modes.
pub fn lift_vorticity(
    uv: &[f64],
    n: usize,
    fine: usize,
) -> Result<Vec<crate::systems::kolmogorov::spectral::C64>> {
    use crate::systems::kolmogorov::spectral::{SpectralGrid, C64};
    if uv.len() != 2 * n * n || fine < n {
        return Err(Error::Shape(format!(
            "cannot lift {} values as (u, v) on {n}² to a {fine}² grid",
            uv.len()
        )));
    }
    let coarse = SpectralGrid::new(n)?;
    let target = SpectralGrid::new(fine)?;
    let mut scratch = coarse.scratch();
    let mut uh = vec![C64::default(); coarse.spectral_len()];
    let mut vh = uh.clone();
    coarse.forward(&uv[..n * n], &mut uh, &mut scratch);
    coarse.forward(&uv[n * n..], &mut vh, &mut scratch);
    let scale = (fine as f64 / n as f64).powi(2);
    let f = fine / n;
    let h = 2.0 * std::f64::consts::PI / fine as f64;
    let shift = 0.5 * (f as f64 - 1.0) * h;
    // block average transfer function (1 at k = 0)
    let box_avg = |k: f64| {
        let den = f as f64 * (0.5 * k * h).sin();
        if den.abs() < 1e-12 {
            1.0
        } else {
            (0.5 * k * f as f64 * h).sin() / den
        }
    };
    let mut out = vec![C64::default(); target.spectral_len()];
    let half = (n / 2) as f64;
    for (a, &kx) in coarse.kx.iter().enumerate() {
        for (b, &ky) in coarse.ky.iter().enumerate() {
            if kx == half || ky.abs() == half {
                continue;
            }
            let i = a * n + b;
            let phase = C64::from_polar(1.0, -(kx + ky) * shift);
            let w = (C64::new(0.0, kx) * vh[i] - C64::new(0.0, ky) * uh[i]) * phase
                / (box_avg(kx) * box_avg(ky));
            let bf = if ky >= 0.0 {
                ky as usize
            } else {
                (fine as f64 + ky) as usize
            };
            out[a * fine + bf] = w * scale;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observation_row_places_images_under_their_states() {
        // two 1×1×2×2 images observing states 0 and 4; the figure shows states 0, 2, 4, 6, 8
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let row = observation_row(&y, [2, 1, 2, 2], Some(&[0, 4]), &[0, 2, 4, 6, 8], 2).unwrap();
        assert_eq!(row.len(), 5);
        assert_eq!(row[0], vec![1.0, 2.0, 3.0, 4.0]);
        assert!(row[1].is_empty() && row[3].is_empty() && row[4].is_empty());
        assert_eq!(row[2], vec![5.0, 6.0, 7.0, 8.0]);
        // no observed state among the shown ones: no row
        assert!(observation_row(&y, [2, 1, 2, 2], Some(&[1, 3]), &[0, 2], 2).is_none());
        // unknown states: images from the first column on
        let row = observation_row(&y, [2, 1, 2, 2], None, &[0, 2, 4], 2).unwrap();
        assert_eq!(row.len(), 2);
    }

    #[test]
    fn every_nth_state_reads_as_english() {
        assert_eq!(every_nth_state(1), "every state");
        assert_eq!(every_nth_state(2), "every 2nd state");
        assert_eq!(every_nth_state(3), "every 3rd state");
        assert_eq!(every_nth_state(4), "every 4th state");
        assert_eq!(every_nth_state(11), "every 11th state");
        assert_eq!(every_nth_state(21), "every 21st state");
    }

    #[test]
    fn observation_strip_enlarges_observed_images() {
        // one scalar 2 × 2 image on a 4 × 4 panel: each value fills a 2 × 2 block
        let fields = observation_strip(&[1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], 4).unwrap();
        assert_eq!(
            fields,
            vec![vec![
                1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0
            ]]
        );
        // two velocity images become their vorticity
        let (u, v) = ([0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]);
        let y: Vec<f64> = [u, v, u, v].concat();
        let fields = observation_strip(&y, [2, 2, 2, 2], 2).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0], vorticity_from_velocity(&u, &v, 2));
        // not images of the panel's grid, or a wrong length
        assert!(observation_strip(&[0.0; 9], [1, 1, 3, 3], 4).is_none());
        assert!(observation_strip(&[0.0; 3], [1, 1, 2, 2], 4).is_none());
        assert!(observation_strip(&[0.0; 8], [1, 2, 2, 2], 4).is_some());
    }
}
