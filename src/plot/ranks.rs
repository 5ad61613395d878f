//! Rank histograms (Anderson 1996; Hamill 2001): for each method, how often the truth falls at
//! rank r among its S samples, r = 0 … S, as a frequency relative to the flat histogram of a
//! calibrated method. A U shape is an under-dispersed method (the truth too often outside its
//! samples), a dome an over-dispersed one, a slope a biased one.

use std::path::Path;

use plotters::prelude::*;

use super::{plot_err, write_png_atomic};
use crate::{Error, Result};

/// One method's rank histogram: its label and the counts of ranks 0 … S.
#[derive(Debug, Clone)]
pub struct RankHistogram {
    /// The method's name.
    pub label: String,
    /// Counts of the truth at rank r, r = 0 … S.
    pub counts: Vec<usize>,
}

/// One panel per method, side by side: bars of `(S + 1) × frequency` per rank, the dashed line
/// at 1 the flat histogram.
pub fn rank_histograms_png(path: &Path, methods: &[RankHistogram], title: &str) -> Result<()> {
    let methods: Vec<&RankHistogram> = methods
        .iter()
        .filter(|m| m.counts.len() >= 2 && m.counts.iter().sum::<usize>() > 0)
        .collect();
    if methods.is_empty() {
        return Err(Error::Invalid("no rank histogram to draw".into()));
    }
    let relative: Vec<Vec<f64>> = methods
        .iter()
        .map(|m| {
            let total = m.counts.iter().sum::<usize>() as f64;
            let bins = m.counts.len() as f64;
            m.counts.iter().map(|&c| c as f64 / total * bins).collect()
        })
        .collect();
    let top = relative
        .iter()
        .flatten()
        .fold(1.5f64, |a, &v| a.max(v * 1.1));
    let width = 300 * methods.len() as u32;
    write_png_atomic(path, (width.max(420), 340), |root| {
        let (head, body) = root.split_vertically(30);
        head.titled(title, ("sans-serif", 16)).map_err(plot_err)?;
        let panels = body.split_evenly((1, methods.len()));
        for ((panel, m), rel) in panels.iter().zip(&methods).zip(&relative) {
            let bins = rel.len();
            let mut chart = ChartBuilder::on(panel)
                .margin(8)
                .caption(&m.label, ("sans-serif", 12))
                .x_label_area_size(32)
                .y_label_area_size(40)
                .build_cartesian_2d(-0.5f64..bins as f64 - 0.5, 0f64..top)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc("rank of the truth")
                .y_desc("frequency × (S + 1)")
                .x_labels(bins.min(11))
                .x_label_formatter(&|v| {
                    if (v - v.round()).abs() < 1e-6 {
                        format!("{v:.0}")
                    } else {
                        String::new()
                    }
                })
                .draw()
                .map_err(plot_err)?;
            chart
                .draw_series(rel.iter().enumerate().map(|(r, &v)| {
                    Rectangle::new(
                        [(r as f64 - 0.4, 0.0), (r as f64 + 0.4, v)],
                        BLUE.mix(0.6).filled(),
                    )
                }))
                .map_err(plot_err)?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(-0.5, 1.0), (bins as f64 - 0.5, 1.0)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        Ok(())
    })
}
