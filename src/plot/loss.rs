//! The training-loss figure of a training folder (`sda plot RUN_DIR`).

use std::path::Path;

use plotters::prelude::*;

use super::{plot_err, with_legend, write_png_atomic, Mark, LEGEND_WIDTH};
use crate::{Error, Result};

/// Steps in the running mean of the training loss.
const WINDOW: usize = 100;

/// The training loss of every step (light), its centred running mean over `WINDOW` (100) steps and
/// the validation loss (red points, `(step, loss)`) against the step (the loss of step i + 1 at
/// index i), on a logarithmic loss axis.
pub fn loss_png(path: &Path, loss: &[f32], valid: &[(usize, f32)], title: &str) -> Result<()> {
    let train: Vec<(f64, f64)> = loss
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite() && **l > 0.0)
        .map(|(i, &l)| ((i + 1) as f64, l as f64))
        .collect();
    if train.is_empty() {
        return Err(Error::Invalid(
            "the training log holds no positive finite loss to draw".into(),
        ));
    }
    // centred running mean, its window symmetric about each step (narrower near the ends)
    let mut prefix = vec![0.0];
    for &(_, l) in &train {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + l);
    }
    let mean: Vec<(f64, f64)> = (0..train.len())
        .map(|i| {
            let h = (WINDOW / 2).min(i).min(train.len() - 1 - i);
            let (a, b) = (i - h, i + h + 1);
            (train[i].0, (prefix[b] - prefix[a]) / (b - a) as f64)
        })
        .collect();
    let valid: Vec<(f64, f64)> = valid
        .iter()
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .map(|&(s, v)| (s as f64, v as f64))
        .collect();
    let (lo, hi) = train
        .iter()
        .chain(&valid)
        .fold((f64::INFINITY, 0.0f64), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let last = train.last().map_or(1.0, |p| p.0).max(2.0);
    let light = BLUE.mix(0.25);
    let mut keys = vec![
        (
            "training loss (each step)".to_string(),
            Mark::Line(light, 1),
        ),
        (
            format!("training loss, mean of {WINDOW} steps"),
            Mark::Line(BLUE.into(), 2),
        ),
    ];
    if !valid.is_empty() {
        keys.push(("validation loss".into(), Mark::Point(RED.into())));
    }
    write_png_atomic(path, (800 + LEGEND_WIDTH, 480), |root| {
        let charts = with_legend(&root, &keys)?;
        let mut chart = ChartBuilder::on(&charts)
            .margin(12)
            .caption(title, ("sans-serif", 16))
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(1f64..last, (lo * 0.8..hi * 1.25).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("loss (ε-matching mean squared error)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(train.iter().copied(), light))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(mean, BLUE.stroke_width(2)))
            .map_err(plot_err)?;
        chart
            .draw_series(valid.iter().map(|&p| Circle::new(p, 4, RED.filled())))
            .map_err(plot_err)?;
        Ok(())
    })
}
