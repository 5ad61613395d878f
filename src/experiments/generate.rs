//! Dataset generation: trajectories simulated in parallel, staged one file per trajectory (so a
//! killed run keeps what it finished and resumes), then assembled into `train/valid/test.npy`
//! with a `manifest.json`. The same settings give identical bytes, whatever the thread count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::data::{
    read_npy, split_path, split_sizes, write_atomic, write_npy, Array, Manifest, SPLITS,
};
use crate::dynamics::Dynamics;
use crate::systems::kolmogorov::{Kolmogorov, KolmogorovConfig};
use crate::systems::lorenz63::Lorenz63;
use crate::{Error, Result};
use rand::{rngs::StdRng, SeedableRng};

/// The generation settings, recorded in the dataset's [`Manifest`].
pub use crate::data::GenerateOptions;

/// How a call to a generator ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All splits were written; `computed` trajectories were simulated now, `reused` came from
    /// an earlier (interrupted) run.
    Complete {
        /// Simulated in this call.
        computed: usize,
        /// Reused from the staging folder.
        reused: usize,
    },
    /// `max_new` was reached; `remaining` trajectories are still to simulate.
    Partial {
        /// Simulated in this call.
        computed: usize,
        /// Still missing.
        remaining: usize,
    },
}

/// The seed of trajectory `index` from the base seed.
pub fn trajectory_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn staging(out: &Path) -> PathBuf {
    out.join(".staging")
}

fn staged_path(out: &Path, i: usize) -> PathBuf {
    staging(out).join(format!("traj_{i:06}.npy"))
}

/// Generates a dataset with `simulate(i)` producing trajectory `i` (`[keep, state…]`
/// flattened). Shared by every system.
pub fn generate_with(
    system: &str,
    system_config: serde_json::Value,
    state_shape: &[usize],
    opts: &GenerateOptions,
    simulate: impl Fn(usize) -> Vec<f64> + Sync,
) -> Result<Outcome> {
    if opts.trajectories < 3 {
        return Err(Error::Invalid(format!(
            "need at least 3 trajectories for the train/valid/test split, got {}",
            opts.trajectories
        )));
    }
    if opts.keep == 0 {
        return Err(Error::Invalid("keep must be at least 1 snapshot".into()));
    }
    let sizes = split_sizes(opts.trajectories);
    let mut start = 0;
    let splits = SPLITS
        .iter()
        .zip(sizes)
        .map(|(s, n)| {
            let r = (s.to_string(), start, n);
            start += n;
            r
        })
        .collect();
    let manifest = Manifest {
        system: system.into(),
        system_config,
        options: opts.clone(),
        state_shape: state_shape.to_vec(),
        splits,
        seeds: "trajectory i uses seed + i * 0x9E3779B97F4A7C15 (wrapping)".into(),
        format: "float32 .npy, [trajectories, time, state...], C order".into(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    // a staging folder from another configuration must not be mixed in
    let stage_manifest = staging(&opts.out).join("manifest.json");
    match std::fs::read(&stage_manifest) {
        Ok(old) if old != json => {
            return Err(Error::Invalid(format!(
            "{} holds trajectories of other settings; remove it or rerun with the same settings",
            staging(&opts.out).display()
        )))
        }
        Ok(_) => {}
        Err(_) => write_atomic(&stage_manifest, &json)?,
    }
    let mut traj_shape = vec![opts.keep];
    traj_shape.extend_from_slice(state_shape);
    let expected: usize = traj_shape.iter().product();
    let done = |i: usize| {
        read_npy(&staged_path(&opts.out, i))
            .map(|a| a.shape == traj_shape)
            .unwrap_or(false)
    };
    let missing: Vec<usize> = (0..opts.trajectories).filter(|&i| !done(i)).collect();
    let reused = opts.trajectories - missing.len();
    let todo: Vec<usize> = missing
        .iter()
        .copied()
        .take(opts.max_new.unwrap_or(usize::MAX))
        .collect();
    let bar = if opts.progress {
        let bar = ProgressBar::new(todo.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} trajectories, {elapsed} elapsed, ETA {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(format!("generating {system}"));
        bar
    } else {
        ProgressBar::hidden()
    };
    let failures = AtomicUsize::new(0);
    todo.par_iter().try_for_each(|&i| -> Result<()> {
        let x = simulate(i);
        if x.len() != expected {
            failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Numerical(format!(
                "trajectory {i} has {} values, expected {expected}",
                x.len()
            )));
        }
        if let Some(j) = x.iter().position(|v| !v.is_finite()) {
            failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Numerical(format!(
                "trajectory {i} is not finite (first at kept state {} of {}): the simulation \
                 diverged; check the system's parameters",
                j / state_shape.iter().product::<usize>().max(1),
                opts.keep
            )));
        }
        let a = Array::new(traj_shape.clone(), x.iter().map(|&v| v as f32).collect())?;
        write_npy(&staged_path(&opts.out, i), &a)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    if todo.len() < missing.len() {
        return Ok(Outcome::Partial {
            computed: todo.len(),
            remaining: missing.len() - todo.len(),
        });
    }
    let mut first = 0;
    for (split, n) in SPLITS.iter().zip(sizes) {
        let mut data = Vec::with_capacity(n * expected);
        for i in first..first + n {
            data.extend(read_npy(&staged_path(&opts.out, i))?.data);
        }
        let mut shape = vec![n];
        shape.extend_from_slice(&traj_shape);
        write_npy(&split_path(&opts.out, split), &Array::new(shape, data)?)?;
        first += n;
    }
    write_atomic(&opts.out.join("manifest.json"), &json)?;
    std::fs::remove_dir_all(staging(&opts.out)).map_err(|source| Error::Io {
        path: staging(&opts.out),
        source,
    })?;
    Ok(Outcome::Complete {
        computed: todo.len(),
        reused,
    })
}

/// Generates a Lorenz-63 dataset in physical units: from the Gaussian initial prior,
/// `burn_in` discarded transitions, then `keep` states `[3]` (paper: 1024 and 1024).
pub fn generate_lorenz63(system: &Lorenz63, opts: &GenerateOptions) -> Result<Outcome> {
    system.check()?;
    generate_with(
        "lorenz63",
        serde_json::to_value(system).expect("config serialises"),
        &[3],
        opts,
        |i| {
            let mut rng = StdRng::seed_from_u64(trajectory_seed(opts.seed, i));
            system.trajectory(opts.keep, opts.burn_in, &mut rng)
        },
    )
}

/// Generates a Kolmogorov-flow dataset: from seeded random starts, `burn_in` snapshots
/// discarded, `keep` snapshots of coarse velocity `[2, n/coarsen, n/coarsen]` kept.
pub fn generate_kolmogorov(cfg: &KolmogorovConfig, opts: &GenerateOptions) -> Result<Outcome> {
    let sys = Kolmogorov::new(cfg.clone())?;
    let nc = sys.coarse_grid();
    generate_with(
        "kolmogorov",
        serde_json::to_value(cfg).expect("config serialises"),
        &[2, nc, nc],
        opts,
        |i| sys.simulate(trajectory_seed(opts.seed, i), opts.burn_in, opts.keep),
    )
}

/// Generates a dataset of any registered system (`sda generate NAME --system-params '…'`):
/// from its initial prior, `burn_in` discarded transitions, then `keep` states of
/// [`Dynamics::state_shape`], through [`Dynamics::trajectory`]. The manifest records the
/// registered name and the parameters the system was built with.
pub fn generate_system(
    name: &str,
    params: &toml::Value,
    system: &dyn Dynamics,
    opts: &GenerateOptions,
) -> Result<Outcome> {
    generate_with(
        name,
        serde_json::to_value(params).expect("TOML parameters serialise"),
        &system.state_shape(),
        opts,
        |i| {
            let mut rng = StdRng::seed_from_u64(trajectory_seed(opts.seed, i));
            system.trajectory(opts.keep, opts.burn_in, &mut rng)
        },
    )
}
