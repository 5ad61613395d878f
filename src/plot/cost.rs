//! The cost figures of evaluations (`sda plot EVALUATION_DIR…`): each method's median accuracy
//! against what it spent — the W1 ratio against the network passes per sample where particle
//! filters give a reference, the RMSE to the truth against the seconds per window where none
//! does (a ring too large for them, where the classical smoothers are drawn too).

use std::path::Path;

use plotters::prelude::*;

use super::{plot_err, with_legend, write_png_atomic, Mark, LEGEND_WIDTH};
use crate::{Error, Result};

/// One method of one evaluation.
#[derive(Debug, Clone)]
pub struct CostPoint {
    /// The legend label (evaluation and method).
    pub label: String,
    /// The cost: network passes per sample (forward-equivalents), or seconds per window.
    pub cost: f64,
    /// The accuracy: the median W1(·, BPF) / W1(BPF′, BPF), or the median RMSE to the truth.
    pub value: f64,
}

/// The axes of a cost figure.
#[derive(Debug, Clone)]
pub struct CostAxes {
    /// What the cost is (x axis, logarithmic).
    pub x_desc: String,
    /// What the accuracy is (y axis, logarithmic).
    pub y_desc: String,
    /// A dashed horizontal reference line and its legend entry (the second particle filter's
    /// ratio 1), if any.
    pub reference: Option<(f64, String)>,
}

/// Each point's accuracy against its cost, both axes logarithmic, with the reference line if
/// any.
pub fn cost_png(path: &Path, points: &[CostPoint], title: &str, axes: &CostAxes) -> Result<()> {
    let points: Vec<&CostPoint> = points
        .iter()
        .filter(|p| p.cost > 0.0 && p.value.is_finite() && p.value > 0.0)
        .collect();
    if points.is_empty() {
        return Err(Error::Invalid(
            "no method with a positive cost and a finite accuracy to draw (rows written before \
             passes were counted have none)"
                .into(),
        ));
    }
    let (x_lo, x_hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.cost), b.max(p.cost))
    });
    let line = axes.reference.as_ref().map(|r| r.0);
    let (y_lo, y_hi) = points
        .iter()
        .map(|p| p.value)
        .chain(line)
        .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let colour = |i: usize| Palette99::pick(i).to_rgba();
    let mut keys: Vec<(String, Mark)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.label.clone(), Mark::Point(colour(i))))
        .collect();
    if let Some((_, label)) = &axes.reference {
        keys.push((label.clone(), Mark::Line(BLACK.into(), 1)));
    }
    write_png_atomic(path, (760 + LEGEND_WIDTH, 480), |root| {
        let charts = with_legend(&root, &keys)?;
        let mut chart = ChartBuilder::on(&charts)
            .margin(12)
            .caption(title, ("sans-serif", 16))
            .x_label_area_size(40)
            .y_label_area_size(56)
            // y is drawn as log10 on a linear axis, labelled in values: a narrow range (RMSEs
            // within a factor of 2) still gets ticks, which a log axis puts only at decades
            .build_cartesian_2d(
                (x_lo / 1.5..x_hi * 1.5).log_scale(),
                (y_lo / 1.25).log10()..(y_hi * 1.25).log10(),
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(axes.x_desc.as_str())
            .y_desc(axes.y_desc.as_str())
            .x_label_formatter(&|v| {
                if *v >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            })
            .y_label_formatter(&|v| format!("{:.2}", 10f64.powf(*v)))
            .draw()
            .map_err(plot_err)?;
        if let Some(y) = line {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_lo / 1.5, y.log10()), (x_hi * 1.5, y.log10())],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Circle::new((p.cost, p.value.log10()), 5, colour(i).filled())),
            )
            .map_err(plot_err)?;
        Ok(())
    })
}
