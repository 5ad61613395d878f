//! `sda plot`: the vorticity of a Kolmogorov trajectory as a PNG strip, the loss curves of a
//! training folder, or the cost figure of evaluation folders.

use crate::systems::kolmogorov::vorticity_from_velocity;
use crate::Result;

/// Render the vorticity of a Kolmogorov trajectory (`[N, T, 2, n, n]` .npy) as a PNG strip,
/// the training and validation loss of a training folder (its `loss.csv`), or each method's
/// median W1 ratio against its network passes per sample for one or more `sda evaluate`
/// folders (their `rows.jsonl`).
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// The `.npy` file (e.g. data/kolmogorov/test.npy), a training folder, or evaluation
    /// folders (several may be given).
    #[arg(required = true, num_args = 1..)]
    data: Vec<String>,
    /// Evaluation folders: the cost of a VJP in forwards, to count passes in
    /// forward-equivalents (measured by `cargo run --release --example guided_flops` on the
    /// idle 2-core machine, 2026-12-05: 1.49 for the k = 3 ResMLP, 1.72 for k = 2).
    #[arg(long, default_value_t = 1.5)]
    vjp_cost: f64,
    /// Which trajectory.
    #[arg(long, default_value_t = 0)]
    trajectory: usize,
    /// Number of snapshots in the strip.
    #[arg(long, default_value_t = 8)]
    count: usize,
    /// Snapshots between two panels.
    #[arg(long, default_value_t = 4)]
    every: usize,
    /// Output PNG [default: runs/plot/vorticity.png; for a training folder, its loss.png].
    #[arg(long)]
    out: Option<String>,
}

impl PlotArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
            data,
            trajectory,
            count,
            every,
            out,
            vjp_cost,
        } = self;
        if data
            .iter()
            .all(|d| std::path::Path::new(d).join("rows.jsonl").is_file())
        {
            return plot_cost(&data, out, vjp_cost);
        }
        let data: [String; 1] = data.try_into().map_err(|data: Vec<String>| {
            crate::Error::Invalid(format!(
                "several inputs are plotted together only as evaluation folders (each with a \
                 rows.jsonl); got {}",
                data.join(", ")
            ))
        })?;
        let [data] = data;
        if std::path::Path::new(&data).is_dir() {
            return plot_loss(&data, out);
        }
        let out = out.unwrap_or_else(|| "runs/plot/vorticity.png".into());
        let a = crate::data::read_npy(std::path::Path::new(&data))?;
        crate::data::check_finite(data.as_ref(), &a)?;
        let [n_traj, t, c, h, w] = a.shape[..] else {
            return Err(crate::Error::Shape(format!(
                "{data}: expected [trajectories, time, 2, n, n], got {:?}",
                a.shape
            )));
        };
        if c != 2 || h != w {
            return Err(crate::Error::Shape(format!(
                "{data}: shape {:?} does not hold 2 velocity channels on a square grid",
                a.shape
            )));
        }
        if trajectory >= n_traj {
            return Err(crate::Error::Invalid(format!(
                "{data} holds {n_traj} trajectories; --trajectory {trajectory} is out of range"
            )));
        }
        if count == 0 || every == 0 {
            return Err(crate::Error::Invalid(format!(
                "--count and --every must be ≥ 1, got {count} and {every}"
            )));
        }
        let state = 2 * h * w;
        let fields: Vec<Vec<f64>> = (0..t)
            .step_by(every)
            .take(count)
            .map(|s| {
                let off = (trajectory * t + s) * state;
                let uv: Vec<f64> = a.data[off..off + state].iter().map(|&v| v as f64).collect();
                vorticity_from_velocity(&uv[..h * w], &uv[h * w..], h)
            })
            .collect();
        let path = std::path::Path::new(&out);
        crate::plot::vorticity_strip_png(
            path,
            &fields,
            h,
            &format!(
                "{data}: trajectory {trajectory}, vorticity of {}",
                crate::experiments::flow::every_nth_state(every)
            ),
        )?;
        println!("wrote {}", path.display());
        Ok(())
    }
}

/// The loss figure of the training folder `dir`, to `out` or `dir/loss.png`.
fn plot_loss(dir: &str, out: Option<String>) -> Result<()> {
    let checkpoint = crate::checkpoint::Checkpoint::read(dir.as_ref())?;
    let log = checkpoint.log();
    let path = out.map_or_else(
        || std::path::Path::new(dir).join("loss.png"),
        std::path::PathBuf::from,
    );
    let last = log.valid.last().map_or(String::new(), |(step, v)| {
        format!(", validation loss {v:.4} at step {step}")
    });
    crate::plot::loss_png(
        &path,
        &log.loss,
        &log.valid,
        &format!(
            "{dir}: {} local score (k = {}) of {}, {} steps{last}",
            match checkpoint.network() {
                crate::score::network::NetworkConfig::Mlp(_) => "ResMLP",
                crate::score::network::NetworkConfig::UNet(_) => "U-Net",
                crate::score::network::NetworkConfig::Ring(_) => "ring convolution",
            },
            checkpoint.network().k(),
            checkpoint.config().system,
            log.step
        ),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn plot_cost(dirs: &[String], out: Option<String>, vjp_cost: f64) -> Result<()> {
    if !(vjp_cost.is_finite() && vjp_cost >= 0.0) {
        return Err(crate::Error::Invalid(format!(
            "--vjp-cost must be ≥ 0 and finite, got {vjp_cost}"
        )));
    }
    let mut evaluations = Vec::new();
    for dir in dirs {
        let rows =
            crate::experiments::evaluate::read_rows(&std::path::Path::new(dir).join("rows.jsonl"))?;
        evaluations.push((dir, crate::experiments::evaluate::medians(&rows)));
    }
    // with particle filters: W1 ratio against passes, SDA's rows; without (a ring too large for
    // them): RMSE to the truth against seconds per window, every method's rows
    let referenced = evaluations
        .iter()
        .flat_map(|(_, methods)| methods)
        .any(|m| m.sampler.is_some() && m.medians.w1_ratio.is_finite());
    let mut points = Vec::new();
    for (dir, methods) in &evaluations {
        for m in methods {
            let label = crate::experiments::evaluate::method_label(
                m.sampler.as_deref(),
                m.smoother.as_deref(),
                "BPF′",
            );
            if referenced {
                if m.sampler.is_some() {
                    points.push(crate::plot::CostPoint {
                        label: format!("{dir}: {label}"),
                        cost: m.passes.0 + vjp_cost * m.passes.1,
                        value: m.medians.w1_ratio,
                    });
                }
            } else {
                points.push(crate::plot::CostPoint {
                    label: format!("{dir}: {label}"),
                    cost: m.seconds,
                    value: m.medians.rmse,
                });
            }
        }
    }
    let path = out.map_or_else(
        || std::path::Path::new(&dirs[0]).join("cost.png"),
        std::path::PathBuf::from,
    );
    let (title, axes) = if referenced {
        (
            "accuracy against cost: median W1 ratio over the observations",
            crate::plot::CostAxes {
                x_desc: format!("network passes per sample (forwards + {vjp_cost} × VJPs)"),
                y_desc: "median W1(SDA, BPF) / W1(BPF′, BPF)".into(),
                reference: Some((1.0, "second particle filter (ratio 1)".into())),
            },
        )
    } else {
        (
            "accuracy against cost: median RMSE to the truth over the windows",
            crate::plot::CostAxes {
                x_desc: "seconds per window (all samples)".into(),
                y_desc: "median RMSE to the truth".into(),
                reference: None,
            },
        )
    };
    crate::plot::cost_png(&path, &points, title, &axes)?;
    println!("wrote {}", path.display());
    Ok(())
}
