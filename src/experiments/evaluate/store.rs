//! An evaluation over many test trajectories, saved as it goes: the rows of each observation
//! are written to `rows.jsonl` as soon as they are done, so a killed run resumes; the settings
//! that produced them are in `settings.json`, so a rerun with other settings is refused rather
//! than mixed in. The per-observation work is independent, so the trajectories split into
//! shards (`i/n`, one job each on a cluster) whose folders [`merge`] joins into the folder one
//! unsharded run writes.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use serde_json::Value;

use super::{
    evaluate_observation, markdown_table, method_label, EvaluateRow, EvaluateSettings, Scenario,
    SdaMethods,
};
use crate::blanket::MarkovBlanket;
use crate::checkpoint::TrainedPrior;
use crate::data::{load_states, read_json, write_atomic};
use crate::{Error, Result};

/// Share `index` of `count` of an evaluation's observations: the observations at positions
/// `index, index + count, …` of the selection. `0/1` is the whole selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which share, `0 ≤ index < count`.
    pub index: usize,
    /// Number of shares.
    pub count: usize,
}

impl Shard {
    /// The whole selection.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    /// `i/n` with `0 ≤ i < n`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "shard '{s}' is not i/n with 0 ≤ i < n (e.g. 0/4 … 3/4)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// The test trajectories an evaluation observes, in order, and the shard of them this run
/// computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Indices of the test trajectories (distinct).
    pub indices: Vec<usize>,
    /// The share of `indices` this run computes.
    pub shard: Shard,
}

impl Selection {
    /// Trajectories `first, first + 1, …, first + count − 1`, all of them.
    pub fn range(first: usize, count: usize) -> Self {
        Self {
            indices: (first..first.saturating_add(count)).collect(),
            shard: Shard::WHOLE,
        }
    }

    /// The indices this run's shard computes.
    pub fn mine(&self) -> Vec<usize> {
        self.indices
            .iter()
            .enumerate()
            .filter(|(p, _)| p % self.shard.count == self.shard.index)
            .map(|(_, &j)| j)
            .collect()
    }

    fn check(&self) -> Result<()> {
        if self.indices.is_empty() {
            return Err(Error::Invalid(
                "no test observation to evaluate (ask for at least one)".into(),
            ));
        }
        if let Some(j) = self
            .indices
            .iter()
            .enumerate()
            .find_map(|(p, j)| self.indices[..p].contains(j).then_some(j))
        {
            return Err(Error::Invalid(format!(
                "test trajectory {j} is asked for twice; each observation is evaluated once"
            )));
        }
        if self.mine().is_empty() {
            return Err(Error::Invalid(format!(
                "shard {} of {} observations is empty; use at most {} shards",
                self.shard,
                self.indices.len(),
                self.indices.len()
            )));
        }
        Ok(())
    }
}

/// What an evaluation folder holds: its rows, in the order of the selection, and their table.
#[derive(Debug, Clone)]
pub struct Summary {
    /// One BPF′ row and one row per sampler for each observation.
    pub rows: Vec<EvaluateRow>,
    /// [`markdown_table`] of the rows (also written to `table.md`).
    pub table: String,
}

/// Evaluates `prior` on observations of the test trajectories of `selection` (this run's
/// shard of them; first `settings.len` states of the test split of `data`), appending each
/// observation's rows to `out/rows.jsonl` as soon as it is done, and writes their table to
/// `out/table.md`. Observations already in that file are not recomputed (a killed evaluation
/// resumes), provided it was written with the same settings (`out/settings.json`).
/// Returns the rows in the order of the selection, and the table.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: AutodiffBackend, M: MarkovBlanket<B>>(
    scenario: &Scenario<'_, B>,
    prior: &TrainedPrior<B, M>,
    sda: &SdaMethods<'_, B>,
    data: &Path,
    selection: &Selection,
    settings: &EvaluateSettings,
    out: &Path,
    device: &B::Device,
) -> Result<Summary> {
    // bad settings are refused before anything is written to `out`
    selection.check()?;
    sda.check()?;
    let d = prior.dim();
    crate::score::EpsilonModel::<B>::check_shape(&prior.composed, settings.len, d)?;
    if let Some(w) = sda.filtering {
        if w > settings.len {
            return Err(Error::Invalid(format!(
                "a filtering window of {w} states is longer than the trajectory (L = {})",
                settings.len
            )));
        }
        crate::score::EpsilonModel::<B>::check_shape(&prior.composed, w, d)
            .map_err(|e| Error::Invalid(format!("filtering window of {w} states: {e}")))?;
    }
    let all = load_states(data, "test", d)?;
    let (n, t) = (all.shape[0], all.shape[1]);
    if let Some(&bad) = selection.indices.iter().find(|&&i| i >= n) {
        return Err(Error::Invalid(format!(
            "test trajectory {bad} does not exist: {} has {n} test trajectories (0–{})",
            data.display(),
            n.saturating_sub(1)
        )));
    }
    if settings.len > t {
        return Err(Error::Shape(format!(
            "L = {} is longer than the test trajectories ({t} states)",
            settings.len
        )));
    }
    crate::observe::checked_state_parts(scenario.observation)?;
    settings.scored_states()?;
    let mut title = format!(
        "{}, {}, {}, {} samples, {} steps",
        scenario.name,
        prior.composed.blanket().describe(),
        sda.guidance.describe(),
        settings.samples,
        settings.steps
    );
    if settings.spin_up > 0 {
        title.push_str(&format!(
            ", states {}–{} scored",
            settings.spin_up,
            settings.len - 1
        ));
    }
    let mut fingerprint = serde_json::json!({
        "title": title,
        "prior": settings.prior,
        "system": scenario.system.name(),
        "observation": scenario.observation.describe(),
        "len": settings.len,
        "samples": settings.samples,
        "steps": settings.steps,
        "seed": settings.seed,
        "samplers": sda.labels(),
        "particles": settings.particles,
        "filter_burn_in": settings.filter_burn_in,
        "blanket": prior.composed.blanket().describe(),
        "guidance": sda.guidance.describe(),
        "data": data.display().to_string(),
        "indices": selection.indices,
        "shard": selection.shard.to_string(),
    });
    // recorded only when not the paper's uniform grid, so that evaluations written before
    // grids were a choice resume
    if settings.grid != crate::sampler::TimeGrid::Uniform {
        fingerprint["grid"] = settings.grid.to_string().into();
    }
    // likewise only when states are left unscored
    if settings.spin_up > 0 {
        fingerprint["spin_up"] = settings.spin_up.into();
    }
    // likewise only when there are any
    if !sda.smoothers.is_empty() {
        fingerprint["smoothers"] = sda.smoother_labels().into();
    }
    let _lock = crate::data::lock::FolderLock::acquire(out, "evaluation")?;
    let settings_path = out.join("settings.json");
    let rows_path = out.join("rows.jsonl");
    let done = if settings_path.exists() {
        let old: Value = read_json(&settings_path)?;
        if old != fingerprint {
            return Err(Error::Invalid(format!(
                "{} holds an evaluation with other settings ({}); choose another --out",
                out.display(),
                crate::data::differences(&old, &fingerprint)
            )));
        }
        read_rows(&rows_path)?
    } else {
        write_json(&settings_path, &fingerprint)?;
        let _ = std::fs::remove_file(&rows_path);
        Vec::new()
    };
    let fresh = done.is_empty();
    let result = run_rows(
        scenario, prior, sda, &all, selection, settings, &rows_path, done, device,
    );
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            // a run refused before its first row leaves nothing that would block the rerun
            if fresh && !rows_path.exists() {
                let _ = std::fs::remove_file(&settings_path);
            }
            return Err(e);
        }
    };
    let title = match selection.shard {
        Shard::WHOLE => title,
        shard => format!("{title}, shard {shard}"),
    };
    let table = markdown_table(&title, &rows);
    write_atomic(&out.join("table.md"), table.as_bytes())?;
    write_rank_figure(out, &title, &rows)?;
    Ok(Summary { rows, table })
}

/// `ranks.png`: the methods' rank histograms over the rows' observations (none when no row
/// records its ranks).
fn write_rank_figure(out: &Path, title: &str, rows: &[EvaluateRow]) -> Result<()> {
    let histograms = super::table::rank_histograms(rows);
    if histograms.is_empty() {
        return Ok(());
    }
    crate::plot::rank_histograms_png(&out.join("ranks.png"), &histograms, title)
}

/// The rows of this run's shard: those already in `done` (for the same settings), the others
/// computed and saved to `rows_path` one observation at a time.
#[allow(clippy::too_many_arguments)]
fn run_rows<B: AutodiffBackend, M: MarkovBlanket<B>>(
    scenario: &Scenario<'_, B>,
    prior: &TrainedPrior<B, M>,
    sda: &SdaMethods<'_, B>,
    all: &crate::data::Array,
    selection: &Selection,
    settings: &EvaluateSettings,
    rows_path: &Path,
    mut done: Vec<EvaluateRow>,
    device: &B::Device,
) -> Result<Vec<EvaluateRow>> {
    let (t, d) = (all.shape[1], prior.dim());
    let mine = selection.mine();
    let samples_dir = settings
        .save_samples
        .then(|| rows_path.with_file_name("samples"));
    let bar = crate::progress::Progress::new(
        mine.len() as u64,
        "evaluate",
        "observations",
        "observations [{bar:30}] {pos}/{len}, {msg} ETA {eta}",
        settings.progress,
    );
    let mut rows = Vec::new();
    for &j in &mine {
        let previous: Vec<EvaluateRow> = done
            .iter()
            .filter(|r| r.observation == j)
            .cloned()
            .collect();
        if previous.len() == sda.rows_per_observation(settings.has_reference()) {
            if let Some(dir) = samples_dir
                .as_ref()
                .map(|d| super::samples::observation_dir(d, j))
            {
                if !dir.exists() {
                    bar.suspend(|| {
                        eprintln!(
                            "note: observation {j} was evaluated before without --save-samples; \
                             its samples are not in {}",
                            dir.display()
                        )
                    });
                }
            }
            rows.extend(previous);
            bar.inc(1);
            continue;
        }
        let off = j * t * d;
        let truth: Vec<f64> = all.data[off..off + settings.len * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        // the sampler's steps report below the observations (a second bar, or their own lines
        // off a terminal): one observation of a large system takes many minutes
        let e = evaluate_observation(scenario, prior, sda, &truth, j, settings, device)?;
        if let Some(dir) = &samples_dir {
            let labels: Vec<String> = sda
                .labels()
                .into_iter()
                .chain(sda.smoother_labels())
                .collect();
            let shape = (settings.len, d);
            super::samples::write(dir, j, &labels, &e, &truth, shape, settings.has_reference())?;
        }
        done.retain(|r| r.observation != j);
        done.extend(e.rows.iter().cloned());
        write_rows(rows_path, &done)?;
        for r in e.rows.iter().filter(|r| r.diverged) {
            bar.suspend(|| {
                eprintln!(
                    "warning: observation {j}, {}: the trajectories diverged (largest |x| over \
                     {}× the reference's)",
                    method_label(r.sampler.as_deref(), r.smoother.as_deref(), "BPF′"),
                    crate::metrics::DIVERGENCE_FACTOR
                )
            });
        }
        if let Some(r) = e.rows.get(usize::from(settings.has_reference())) {
            bar.set_message(if settings.has_reference() {
                format!("last W1 ratio {:.2},", r.stats.w1_ratio)
            } else {
                format!("last RMSE {:.3},", r.stats.rmse)
            });
        }
        rows.extend(e.rows);
        bar.inc(1);
    }
    bar.finish();
    Ok(rows)
}

/// Joins the folders of the shards `0/n … n−1/n` of one evaluation (each finished) into `out`:
/// the `settings.json`, `rows.jsonl` and `table.md` that one unsharded run of the same
/// selection writes (the same rows in the same order; only the measured seconds differ), and
/// the shards' kept samples (`--save-samples`) under `samples/`.
/// `out` may be new or hold that same evaluation already.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Summary> {
    let mut parts: Vec<(Shard, &PathBuf, Value)> = Vec::new();
    for dir in shards {
        let path = dir.join("settings.json");
        if !path.exists() {
            return Err(Error::Invalid(format!(
                "{} holds no evaluation (no settings.json)",
                dir.display()
            )));
        }
        let mut settings: Value = read_json(&path)?;
        let shard: Shard = settings
            .get("shard")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Corrupt {
                path: path.clone(),
                message: "no \"shard\" entry: not written by this version's `sda evaluate`".into(),
            })?
            .parse()?;
        settings["shard"] = Value::String(Shard::WHOLE.to_string());
        parts.push((shard, dir, settings));
    }
    let Some((first, first_dir, whole)) = parts.first().cloned() else {
        return Err(Error::Invalid(
            "merge needs the folders of the shards".into(),
        ));
    };
    let count = first.count;
    for (shard, dir, settings) in &parts {
        if settings != &whole {
            return Err(Error::Invalid(format!(
                "{} and {} are shards of different evaluations ({})",
                first_dir.display(),
                dir.display(),
                crate::data::differences(&whole, settings)
            )));
        }
        if shard.count != count {
            return Err(Error::Invalid(format!(
                "{} is shard {shard} but {} is shard {first}: all must be shares of {count}",
                dir.display(),
                first_dir.display()
            )));
        }
    }
    for index in 0..count {
        match parts.iter().filter(|(s, _, _)| s.index == index).count() {
            1 => {}
            0 => {
                return Err(Error::Invalid(format!(
                    "shard {index}/{count} is missing; merge needs all {count}"
                )))
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "shard {index}/{count} is given twice"
                )))
            }
        }
    }
    let indices: Vec<usize> =
        serde_json::from_value(whole["indices"].clone()).map_err(|e| Error::Corrupt {
            path: first_dir.join("settings.json"),
            message: format!("\"indices\": {e}"),
        })?;
    // the rows of one observation: the BPF′ row when the particle filters ran, one per sampler,
    // one per smoother (as `SdaMethods::rows_per_observation`)
    let listed = |key: &str| whole[key].as_array().map_or(0, Vec::len);
    let reference = whole["particles"].as_u64().is_none_or(|p| p > 0);
    let per_observation = usize::from(reference) + listed("samplers") + listed("smoothers");
    let mut rows = Vec::new();
    for (p, &j) in indices.iter().enumerate() {
        let (_, dir, _) = parts
            .iter()
            .find(|(s, _, _)| s.index == p % count)
            .expect("every shard is present");
        let found: Vec<EvaluateRow> = read_rows(&dir.join("rows.jsonl"))?
            .into_iter()
            .filter(|r| r.observation == j)
            .collect();
        if found.len() != per_observation {
            return Err(Error::Invalid(format!(
                "shard {}/{count} ({}) is not finished: observation {j} has {} of its {} rows; \
                 rerun that shard (it resumes)",
                p % count,
                dir.display(),
                found.len(),
                per_observation
            )));
        }
        rows.extend(found);
    }
    let settings_path = out.join("settings.json");
    if settings_path.exists() {
        let old: Value = read_json(&settings_path)?;
        if old != whole {
            return Err(Error::Invalid(format!(
                "{} holds another evaluation ({}); choose another --out",
                out.display(),
                crate::data::differences(&old, &whole)
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    // the samples kept by shards run with --save-samples join the merged folder's
    for (p, &j) in indices.iter().enumerate() {
        let (_, dir, _) = parts
            .iter()
            .find(|(s, _, _)| s.index == p % count)
            .expect("every shard is present");
        let from = super::samples::observation_dir(&dir.join("samples"), j);
        if from.is_dir() {
            copy_files(
                &from,
                &super::samples::observation_dir(&out.join("samples"), j),
            )?;
        }
    }
    write_json(&settings_path, &whole)?;
    write_rows(&out.join("rows.jsonl"), &rows)?;
    let title = whole["title"].as_str().unwrap_or("evaluation");
    let table = markdown_table(title, &rows);
    write_atomic(&out.join("table.md"), table.as_bytes())?;
    write_rank_figure(out, title, &rows)?;
    Ok(Summary { rows, table })
}

/// Copies the files of folder `from` into folder `to` (made if missing), each atomically.
fn copy_files(from: &Path, to: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let path = entry.map_err(io(from))?.path();
        if path.is_file() {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            write_atomic(
                &to.join(path.file_name().expect("a file has a name")),
                &bytes,
            )?;
        }
    }
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    write_atomic(
        path,
        serde_json::to_string_pretty(value)
            .expect("a JSON value serialises")
            .as_bytes(),
    )
}

fn write_rows(path: &Path, rows: &[EvaluateRow]) -> Result<()> {
    let text: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).expect("a row serialises") + "\n")
        .collect();
    write_atomic(path, text.as_bytes())
}

/// The rows of a `rows.jsonl` (none when it does not exist); a bad line is named by number.
pub fn read_rows(path: &Path) -> Result<Vec<EvaluateRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
