//! Trajectory datasets on disk, in formats NumPy opens without this crate: `.npy` arrays
//! (written little-endian `float32`, C order; read also as `float64` or Fortran order) and a
//! JSON manifest of how they were made. Every file is
//! written atomically (a temporary file beside it, then a rename), and every read checks the
//! header, the dtype, the shape and the byte count, so a corrupt or truncated file is reported
//! by name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod lock;
mod manifest;
mod npy;

pub use manifest::{GenerateOptions, Manifest};
pub use npy::{encode_npy, read_npy, write_npy};

use crate::{Error, Result};

/// An n-dimensional `f32` array in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

impl Array {
    /// An array of `shape` from `data`; errors if the sizes disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape(format!(
                "array of shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }
}

/// Reads a JSON file (run summaries, settings, training state) as `T`: an I/O error or a
/// parse error names the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)
}

/// The three splits of a dataset.
pub const SPLITS: [&str; 3] = ["train", "valid", "test"];

/// Split sizes of N trajectories by index, 80/10/10: `⌊0.8 N⌋`, `⌊0.1 N⌋`, the rest
/// (1024 → 819 / 102 / 103).
pub fn split_sizes(n: usize) -> [usize; 3] {
    let train = n * 8 / 10;
    let valid = n / 10;
    [train, valid, n - train - valid]
}

/// The path of a split's array in a dataset folder.
pub fn split_path(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.npy"))
}

/// Loads one split and checks that its values are finite and its trailing dimensions are
/// `state_shape` preceded by the trajectory and time axes.
pub fn load_split(dir: &Path, split: &str, state_shape: &[usize]) -> Result<Array> {
    let path = split_path(dir, split);
    let a = read_npy(&path)?;
    if a.shape.len() != 2 + state_shape.len() || a.shape[2..] != *state_shape {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "shape {:?} is not [trajectories, time, {}]",
                a.shape,
                state_shape
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    check_finite(&path, &a)?;
    Ok(a)
}

/// The keys whose values differ between two settings objects (a run's recorded settings and
/// a rerun's), as `key: old → new; …` — what an error refusing the rerun names.
pub fn differences(old: &serde_json::Value, new: &serde_json::Value) -> String {
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return format!("{old} → {new}");
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| {
                v.map_or("(none)".to_string(), serde_json::Value::to_string)
            };
            format!("{k}: {} → {}", show(a.get(k)), show(b.get(k)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Errors on the first NaN or infinite value of a `[trajectories, time, …]` array (a split, or
/// samples `[samples, time, …]`), naming the file, the trajectory and the time index, so bad
/// data is refused when it is read rather than drawn, re-simulated or averaged into NaN later.
pub fn check_finite(path: &Path, a: &Array) -> Result<()> {
    let Some(j) = a.data.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    let state: usize = a.shape.iter().skip(2).product::<usize>().max(1);
    let per_trajectory = state * a.shape.get(1).copied().unwrap_or(1).max(1);
    Err(Error::NonFinite(format!(
        "{}: value {} of trajectory {} at time index {} (NaN or infinite data)",
        path.display(),
        a.data[j],
        j / per_trajectory,
        j % per_trajectory / state
    )))
}

/// A split of `[trajectories, time, state…]` states of `dim` values each, flattened to
/// `[trajectories, time, dim]` (a state shape like `[2, 3]` reads as 6 values); non-finite
/// values are an error.
pub fn load_states(dir: &Path, split: &str, dim: usize) -> Result<Array> {
    let path = split_path(dir, split);
    let mut a = read_npy(&path)?;
    let d: usize = a.shape.iter().skip(2).product();
    if a.shape.len() < 3 || d != dim {
        return Err(Error::Shape(format!(
            "{}: shape {:?} is not [trajectories, time, state…] with states of {dim} values",
            path.display(),
            a.shape
        )));
    }
    a.shape = vec![a.shape[0], a.shape[1], dim];
    check_finite(&path, &a)?;
    Ok(a)
}

/// The units a state-vector network learns in: each coordinate `j` of a flattened state is
/// standardised as `x̃_j = (x_j − mean_j) / scale_j`. Networks, observations and guidance work
/// on x̃; datasets, samples and metrics are physical. Stored with every ResMLP checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardisation {
    /// Per-coordinate offset.
    pub mean: Vec<f64>,
    /// Per-coordinate scale (positive).
    pub scale: Vec<f64>,
}

impl Standardisation {
    /// The identity units of states of `dim` values (mean 0, scale 1): a U-Net learns fields
    /// as stored. Standardising with them returns every value unchanged.
    pub fn identity(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            scale: vec![1.0; dim],
        }
    }

    /// Checked construction: equal lengths, finite means, finite positive scales.
    pub fn new(mean: Vec<f64>, scale: Vec<f64>) -> Result<Self> {
        if mean.is_empty()
            || mean.len() != scale.len()
            || mean.iter().any(|m| !m.is_finite())
            || scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(Error::Invalid(format!(
                "a standardisation needs as many finite means as finite positive scales, got \
                 {mean:?} and {scale:?}"
            )));
        }
        Ok(Self { mean, scale })
    }

    /// Mean of the paper's fixed Lorenz-63 units: `(0, 0, 25)`.
    pub const LORENZ63_MEAN: [f64; 3] = [0.0, 0.0, 25.0];
    /// Scale of the paper's fixed Lorenz-63 units: `(8, 9, 8.6)`.
    pub const LORENZ63_SCALE: [f64; 3] = [8.0, 9.0, 8.6];

    /// The paper's fixed Lorenz-63 units ([`Self::LORENZ63_MEAN`], [`Self::LORENZ63_SCALE`]):
    /// `ã = a/8`, `b̃ = b/9`, `c̃ = (c − 25)/8.6`.
    pub fn lorenz63() -> Self {
        Self {
            mean: Self::LORENZ63_MEAN.to_vec(),
            scale: Self::LORENZ63_SCALE.to_vec(),
        }
    }

    /// The empirical units of a dataset split `[trajectories, time, state…]`: per flattened
    /// coordinate, the mean and the standard deviation over every trajectory and time (a
    /// coordinate that never varies keeps scale 1). A non-finite value is an error.
    pub fn of_split(a: &Array) -> Result<Self> {
        let d: usize = a.shape.iter().skip(2).product();
        if a.shape.len() < 3 || d == 0 || a.data.is_empty() {
            return Err(Error::Shape(format!(
                "standardisation needs [trajectories, time, state…] data, got {:?}",
                a.shape
            )));
        }
        let n = (a.data.len() / d) as f64;
        let mut mean = vec![0.0f64; d];
        for s in a.data.chunks_exact(d) {
            for (m, &v) in mean.iter_mut().zip(s) {
                if !v.is_finite() {
                    return Err(Error::Numerical(format!(
                        "the data hold a non-finite value ({v})"
                    )));
                }
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; d];
        for s in a.data.chunks_exact(d) {
            for ((q, &v), m) in var.iter_mut().zip(s).zip(&mean) {
                *q += (v as f64 - m).powi(2);
            }
        }
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let s = (q / n).sqrt();
                if s > 1e-9 * (1.0 + m.abs()) {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        Self::new(mean, scale)
    }

    /// Flattened state dimension D.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The same units for every coordinate, pooled over them: the mean of the means and the
    /// standard deviation of all values together, `√(mean_i(s_i² + (m_i − m̄)²))` — the units of
    /// a translation-invariant field on a ring, whose sites share one law.
    pub fn pooled(&self) -> Result<Self> {
        let d = self.dim() as f64;
        let mean = self.mean.iter().sum::<f64>() / d;
        let var = self
            .mean
            .iter()
            .zip(&self.scale)
            .map(|(m, s)| s * s + (m - mean).powi(2))
            .sum::<f64>()
            / d;
        Self::new(vec![mean; self.dim()], vec![var.sqrt(); self.dim()])
    }

    /// Pooled units ([`Standardisation::pooled`]) carried to states of `dim` coordinates (a
    /// ring of another size); an error if the coordinates do not share one mean and scale.
    pub fn tiled(&self, dim: usize) -> Result<Self> {
        let (m, s) = (self.mean[0], self.scale[0]);
        if self.mean.iter().any(|v| *v != m) || self.scale.iter().any(|v| *v != s) {
            return Err(Error::Invalid(
                "units differ between coordinates: they cannot be carried to another state size"
                    .into(),
            ));
        }
        Self::new(vec![m; dim], vec![s; dim])
    }

    /// Physical → standardised, for a flat array of whole states.
    pub fn standardise(&self, x: &[f64]) -> Vec<f64> {
        x.chunks_exact(self.dim())
            .flat_map(|s| {
                s.iter()
                    .zip(self.mean.iter().zip(&self.scale))
                    .map(|(v, (m, c))| (v - m) / c)
            })
            .collect()
    }

    /// Standardised → physical, for a flat array of whole states.
    pub fn physical(&self, x: &[f64]) -> Vec<f64> {
        x.chunks_exact(self.dim())
            .flat_map(|s| {
                s.iter()
                    .zip(self.mean.iter().zip(&self.scale))
                    .map(|(v, (m, c))| v * c + m)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardisation_of_a_split_round_trips_and_whitens() {
        // 2 trajectories × 3 states of (offset 100 + 5·v, constant 7)
        let values = [1.0, -1.0, 2.0, 0.5, -2.0, -0.5];
        let data: Vec<f32> = values
            .iter()
            .flat_map(|v| [100.0 + 5.0 * v, 7.0])
            .map(|v| v as f32)
            .collect();
        let a = Array::new(vec![2, 3, 2], data.clone()).unwrap();
        let u = Standardisation::of_split(&a).unwrap();
        let x: Vec<f64> = data.iter().map(|&v| v as f64).collect();
        let s = u.standardise(&x);
        let first: Vec<f64> = s.iter().step_by(2).copied().collect();
        let mean = first.iter().sum::<f64>() / 6.0;
        let var = first.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12,
            "{mean} {var}"
        );
        // the constant coordinate keeps scale 1 and becomes 0
        assert_eq!(u.scale[1], 1.0);
        assert!(s.iter().skip(1).step_by(2).all(|v| v.abs() < 1e-12));
        let back = u.physical(&s);
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn standardisation_refuses_bad_data() {
        let a = Array::new(vec![1, 2, 1], vec![1.0, f32::NAN]).unwrap();
        assert!(Standardisation::of_split(&a)
            .unwrap_err()
            .to_string()
            .contains("non-finite"));
        assert!(Standardisation::new(vec![0.0], vec![0.0]).is_err());
        assert!(Standardisation::new(vec![0.0, 1.0], vec![1.0]).is_err());
    }
}
