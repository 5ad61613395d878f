//! `sda plot`: the vorticity of a Kolmogorov trajectory as a PNG strip, or the loss curves of a
//! training folder.

use crate::systems::kolmogorov::vorticity_from_velocity;
use crate::Result;

/// Render the vorticity of a Kolmogorov trajectory (`[N, T, 2, n, n]` .npy) as a PNG strip,
/// or the training and validation loss of a training folder (its `loss.csv`).
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// The `.npy` file (e.g. data/kolmogorov/test.npy), or a training folder.
    data: String,
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
        } = self;
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
            },
            checkpoint.network().k(),
            checkpoint.config().system,
            log.step
        ),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
