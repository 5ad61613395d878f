//! The samples behind an evaluation's rows, kept for analysis outside it (`sda evaluate
//! --save-samples`): one folder per observation of `.npy` arrays, which NumPy opens with
//! `np.load`.

use std::path::Path;

use super::Evaluation;
use crate::data::{write_npy, Array};
use crate::{Error, Result};

/// The folder of observation `index`'s arrays under `dir`.
pub fn observation_dir(dir: &Path, index: usize) -> std::path::PathBuf {
    dir.join(format!("observation-{index:04}"))
}

/// A file-name stem for a method's label: lower-case letters and digits, other runs of
/// characters as one `-` (`PC (C=4, diagonal, tau=1)` → `pc-c-4-diagonal-tau-1`).
pub fn stem(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Writes observation `index`'s arrays into [`observation_dir`]: `truth.npy` `[L, D]`, `y.npy`
/// (the observation, in the observation model's units), `reference.npy` `[N, L, D]` (the
/// particle filter's trajectories, when it ran) and `{k}-{stem}.npy` `[N, L, D]` for the k-th
/// method of `labels` (SDA's samplers, then the smoothers: the order of the rows), all in the
/// system's physical units, as `float32`; NaN marks states a filter left unestimated. Each
/// file is written atomically, so a killed run leaves whole files only.
pub fn write(
    dir: &Path,
    index: usize,
    labels: &[String],
    e: &Evaluation,
    truth: &[f64],
    (len, dim): (usize, usize),
    reference: bool,
) -> Result<()> {
    if labels.len() != e.samples.len() {
        return Err(Error::Invalid(format!(
            "{} method labels for {} methods' samples",
            labels.len(),
            e.samples.len()
        )));
    }
    let folder = observation_dir(dir, index);
    std::fs::create_dir_all(&folder).map_err(|source| Error::Io {
        path: folder.clone(),
        source,
    })?;
    let trajectories = |x: &[f64]| -> Result<Array> {
        Array::new(
            vec![x.len() / (len * dim).max(1), len, dim],
            x.iter().map(|&v| v as f32).collect(),
        )
    };
    let truth = Array::new(vec![len, dim], truth.iter().map(|&v| v as f32).collect())?;
    write_npy(&folder.join("truth.npy"), &truth)?;
    let y = Array::new(vec![e.y.len()], e.y.iter().map(|&v| v as f32).collect())?;
    write_npy(&folder.join("y.npy"), &y)?;
    if reference {
        write_npy(&folder.join("reference.npy"), &trajectories(&e.reference)?)?;
    }
    for (k, (label, x)) in labels.iter().zip(&e.samples).enumerate() {
        let name = format!("{k}-{}.npy", stem(label));
        write_npy(&folder.join(name), &trajectories(x)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_file_names_of_the_labels() {
        assert_eq!(stem("PC (C=4, diagonal, tau=1)"), "pc-c-4-diagonal-tau-1");
        assert_eq!(
            stem("LETKS (radius=2, N=40)  "),
            "letks-radius-2-n-40",
            "no trailing dash"
        );
        assert_eq!(stem("DDIM"), "ddim");
    }
}
