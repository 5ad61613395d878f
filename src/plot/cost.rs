//! The cost figure of evaluations: each method's median W1 ratio against the network passes it
//! spent per sample (`sda plot EVALUATION_DIR…`).

use std::path::Path;

use plotters::prelude::*;

use super::{plot_err, with_legend, write_png_atomic, Mark, LEGEND_WIDTH};
use crate::{Error, Result};

/// One method of one evaluation.
#[derive(Debug, Clone)]
pub struct CostPoint {
    /// The legend label (evaluation and method).
    pub label: String,
    /// Network passes per sample, in forward-equivalents.
    pub passes: f64,
    /// The median W1(·, BPF) / W1(BPF′, BPF) over the observations.
    pub w1_ratio: f64,
}

/// Each point's W1 ratio against its passes per sample, both axes logarithmic, with the second
/// particle filter's ratio (1 by construction) as a dashed line: the reference for "as good as a
/// second filter". `x_desc` says how passes were counted.
pub fn cost_png(path: &Path, points: &[CostPoint], title: &str, x_desc: &str) -> Result<()> {
    let points: Vec<&CostPoint> = points
        .iter()
        .filter(|p| p.passes > 0.0 && p.w1_ratio.is_finite() && p.w1_ratio > 0.0)
        .collect();
    if points.is_empty() {
        return Err(Error::Invalid(
            "no SDA row with counted network passes and a finite W1 ratio to draw (rows written \
             before passes were counted have none)"
                .into(),
        ));
    }
    let (x_lo, x_hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.passes), b.max(p.passes))
    });
    let y_hi = points.iter().fold(1.0f64, |a, p| a.max(p.w1_ratio));
    let colour = |i: usize| Palette99::pick(i).to_rgba();
    let mut keys: Vec<(String, Mark)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.label.clone(), Mark::Point(colour(i))))
        .collect();
    keys.push((
        "second particle filter (ratio 1)".into(),
        Mark::Line(BLACK.into(), 1),
    ));
    write_png_atomic(path, (760 + LEGEND_WIDTH, 480), |root| {
        let charts = with_legend(&root, &keys)?;
        let mut chart = ChartBuilder::on(&charts)
            .margin(12)
            .caption(title, ("sans-serif", 16))
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (x_lo / 1.5..x_hi * 1.5).log_scale(),
                (0.8f64..y_hi * 1.25).log_scale(),
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("median W1(SDA, BPF) / W1(BPF′, BPF)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(x_lo / 1.5, 1.0), (x_hi * 1.5, 1.0)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Circle::new((p.passes, p.w1_ratio), 5, colour(i).filled())),
            )
            .map_err(plot_err)?;
        Ok(())
    })
}
