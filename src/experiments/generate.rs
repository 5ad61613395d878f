//! Dataset generation: trajectories simulated in parallel, staged one file per trajectory (so a
//! killed run keeps what it finished and resumes), then assembled into `train/valid/test.npy`
//! with a `manifest.json`. The same settings give identical bytes, whatever the thread count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::data::{
    read_npy, split_path, split_sizes, write_atomic, write_npy, Array, Manifest, SPLITS,
};
use crate::dynamics::Dynamics;
use crate::progress::Progress;
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

/// How many finished trajectories the staging folder holds.
fn staged_count(out: &Path) -> usize {
    std::fs::read_dir(staging(out))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("traj_"))
                .count()
        })
        .unwrap_or(0)
}

fn remove_staging(out: &Path) -> Result<()> {
    match std::fs::remove_dir_all(staging(out)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: staging(out),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Generates a dataset with `simulate(i)` producing trajectory `i` (`[keep, state…]`
/// flattened), its states described by `state` in the manifest. Shared by every system.
pub fn generate_with(
    system: &str,
    system_config: serde_json::Value,
    state_shape: &[usize],
    state: crate::dynamics::StateInfo,
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
    // the largest split is assembled in memory (single precision); each thread holds one
    // trajectory in double precision while it simulates
    let values: usize = state_shape.iter().product();
    let assembled = crate::resources::product(&[opts.trajectories, opts.keep, values, 4]);
    let simulating =
        crate::resources::product(&[rayon::current_num_threads(), opts.keep, values, 16]);
    crate::resources::check_memory(
        &format!(
            "generating --trajectories {} × --keep {} states of {values} values",
            opts.trajectories, opts.keep
        ),
        assembled
            .zip(simulating)
            .and_then(|(a, b)| a.checked_add(b)),
    )?;
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
        state,
        splits,
        seeds: "trajectory i uses seed + i * 0x9E3779B97F4A7C15 (wrapping)".into(),
        format: "float32 .npy, [trajectories, time, state...], C order".into(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    // a finished dataset is kept: the same settings have nothing to do, others need `force`
    let finished = opts.out.join("manifest.json");
    let same = |bytes: &[u8]| {
        serde_json::from_slice::<Manifest>(bytes).is_ok_and(|old| old.same_dataset(&manifest))
    };
    match std::fs::read(&finished) {
        Ok(old) if same(&old) && SPLITS.iter().all(|s| split_path(&opts.out, s).exists()) => {
            return Ok(Outcome::Complete {
                computed: 0,
                reused: opts.trajectories,
            });
        }
        Ok(_) if !opts.force => {
            return Err(Error::Invalid(format!(
                "{} holds a dataset of other settings ({}); choose another --out, or give \
                 --force to replace it",
                opts.out.display(),
                finished.display()
            )))
        }
        _ => {}
    }
    if !opts.force && !finished.exists() {
        if let Some(s) = SPLITS.iter().find(|s| split_path(&opts.out, s).exists()) {
            return Err(Error::Invalid(format!(
                "{} holds {}.npy but no manifest.json; choose another --out, or give --force \
                 to replace it",
                opts.out.display(),
                s
            )));
        }
    }
    let _lock = crate::data::lock::FolderLock::acquire(&opts.out, "generation")?;
    // a staging folder from another configuration must not be mixed in
    // (one that holds no trajectory yet, or `force`, is replaced)
    let stage_manifest = staging(&opts.out).join("manifest.json");
    match std::fs::read(&stage_manifest) {
        Ok(old) if same(&old) => {}
        Ok(_) if staged_count(&opts.out) > 0 && !opts.force => {
            return Err(Error::Invalid(format!(
                "{} holds {} trajectories of other settings; rerun with the same settings to \
                 finish them, or give --force to replace them",
                staging(&opts.out).display(),
                staged_count(&opts.out)
            )))
        }
        Ok(_) => {
            remove_staging(&opts.out)?;
            write_atomic(&stage_manifest, &json)?
        }
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
    let bar = Progress::new(
        todo.len() as u64,
        &format!("generating {system}"),
        "trajectories",
        "{msg} [{bar:30}] {pos}/{len} trajectories, {elapsed} elapsed, ETA {eta}",
        opts.progress,
    );
    let failures = AtomicUsize::new(0);
    let simulated = todo.par_iter().try_for_each(|&i| -> Result<()> {
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
    });
    bar.finish();
    if let Err(e) = simulated {
        // nothing finished: leave no staging folder behind to block a corrected rerun
        if staged_count(&opts.out) == 0 {
            remove_staging(&opts.out)?;
        }
        return Err(e);
    }
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
    remove_staging(&opts.out)?;
    Ok(Outcome::Complete {
        computed: todo.len(),
        reused,
    })
}

/// Generates a Lorenz-63 dataset in physical units: from the Gaussian initial prior,
/// `burn_in` discarded transitions, then `keep` states `[3]` (paper: 1024 and 1024).
pub fn generate_lorenz63(system: &Lorenz63, opts: &GenerateOptions) -> Result<Outcome> {
    system.check()?;
    generate_system(
        "lorenz63",
        &toml::Value::Table(Default::default()),
        system,
        opts,
    )
}

/// Generates a Kolmogorov-flow dataset: from seeded random starts, `burn_in` snapshots
/// discarded, `keep` snapshots of coarse velocity `[2, n/coarsen, n/coarsen]` kept.
pub fn generate_kolmogorov(cfg: &KolmogorovConfig, opts: &GenerateOptions) -> Result<Outcome> {
    let system = Kolmogorov::new(cfg.clone())?;
    generate_system(
        "kolmogorov",
        &toml::Value::Table(Default::default()),
        &system,
        opts,
    )
}

/// Generates a dataset of any registered system (`sda generate NAME`): trajectory `i` is
/// [`Dynamics::stored_trajectory`] (from the initial prior, `burn_in` discarded transitions,
/// then `keep` states of [`Dynamics::stored_shape`]) drawn with the seed
/// [`trajectory_seed`]`(seed, i)`. The manifest records the registered name and
/// [`Dynamics::parameters`], or `params` (those the system was built from) if it has none.
pub fn generate_system(
    name: &str,
    params: &toml::Value,
    system: &dyn Dynamics,
    opts: &GenerateOptions,
) -> Result<Outcome> {
    let recorded = system
        .parameters()
        .unwrap_or_else(|| serde_json::to_value(params).expect("TOML parameters serialise"));
    let shape = system.stored_shape();
    generate_with(name, recorded, &shape, system.state_info(), opts, |i| {
        let mut rng = StdRng::seed_from_u64(trajectory_seed(opts.seed, i));
        system.stored_trajectory(opts.keep, opts.burn_in, &mut rng)
    })
}

/// The dataset sizes `sda generate` takes unless told otherwise, and parameters under those
/// given: the paper's, or a small preset for quick tries and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Trajectories (split 80/10/10).
    pub trajectories: usize,
    /// Discarded transitions before the kept states.
    pub burn_in: usize,
    /// Kept states per trajectory.
    pub keep: usize,
    /// System parameters (the inside of a TOML inline table) under the given ones.
    pub params: &'static str,
}

impl Preset {
    /// The preset of a system: Kolmogorov flow 1024 trajectories of 64 snapshots after 64
    /// (paper §4.2), small: 16 on a 64² grid; every other system 1024 trajectories of 1024
    /// states after 1024 (paper §4.1), small: 64 of 256.
    pub fn of(system: &str, small: bool) -> Self {
        match (system, small) {
            ("kolmogorov", false) => Self::sizes(1024, 64, 64, ""),
            ("kolmogorov", true) => Self::sizes(16, 64, 64, "grid = 64, coarsen = 1"),
            (_, false) => Self::sizes(1024, 1024, 1024, ""),
            (_, true) => Self::sizes(64, 1024, 256, ""),
        }
    }

    const fn sizes(trajectories: usize, burn_in: usize, keep: usize, params: &'static str) -> Self {
        Self {
            trajectories,
            burn_in,
            keep,
            params,
        }
    }
}
