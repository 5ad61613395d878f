//! PNG figures (plotters, bitmap backend, embedded DejaVu Sans font). Files are written
//! atomically: drawn to a temporary file beside the target, then renamed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::{Error, Result};

mod cost;
mod field;
mod hovmoller;
mod loss;
mod ranks;

pub use cost::{cost_png, CostAxes, CostPoint};
pub use field::{diverging, spectrum_png, vorticity_rows_png, vorticity_strip_png};
pub use hovmoller::{hovmoller_png, Colouring, Panel, HOVMOLLER_SITES};
pub use loss::loss_png;
pub use ranks::{rank_histograms_png, RankHistogram};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // the embedded font is valid; a failure would only lose the text
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Numerical(format!("plotting failed: {e}"))
}

/// The colour of a reference band's edges.
const BAND_EDGE: RGBColor = RGBColor(215, 110, 0);

/// A tick label of an integer axis (state indices): the integer, or nothing between integers.
fn integer_label(v: &f64) -> String {
    match (v - v.round()).abs() < 1e-9 {
        true => format!("{v:.0}"),
        false => String::new(),
    }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Mark {
    /// A line of a colour and width.
    Line(RGBAColor, u32),
    /// A filled band with its edges.
    Band(RGBAColor, RGBAColor),
    /// A filled point.
    Point(RGBAColor),
    /// A point with a vertical error bar.
    ErrorBar(RGBAColor),
}

/// Width of the legend column to the right of every chart figure.
pub(crate) const LEGEND_WIDTH: u32 = 250;

/// Characters per legend line in [`LEGEND_WIDTH`] at the legend's 13 px font.
const LEGEND_CHARS: usize = 28;

/// Splits `area` into the charts' part (returned) and a legend column on its right, and draws
/// `keys` from the column's top, each label wrapped at word boundaries: the legend never covers
/// data.
pub(crate) fn with_legend<'a>(
    area: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    keys: &[(String, Mark)],
) -> Result<DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>> {
    let width = area.dim_in_pixel().0;
    let (charts, column) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    let mut y = 40i32;
    for (label, mark) in keys {
        let (x0, x1) = (8i32, 32i32);
        match *mark {
            Mark::Line(c, w) => {
                column.draw(&PathElement::new([(x0, y), (x1, y)], c.stroke_width(w)))
            }
            Mark::Band(fill, edge) => column
                .draw(&Rectangle::new([(x0, y - 6), (x1, y + 6)], fill.filled()))
                .and_then(|_| {
                    column.draw(&Rectangle::new(
                        [(x0, y - 6), (x1, y + 6)],
                        edge.stroke_width(2),
                    ))
                }),
            Mark::Point(c) => column.draw(&Circle::new(((x0 + x1) / 2, y), 4, c.filled())),
            Mark::ErrorBar(c) => column.draw(&ErrorBar::new_vertical(
                (x0 + x1) / 2,
                y - 7,
                y,
                y + 7,
                c.filled(),
                6,
            )),
        }
        .map_err(plot_err)?;
        for (i, line) in wrap(label, LEGEND_CHARS).iter().enumerate() {
            column
                .draw(&Text::new(
                    line.clone(),
                    (x1 + 8, y - 7 + 16 * i as i32),
                    ("sans-serif", 13),
                ))
                .map_err(plot_err)?;
            if i > 0 {
                y += 16;
            }
        }
        y += 24;
    }
    Ok(charts)
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Draws with `draw` into a temporary PNG beside `path`, then renames it into place.
pub fn write_png_atomic(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "figure.png".into());
    let tmp: PathBuf = path.with_file_name(format!(".{name}.tmp.png"));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(root.clone())?;
        root.present().map_err(plot_err)?;
    }
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Data of a posterior-marginals figure for trajectories of `len` states of `dim` components.
pub struct PosteriorFigure<'a> {
    /// Title on top.
    pub title: String,
    /// Number of states L.
    pub len: usize,
    /// Number of components D (one panel each).
    pub dim: usize,
    /// Reference posterior marginal means (`[L·D]`).
    pub reference_mean: &'a [f64],
    /// Reference posterior marginal variances (`[L·D]`).
    pub reference_var: &'a [f64],
    /// Name of the reference.
    pub reference_label: &'a str,
    /// Samples of the method (`N × L·D`, row-major).
    pub draws: &'a [f64],
    /// Name of the method.
    pub method_label: &'a str,
    /// The true trajectory (`[L·D]`).
    pub truth: &'a [f64],
    /// Observed values: (state, component, value, σ_y).
    pub observations: Vec<(usize, usize, f64, f64)>,
}

/// One panel per component: the reference mean ± 2 std (grey band), the method's sample mean ±
/// 2 std (blue), 12 sample trajectories, the truth (green) and the observations (red ± 2σ_y).
pub fn posterior_png(path: &Path, fig: &PosteriorFigure) -> Result<()> {
    let p = fig.len * fig.dim;
    let n = fig.draws.len() / p.max(1);
    if n < 2
        || fig.reference_mean.len() != p
        || fig.reference_var.len() != p
        || fig.truth.len() != p
    {
        return Err(Error::Shape(
            "posterior figure: inconsistent array sizes".into(),
        ));
    }
    let mut mean = vec![0.0; p];
    for row in fig.draws.chunks_exact(p) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f64;
        }
    }
    let mut var = vec![0.0; p];
    for row in fig.draws.chunks_exact(p) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m).powi(2) / (n as f64 - 1.0);
        }
    }
    let height = 260 * fig.dim as u32 + 40;
    let mut keys = vec![
        (
            format!("{} mean ± 2 std", fig.reference_label),
            Mark::Band(BLACK.mix(0.12), BLACK.into()),
        ),
        (
            format!("{} mean ± 2 std ({n} samples)", fig.method_label),
            Mark::Line(BLUE.into(), 2),
        ),
        (
            format!("{} samples ({} of {n})", fig.method_label, n.min(12)),
            Mark::Line(BLUE.mix(0.3), 1),
        ),
        ("truth".to_string(), Mark::Line(GREEN.mix(0.8), 1)),
    ];
    if !fig.observations.is_empty() {
        keys.push(("observation ± 2σ_y".into(), Mark::ErrorBar(RED.into())));
    }
    write_png_atomic(path, (900 + LEGEND_WIDTH, height), |root| {
        let root = root
            .titled(&fig.title, ("sans-serif", 20))
            .map_err(plot_err)?;
        let panels = with_legend(&root, &keys)?.split_evenly((fig.dim, 1));
        for (c, area) in panels.iter().enumerate() {
            let at = |v: &[f64], i: usize| v[i * fig.dim + c];
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for i in 0..fig.len {
                let s = 2.5 * at(fig.reference_var, i).sqrt().max(at(&var, i).sqrt());
                lo = lo.min(at(fig.reference_mean, i) - s).min(at(fig.truth, i));
                hi = hi.max(at(fig.reference_mean, i) + s).max(at(fig.truth, i));
            }
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(48)
                .caption(format!("component {c}"), ("sans-serif", 16))
                .build_cartesian_2d(0f64..(fig.len - 1) as f64, lo..hi)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc(state_axis(None))
                .y_desc(format!("x[{c}]"))
                .x_label_formatter(&integer_label)
                .draw()
                .map_err(plot_err)?;
            let band: Vec<(f64, f64)> = (0..fig.len)
                .map(|i| {
                    (
                        i as f64,
                        at(fig.reference_mean, i) + 2.0 * at(fig.reference_var, i).sqrt(),
                    )
                })
                .chain((0..fig.len).rev().map(|i| {
                    (
                        i as f64,
                        at(fig.reference_mean, i) - 2.0 * at(fig.reference_var, i).sqrt(),
                    )
                }))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, BLACK.mix(0.12))))
                .map_err(plot_err)?;
            for row in fig.draws.chunks_exact(p).take(12) {
                chart
                    .draw_series(LineSeries::new(
                        (0..fig.len).map(|i| (i as f64, at(row, i))),
                        BLUE.mix(0.18),
                    ))
                    .map_err(plot_err)?;
            }
            chart
                .draw_series(LineSeries::new(
                    (0..fig.len).map(|i| (i as f64, at(fig.reference_mean, i))),
                    BLACK.stroke_width(2),
                ))
                .map_err(plot_err)?;
            for sign in [-2.0, 0.0, 2.0] {
                chart
                    .draw_series(LineSeries::new(
                        (0..fig.len).map(|i| (i as f64, at(&mean, i) + sign * at(&var, i).sqrt())),
                        BLUE.stroke_width(if sign == 0.0 { 2 } else { 1 }),
                    ))
                    .map_err(plot_err)?;
            }
            chart
                .draw_series(LineSeries::new(
                    (0..fig.len).map(|i| (i as f64, at(fig.truth, i))),
                    GREEN.mix(0.8).stroke_width(1),
                ))
                .map_err(plot_err)?;
            let obs: Vec<_> = fig.observations.iter().filter(|o| o.1 == c).collect();
            chart
                .draw_series(obs.iter().map(|&&(i, _, v, s)| {
                    ErrorBar::new_vertical(i as f64, v - 2.0 * s, v, v + 2.0 * s, RED.filled(), 6)
                }))
                .map_err(plot_err)?;
        }
        Ok(())
    })
}

/// Data of a trajectories figure: posterior samples beside the truth and the observations.
pub struct TrajectoriesFigure<'a> {
    /// Title on top.
    pub title: String,
    /// Number of states L.
    pub len: usize,
    /// Panel names, one per component (D of them).
    pub components: &'a [&'a str],
    /// Samples (`N × L·D`, row-major).
    pub draws: &'a [f64],
    /// The true trajectory (`[L·D]`), if known.
    pub truth: Option<&'a [f64]>,
    /// Reference posterior trajectories (e.g. a particle filter's, `M × L·D`) and their name:
    /// drawn as their mean ± 2 std band.
    pub reference: Option<(&'a str, &'a [f64])>,
    /// Observed values in the plotted units: (state, component, value, σ_y).
    pub observations: Vec<(usize, usize, f64, f64)>,
    /// The time between states, if the system states it (labels the state axis with time).
    pub dt: Option<f64>,
}

/// The label of a state axis: the index, and the time it stands for where Δt is known.
fn state_axis(dt: Option<f64>) -> String {
    match dt {
        Some(dt) => format!("state i (0-based; time t = i·Δt, Δt = {dt})"),
        None => "state i (0-based)".into(),
    }
}

/// One panel per component: the reference's mean ± 2 std (grey band), up to 64 sample
/// trajectories (blue, translucent), the truth (black) and the observations (red ± 2σ_y).
pub fn trajectories_png(path: &Path, fig: &TrajectoriesFigure) -> Result<()> {
    let dim = fig.components.len();
    let p = fig.len * dim;
    if p == 0 || fig.draws.is_empty() || !fig.draws.len().is_multiple_of(p) {
        return Err(Error::Shape(
            "trajectories figure: draws are not a whole number of trajectories".into(),
        ));
    }
    if fig.truth.is_some_and(|t| t.len() != p) {
        return Err(Error::Shape(
            "trajectories figure: truth has the wrong size".into(),
        ));
    }
    let n = fig.draws.len() / p;
    let band = match fig.reference {
        Some((_, r)) if r.len() >= 2 * p && r.len().is_multiple_of(p) => {
            let m = (r.len() / p) as f64;
            let mean: Vec<f64> = (0..p)
                .map(|j| r.iter().skip(j).step_by(p).sum::<f64>() / m)
                .collect();
            let std: Vec<f64> = (0..p)
                .map(|j| {
                    (r.iter()
                        .skip(j)
                        .step_by(p)
                        .map(|v| (v - mean[j]).powi(2))
                        .sum::<f64>()
                        / (m - 1.0))
                        .sqrt()
                })
                .collect();
            Some((mean, std))
        }
        Some(_) => {
            return Err(Error::Shape(
                "trajectories figure: the reference needs ≥ 2 whole trajectories".into(),
            ))
        }
        None => None,
    };
    let height = 240 * dim as u32 + 40;
    let mut keys = Vec::new();
    if let Some((name, _)) = fig.reference.filter(|_| band.is_some()) {
        keys.push((
            format!("{name} mean ± 2 std"),
            Mark::Band(BLACK.mix(0.15), BAND_EDGE.into()),
        ));
    }
    keys.push((
        format!("posterior samples ({} of {n})", n.min(64)),
        Mark::Line(BLUE.mix(0.4), 1),
    ));
    if fig.truth.is_some() {
        keys.push(("truth".into(), Mark::Line(BLACK.into(), 2)));
    }
    if !fig.observations.is_empty() {
        keys.push(("observation ± 2σ_y".into(), Mark::ErrorBar(RED.into())));
    }
    write_png_atomic(path, (900 + LEGEND_WIDTH, height), |root| {
        let root = root
            .titled(&fig.title, ("sans-serif", 20))
            .map_err(plot_err)?;
        let charts = with_legend(&root, &keys)?;
        for (c, area) in charts.split_evenly((dim, 1)).iter().enumerate() {
            let values = fig
                .draws
                .iter()
                .skip(c)
                .step_by(dim)
                .chain(fig.truth.iter().flat_map(|t| t.iter().skip(c).step_by(dim)))
                .copied()
                .chain(band.iter().flat_map(|(m, s)| {
                    (0..fig.len).flat_map(move |i| {
                        let j = i * dim + c;
                        [m[j] - 2.0 * s[j], m[j] + 2.0 * s[j]]
                    })
                }))
                .chain(
                    fig.observations
                        .iter()
                        .filter(|o| o.1 == c)
                        .flat_map(|o| [o.2 - 2.0 * o.3, o.2 + 2.0 * o.3]),
                );
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            let pad = 0.05 * (hi - lo).max(1e-9);
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(48)
                .caption(fig.components[c], ("sans-serif", 16))
                .build_cartesian_2d(0f64..(fig.len - 1) as f64, (lo - pad)..(hi + pad))
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc(state_axis(fig.dt))
                .y_desc(fig.components[c])
                .x_label_formatter(&integer_label)
                .draw()
                .map_err(plot_err)?;
            let mut edges = None;
            if let Some((mean, std)) = &band {
                let at = |i: usize| i * dim + c;
                let poly: Vec<(f64, f64)> = (0..fig.len)
                    .map(|i| (i as f64, mean[at(i)] + 2.0 * std[at(i)]))
                    .chain(
                        (0..fig.len)
                            .rev()
                            .map(|i| (i as f64, mean[at(i)] - 2.0 * std[at(i)])),
                    )
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(poly.clone(), BLACK.mix(0.15))))
                    .map_err(plot_err)?;
                edges = Some(poly);
            }
            for row in fig.draws.chunks_exact(p).take(64) {
                chart
                    .draw_series(LineSeries::new(
                        (0..fig.len).map(|i| (i as f64, row[i * dim + c])),
                        BLUE.mix(0.15),
                    ))
                    .map_err(plot_err)?;
            }
            // the reference band's edges over the samples, so that it stays visible under them
            if let Some(poly) = edges.take() {
                let (upper, lower) = poly.split_at(fig.len);
                for edge in [upper, lower] {
                    chart
                        .draw_series(LineSeries::new(
                            edge.iter().copied(),
                            BAND_EDGE.stroke_width(2),
                        ))
                        .map_err(plot_err)?;
                }
            }
            if let Some(t) = fig.truth {
                chart
                    .draw_series(LineSeries::new(
                        (0..fig.len).map(|i| (i as f64, t[i * dim + c])),
                        BLACK.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
            }
            let obs: Vec<_> = fig.observations.iter().filter(|o| o.1 == c).collect();
            if !obs.is_empty() {
                chart
                    .draw_series(obs.iter().map(|&&(i, _, v, s)| {
                        ErrorBar::new_vertical(
                            i as f64,
                            v - 2.0 * s,
                            v,
                            v + 2.0 * s,
                            RED.filled(),
                            6,
                        )
                    }))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })
}

/// One curve of a Figure-2 plot: a label (e.g. `k = 2`) and per C the medians
/// `(C, W1 ratio, E[log p(y|x)], E[log p(x_2:L|x_1)])`.
pub type Figure2Series = (String, Vec<(usize, f64, f64, f64)>);

/// The paper's Figure 2 layout: three panels against C (W1 ratio,
/// E[log p(y|x)], E[log p(x_{2:L}|x_1)]), one curve per series, the particle filter's values
/// `bpf = (log-likelihood, log-prior)` as dashed horizontal lines (and 1 for the ratio).
pub fn figure2_png(
    path: &Path,
    title: &str,
    series: &[Figure2Series],
    bpf: (f64, f64),
) -> Result<()> {
    let points: Vec<&(usize, f64, f64, f64)> = series.iter().flat_map(|s| s.1.iter()).collect();
    if points.is_empty() {
        return Err(Error::Invalid("figure 2: nothing to plot".into()));
    }
    let c_max = points.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let mut keys = vec![(
        "bootstrap particle filter (BPF)".to_string(),
        Mark::Line(BLACK.mix(0.6), 2),
    )];
    for (j, (label, _)) in series.iter().enumerate() {
        keys.push((
            label.clone(),
            Mark::Line(palette[j % palette.len()].into(), 2),
        ));
    }
    write_png_atomic(path, (1200 + LEGEND_WIDTH, 420), |root| {
        let root = root.titled(title, ("sans-serif", 20)).map_err(plot_err)?;
        let panels = with_legend(&root, &keys)?.split_evenly((1, 3));
        type Pick = fn(&(usize, f64, f64, f64)) -> f64;
        let specs: [(&str, Pick, f64); 3] = [
            ("W1(SDA, BPF) / W1(BPF′, BPF)", |p| p.1, 1.0),
            ("E[log p(y | x)]", |p| p.2, bpf.0),
            ("E[log p(x_2:L | x_1)]", |p| p.3, bpf.1),
        ];
        for (panel, (name, get, reference)) in panels.iter().zip(specs) {
            let vals = points.iter().map(|p| get(p)).chain([reference]);
            let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            let pad = 0.08 * (hi - lo).max(1e-6);
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(52)
                .caption(name, ("sans-serif", 15))
                .build_cartesian_2d(-0.2..c_max + 0.2, (lo - pad)..(hi + pad))
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("corrections C (Langevin steps per predictor step)")
                .draw()
                .map_err(plot_err)?;
            chart
                .draw_series(LineSeries::new(
                    [(-0.2, reference), (c_max + 0.2, reference)],
                    BLACK.mix(0.6).stroke_width(2),
                ))
                .map_err(plot_err)?;
            for (j, (_, pts)) in series.iter().enumerate() {
                let colour = palette[j % palette.len()];
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.0 as f64, get(p))),
                        colour.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
                chart
                    .draw_series(
                        pts.iter()
                            .map(|p| Circle::new((p.0 as f64, get(p)), 4, colour.filled())),
                    )
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })
}
