//! `sda compare`: the paper's Figure-4 view of several Kolmogorov assimilations of one
//! observation.

use crate::experiments::flow;
use crate::registry::{self, ObservationPlugin};
use crate::Result;

/// The paper's Figure-4 view of Kolmogorov assimilations of one observation (e.g. SDA and
/// DPS): rows of vorticity for the truth, the observation (when it is images) and the first
/// sample of each `sda assimilate` folder, plus their residual std beside σ_y.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Output folders of `sda assimilate` on the same truth and observation.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    /// Output PNG.
    #[arg(long, default_value = "runs/compare.png")]
    out: String,
}

impl CompareArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        compare_flow(&self.runs, &self.out)
    }
}

/// One `sda assimilate` output folder of a Kolmogorov assimilation, as `sda compare` reads it.
struct FlowRun {
    summary: serde_json::Value,
    samples: crate::data::Array,
    truth: Vec<f64>,
    y: Vec<f64>,
}

impl FlowRun {
    fn load(dir: &str) -> Result<Self> {
        use crate::data::{read_json, read_npy};
        let dir = std::path::Path::new(dir);
        let file = dir.join("assimilate.json");
        if !file.is_file() {
            return Err(crate::Error::Invalid(format!(
                "{} is not an `sda assimilate` output folder (it has no assimilate.json); \
                 `sda compare` draws the runs of one Kolmogorov observation",
                dir.display()
            )));
        }
        let summary: serde_json::Value = read_json(&file)?;
        let samples = read_npy(&dir.join("samples.npy"))?;
        if samples.shape.len() != 5 || samples.shape[2] != 2 || samples.shape[3] != samples.shape[4]
        {
            return Err(crate::Error::Shape(format!(
                "{}: expected samples [N, L, 2, n, n] of a Kolmogorov assimilation, got {:?}",
                dir.display(),
                samples.shape
            )));
        }
        Ok(Self {
            summary,
            truth: f64s(read_npy(&dir.join("truth.npy"))?.data),
            y: f64s(read_npy(&dir.join("y.npy"))?.data),
            samples,
        })
    }

    fn text(&self, key: &str, i: usize) -> String {
        self.summary[key][i].as_str().unwrap_or("").to_string()
    }
}

fn f64s(v: Vec<f32>) -> Vec<f64> {
    v.into_iter().map(f64::from).collect()
}

/// `sda compare`: the Figure-4 rows of several assimilations of one observation.
fn compare_flow(dirs: &[String], out: &str) -> Result<()> {
    let runs = dirs
        .iter()
        .map(|d| FlowRun::load(d))
        .collect::<Result<Vec<_>>>()?;
    let first = &runs[0];
    let (len, grid) = (first.samples.shape[1], first.samples.shape[3]);
    for (dir, run) in dirs.iter().zip(&runs).skip(1) {
        if run.samples.shape[1..] != first.samples.shape[1..]
            || run.truth != first.truth
            || run.y != first.y
            || run.summary["observation"] != first.summary["observation"]
        {
            return Err(crate::Error::Invalid(format!(
                "{dir} and {} assimilate different truths, observations or shapes; compare \
                 needs runs of one observation",
                dirs[0]
            )));
        }
    }
    let shape = crate::TrajectoryShape::new(len, 2 * grid * grid);
    // assimilate.json keeps the parameters as the TOML text of an inline table
    let text = first.text("observation", 1);
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| {
            crate::Error::Invalid(format!(
                "{}: unreadable observation parameters '{text}'",
                dirs[0]
            ))
        })?;
    let params = registry::parse_params(inner)?;
    let observation =
        registry::build_for::<ObservationPlugin>(&first.text("observation", 0), &params, shape)?;
    let every = len.div_ceil(8);
    let mut rows = vec![(
        "truth".to_string(),
        flow::vorticity_strip(&first.truth, len, grid, every),
    )];
    if let Some(row) =
        flow::observation_figure_row(observation.as_ref(), &first.y, len, every, grid)
    {
        rows.push(("observation".to_string(), row));
    }
    println!("| run | guidance | residual std | σ_y |\n|---|---|---:|---:|");
    for (dir, run) in dirs.iter().zip(&runs) {
        let sample = f64s(run.samples.data[..len * 2 * grid * grid].to_vec());
        // the guidance and its parameters, e.g. "SDA gamma = 0.0001", so that rows differ
        let params = run.text("guidance", 1);
        let params = params.trim().trim_start_matches('{').trim_end_matches('}');
        rows.push((
            format!(
                "{} {}",
                run.text("guidance", 0).to_uppercase(),
                params.trim()
            )
            .trim()
            .to_string(),
            flow::vorticity_strip(&sample, len, grid, every),
        ));
        print!(
            "{}",
            crate::experiments::markdown::row(&[
                dir.to_string(),
                run.text("guidance", 0),
                format!(
                    "{:.4}",
                    run.summary["residual_std"].as_f64().unwrap_or(f64::NAN)
                ),
                run.summary["sigma_y"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .to_string(),
            ])
        );
    }
    let path = std::path::Path::new(out);
    crate::plot::vorticity_rows_png(
        path,
        &rows,
        grid,
        &format!(
            "'{}' — vorticity of {} (observations under the states they observe)",
            first.text("observation", 0),
            flow::every_nth_state(every)
        ),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
