//! Hovmöller diagrams of a trajectory on a ring: site (vertical) against time (horizontal),
//! one panel per quantity — the truth, the observations, a posterior's mean and spread, its
//! error — the view of every Lorenz-96 assimilation figure in the data-assimilation literature.

use std::path::Path;

use plotters::prelude::*;

use super::field::diverging;
use super::{plot_err, write_png_atomic};
use crate::{Error, Result};

/// The sites drawn at most (the first ones): 2 px per site keeps a panel readable.
pub const HOVMOLLER_SITES: usize = 128;

/// How a panel's values are coloured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colouring {
    /// Blue–white–red, symmetric about 0, one scale shared by every signed panel (the states).
    Signed,
    /// White to black from 0 to the largest value of the magnitude panels, one scale shared by
    /// them (spreads and errors, comparable at a glance).
    Magnitude,
}

/// One panel: its label, `L × n` values (state-major; NaN leaves a cell grey, e.g. where
/// nothing is observed) and its colouring.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Label above the panel.
    pub label: String,
    /// `L × n` values, state-major.
    pub values: Vec<f64>,
    /// How the values are coloured.
    pub colouring: Colouring,
}

/// Panels stacked vertically, each `L` states wide and the first `min(n, 128)` sites high, the
/// signed ones sharing one colour scale and the magnitudes another; the scales are written in
/// the labels.
pub fn hovmoller_png(
    path: &Path,
    panels: &[Panel],
    len: usize,
    sites: usize,
    dt: Option<f64>,
    title: &str,
) -> Result<()> {
    if panels.is_empty() || len == 0 || sites == 0 {
        return Err(Error::Shape(
            "a Hovmöller figure needs panels of L × n values".into(),
        ));
    }
    if let Some(p) = panels.iter().find(|p| p.values.len() != len * sites) {
        return Err(Error::Shape(format!(
            "Hovmöller panel '{}' has {} values, not {len} × {sites}",
            p.label,
            p.values.len()
        )));
    }
    let shown = sites.min(HOVMOLLER_SITES);
    let finite_max = |p: &Panel| {
        (0..len)
            .flat_map(|i| p.values[i * sites..i * sites + shown].iter())
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-12)
    };
    let shared = |colouring| {
        panels
            .iter()
            .filter(|p| p.colouring == colouring)
            .map(finite_max)
            .fold(1e-12f64, f64::max)
    };
    let (signed, magnitude) = (shared(Colouring::Signed), shared(Colouring::Magnitude));
    let cell_w = (720 / len).clamp(1, 12) as u32;
    let cell_h = (256 / shown).clamp(1, 8) as u32;
    let (panel_w, panel_h) = (cell_w * len as u32, cell_h * shown as u32);
    let (left, head, gap) = (56u32, 40u32, 30u32);
    let width = left + panel_w + 24;
    let height = head + panels.len() as u32 * (panel_h + gap) + 24;
    let time = |i: usize| match dt {
        Some(dt) => format!("t = {:.2}", i as f64 * dt),
        None => format!("state {i}"),
    };
    write_png_atomic(path, (width.max(480), height), |root| {
        root.draw(&Text::new(title.to_string(), (8, 8), ("sans-serif", 15)))
            .map_err(plot_err)?;
        for (k, p) in panels.iter().enumerate() {
            let y0 = head + k as u32 * (panel_h + gap);
            let scale = match p.colouring {
                Colouring::Signed => signed,
                Colouring::Magnitude => magnitude,
            };
            let range = match p.colouring {
                Colouring::Signed => format!("(colour scale ±{scale:.2})"),
                Colouring::Magnitude => format!("(white 0, black {scale:.2})"),
            };
            root.draw(&Text::new(
                format!("{} {range}", p.label),
                (left as i32, y0 as i32 - 16),
                ("sans-serif", 13),
            ))
            .map_err(plot_err)?;
            for i in 0..len {
                for s in 0..shown {
                    let v = p.values[i * sites + s];
                    let colour = if !v.is_finite() {
                        RGBColor(200, 200, 200)
                    } else {
                        match p.colouring {
                            Colouring::Signed => diverging(v / scale),
                            Colouring::Magnitude => {
                                let g = (255.0 * (1.0 - (v / scale).clamp(0.0, 1.0))).round();
                                RGBColor(g as u8, g as u8, g as u8)
                            }
                        }
                    };
                    let (px, py) = (left + i as u32 * cell_w, y0 + s as u32 * cell_h);
                    root.draw(&Rectangle::new(
                        [
                            (px as i32, py as i32),
                            ((px + cell_w) as i32, (py + cell_h) as i32),
                        ],
                        colour.filled(),
                    ))
                    .map_err(plot_err)?;
                }
            }
            // site ticks on the left, the window's ends below the last panel
            for (s, text) in [
                (0, "site 0".to_string()),
                (shown - 1, format!("{}", shown - 1)),
            ] {
                root.draw(&Text::new(
                    text,
                    (4, (y0 + s as u32 * cell_h) as i32 - 4),
                    ("sans-serif", 11),
                ))
                .map_err(plot_err)?;
            }
        }
        let bottom = (head + panels.len() as u32 * (panel_h + gap)) as i32 - gap as i32 + 4;
        root.draw(&Text::new(
            time(0),
            (left as i32, bottom),
            ("sans-serif", 11),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            time(len - 1),
            ((left + panel_w) as i32 - 60, bottom),
            ("sans-serif", 11),
        ))
        .map_err(plot_err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_of_the_wrong_size_are_refused_by_name() {
        let path = std::env::temp_dir().join(format!("hovmoller-{}.png", std::process::id()));
        let panel = |label: &str, n: usize| Panel {
            label: label.into(),
            values: vec![0.5; n],
            colouring: Colouring::Signed,
        };
        let err = hovmoller_png(
            &path,
            &[panel("truth", 12), panel("mean", 11)],
            3,
            4,
            None,
            "t",
        )
        .unwrap_err();
        assert!(err.to_string().contains("'mean' has 11 values"), "{err}");
        hovmoller_png(&path, &[panel("truth", 12)], 3, 4, Some(0.05), "t").unwrap();
        assert!(path.exists());
        let _ = std::fs::remove_file(&path);
    }
}
