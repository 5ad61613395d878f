//! How well a trained U-Net local score predicts the noise at each diffusion time.
//!
//! For validation windows x of a Kolmogorov dataset, draws `x_t = μ(t) x + σ(t) ε` and prints
//! the denoising error `E‖ε̂(x_t, t) − ε‖² / D` (Algorithm 1's loss, per time) for a grid of t.
//! Sampling starts at t = 1, where `μ(1) = η = 1e-3`: the DDIM predictor multiplies what ε̂
//! fails to explain there by `μ(t′)/μ(t)`, about 500 over the first half of the reverse
//! process, so a model whose error at t ≈ 1 is not small gives exploding samples.
//!
//! ```sh
//! cargo run --release --example unet_epsilon_error -- RUN DATA [windows]
//! ```
use std::path::Path;

use sda::backend::{from_host, DefaultBackend as B, NoiseSource};
use sda::checkpoint::Checkpoint;
use sda::score::unet::{UNet, UNetScore};
use sda::score::LocalScore;

fn main() -> sda::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: unet_epsilon_error RUN DATA [windows]");
        std::process::exit(2);
    }
    let windows: usize = args
        .get(3)
        .map_or(Ok(8), |w| w.parse())
        .map_err(|e| sda::Error::Invalid(format!("windows must be a number: {e}")))?;
    sda::backend::check_backend()?;
    let device = Default::default();
    let checkpoint = Checkpoint::read(Path::new(&args[1]))?;
    let (net, cfg) = checkpoint.model::<B, UNet<B>>(&device)?;
    let schedule = checkpoint.schedule()?;
    let w = 2 * cfg.k + 1;
    let score = UNetScore::new(net, cfg.clone(), schedule.clone());
    let a = sda::data::read_npy(&Path::new(&args[2]).join("valid.npy"))?;
    let [n, len, 2, g, _] = a.shape[..] else {
        return Err(sda::Error::Shape(format!(
            "valid.npy: expected [N, T, 2, n, n], got {:?}",
            a.shape
        )));
    };
    if g != cfg.grid || len < w {
        return Err(sda::Error::Shape(format!(
            "valid.npy holds {len} states on a {g}² grid; the network needs {w} states on {}²",
            cfg.grid
        )));
    }
    let d = 2 * g * g;
    // window j: trajectory j mod N, starting at state (7 j) mod (T − w + 1)
    let x: Vec<f64> = (0..windows)
        .flat_map(|j| {
            let start = ((j % n) * len + (7 * j) % (len - w + 1)) * d;
            a.data[start..start + w * d].iter().map(|&v| f64::from(v))
        })
        .collect();
    let x = from_host::<B, 3>(&x, [windows, w, d], &device);
    let mut noise = NoiseSource::new(0);
    println!("| t | μ(t) | σ(t) | E‖ε̂ − ε‖²/D |\n|---:|---:|---:|---:|");
    for t in [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0] {
        let eps = noise.normal::<B, 3>([windows, w, d], &device);
        let xt = x.clone() * schedule.mu(t) + eps.clone() * schedule.sigma(t);
        let mse: f32 = (score.epsilon(xt, t) - eps)
            .powi_scalar(2)
            .mean()
            .into_scalar();
        println!(
            "| {t} | {:.4} | {:.4} | {mse:.4} |",
            schedule.mu(t),
            schedule.sigma(t)
        );
    }
    Ok(())
}
