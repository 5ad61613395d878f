//! Figures of fields: the diverging colour map, vorticity strips and rows (the paper's
//! Figures 4 and 5) and the energy spectrum of the Kolmogorov solver.

use std::path::Path;

use plotters::prelude::*;

use super::{plot_err, with_legend, write_png_atomic, Mark, LEGEND_WIDTH};
use crate::{Error, Result};

/// Diverging colour map (blue – white – red) of `t ∈ [−1, 1]`: negative blue, positive red.
pub fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (end, s) = if t < 0.0 {
        ((33.0, 102.0, 172.0), -t)
    } else {
        ((178.0, 24.0, 43.0), t)
    };
    let mix = |a: f64| (255.0 + (a - 255.0) * s).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// A strip of scalar fields (n × n each, row-major `[iy][ix]`, y drawn upwards) side by side,
/// with one shared symmetric colour scale and a colour bar: the view of every Kolmogorov
/// figure in the paper.
pub fn vorticity_strip_png(path: &Path, fields: &[Vec<f64>], n: usize, title: &str) -> Result<()> {
    vorticity_rows_png(path, &[(String::new(), fields.to_vec())], n, title)
}

/// Rows of scalar-field strips (e.g. truth / SDA / DPS, as in the paper's Figure 4), each row
/// labelled on its left, all sharing one symmetric colour scale and a colour bar. Rows may have
/// different lengths, and an empty field leaves its panel blank (an observation row draws each
/// observed image under the state it observes).
pub fn vorticity_rows_png(
    path: &Path,
    rows: &[(String, Vec<Vec<f64>>)],
    n: usize,
    title: &str,
) -> Result<()> {
    if rows.is_empty()
        || rows.iter().all(|r| r.1.iter().all(|f| f.is_empty()))
        || rows
            .iter()
            .flat_map(|r| &r.1)
            .any(|f| !f.is_empty() && f.len() != n * n)
    {
        return Err(Error::Shape(format!(
            "vorticity figure needs rows of {n}×{n} fields (empty for a blank panel), not all blank"
        )));
    }
    let vmax = rows
        .iter()
        .flat_map(|r| r.1.iter().flatten())
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-12);
    let cell = (192 / n).max(1) as u32;
    let side = cell * n as u32;
    let gap = 6u32;
    // about 7 px per character of the 13 px labels
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0) as u32;
    let label_w = if longest > 0 {
        (7 * longest + 12).max(90)
    } else {
        0
    };
    let k = rows.iter().map(|r| r.1.len()).max().unwrap_or(1) as u32;
    let width = label_w + k * side + (k + 1) * gap + 96;
    let height = rows.len() as u32 * (side + gap) + 44;
    write_png_atomic(path, (width, height), |root| {
        root.draw(&Text::new(
            title.to_string(),
            (gap as i32, 8),
            ("sans-serif", 15),
        ))
        .map_err(plot_err)?;
        for (r, (label, fields)) in rows.iter().enumerate() {
            let y0 = 36 + r as u32 * (side + gap);
            root.draw(&Text::new(
                label.clone(),
                (gap as i32, (y0 + side / 2) as i32 - 6),
                ("sans-serif", 13),
            ))
            .map_err(plot_err)?;
            for (p, f) in fields.iter().enumerate().filter(|(_, f)| !f.is_empty()) {
                let x0 = label_w + gap + p as u32 * (side + gap);
                for iy in 0..n {
                    for ix in 0..n {
                        let c = diverging(f[iy * n + ix] / vmax);
                        let (px, py) = (x0 + ix as u32 * cell, y0 + (n - 1 - iy) as u32 * cell);
                        root.draw(&Rectangle::new(
                            [
                                (px as i32, py as i32),
                                ((px + cell) as i32, (py + cell) as i32),
                            ],
                            c.filled(),
                        ))
                        .map_err(plot_err)?;
                    }
                }
            }
        }
        // colour bar
        let bx = (label_w + gap + k * (side + gap) + 8) as i32;
        for j in 0..side as i32 {
            let t = 1.0 - 2.0 * j as f64 / side as f64;
            root.draw(&Rectangle::new(
                [(bx, 36 + j), (bx + 14, 37 + j)],
                diverging(t).filled(),
            ))
            .map_err(plot_err)?;
        }
        root.draw(&Text::new(
            format!("{vmax:+.2}"),
            (bx + 16, 32),
            ("sans-serif", 11),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            format!("{:+.2}", -vmax),
            (bx + 16, 36 + side as i32 - 10),
            ("sans-serif", 11),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            "0".to_string(),
            (bx + 16, 36 + side as i32 / 2 - 6),
            ("sans-serif", 11),
        ))
        .map_err(plot_err)?;
        // the colour bar's quantity, written upwards along it
        let upright = ("sans-serif", 13)
            .into_font()
            .transform(FontTransform::Rotate270);
        root.draw(&Text::new(
            "vorticity ω".to_string(),
            (bx + 60, 36 + side as i32 / 2 + 34),
            upright,
        ))
        .map_err(plot_err)?;
        Ok(())
    })
}

/// Log–log plot of a shell energy spectrum E(k), k ≥ 1, with the fitted slope over `fit`.
pub fn spectrum_png(path: &Path, spectrum: &[f64], slope: f64, fit: (usize, usize)) -> Result<()> {
    let pts: Vec<(f64, f64)> = spectrum
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, e)| **e > 0.0)
        .map(|(k, e)| (k as f64, *e))
        .collect();
    if pts.len() < 2 {
        return Err(Error::Shape(
            "spectrum has fewer than two positive shells".into(),
        ));
    }
    let (lo, hi) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let kmax = pts.last().map(|p| p.0).unwrap_or(2.0);
    let keys = [
        (
            "energy spectrum E(k)".to_string(),
            Mark::Line(BLUE.into(), 2),
        ),
        (
            "k^-3 (enstrophy cascade)".to_string(),
            Mark::Line(BLACK.mix(0.6), 1),
        ),
    ];
    write_png_atomic(path, (640 + LEGEND_WIDTH, 480), |root| {
        let charts = with_legend(&root, &keys)?;
        let mut chart = ChartBuilder::on(&charts)
            .margin(12)
            .caption(
                format!(
                    "Time-averaged energy spectrum (slope {slope:.2} on k ∈ [{}, {}])",
                    fit.0, fit.1
                ),
                ("sans-serif", 16),
            )
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d((1f64..kmax).log_scale(), (lo * 0.5..hi * 2.0).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("wavenumber |k|")
            .y_desc("E(k)")
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), BLUE.stroke_width(2)))
            .map_err(plot_err)?;
        let anchor = spectrum[fit.0].max(1e-300);
        let ref_line =
            [fit.0 as f64, fit.1 as f64].map(|k| (k, anchor * (k / fit.0 as f64).powf(-3.0) * 2.0));
        chart
            .draw_series(LineSeries::new(ref_line, BLACK.mix(0.6)))
            .map_err(plot_err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vorticity_rows_draw_blank_panels_and_reject_bad_fields() {
        let dir = std::env::temp_dir().join(format!("sda-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.png");
        let field = vec![0.5; 4];
        let rows = vec![
            ("truth".to_string(), vec![field.clone(), field.clone()]),
            ("observation".to_string(), vec![field.clone(), Vec::new()]),
        ];
        vorticity_rows_png(&path, &rows, 2, "blank panel").unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        // a field of the wrong size, and a figure with nothing to draw, are shape errors
        let bad = vec![("x".to_string(), vec![vec![0.0; 3]])];
        assert!(matches!(
            vorticity_rows_png(&path, &bad, 2, ""),
            Err(Error::Shape(_))
        ));
        let blank = vec![("x".to_string(), vec![Vec::new()])];
        assert!(matches!(
            vorticity_rows_png(&path, &blank, 2, ""),
            Err(Error::Shape(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
