//! Exact optimal transport between two equally weighted empirical distributions, the W1
//! metric of the paper's Lorenz evaluation (§4.1): with n samples on each side and uniform
//! weights, an optimal coupling is a permutation, found by the Hungarian algorithm.

use crate::{Error, Result};

/// Solves the linear assignment problem `min_σ Σ_i C[i, σ(i)]` for a square `n × n` cost
/// matrix (row-major) by the O(n³) Hungarian algorithm with potentials (Kuhn–Munkres in the
/// shortest-augmenting-path form). Returns `σ` (row → column) and the optimal total cost.
pub fn assignment(cost: &[f64], n: usize) -> Result<(Vec<usize>, f64)> {
    if cost.len() != n * n {
        return Err(Error::Shape(format!(
            "assignment needs an {n}×{n} cost matrix, got {} values",
            cost.len()
        )));
    }
    if let Some(v) = cost.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("assignment cost {v}")));
    }
    let c = |i: usize, j: usize| cost[(i - 1) * n + (j - 1)];
    // 1-based potentials; column 0 is a virtual start
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut p = vec![0usize; n + 1]; // p[j]: row matched to column j
    let mut way = vec![0usize; n + 1];
    let mut minv = vec![0.0; n + 1];
    let mut used = vec![false; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        minv.iter_mut().for_each(|m| *m = f64::INFINITY);
        used.iter_mut().for_each(|b| *b = false);
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = c(i0, j) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut sigma = vec![0usize; n];
    for j in 1..=n {
        sigma[p[j] - 1] = j - 1;
    }
    let total = (0..n).map(|i| cost[i * n + sigma[i]]).sum();
    Ok((sigma, total))
}

/// `W1(P, Q)` between two sets of `n` points of dimension `dim` (row-major), uniform weights,
/// Euclidean ground cost: `min_σ (1/n) Σ_i ‖x_i − y_σ(i)‖`. Exact.
pub fn wasserstein1(x: &[f64], y: &[f64], dim: usize) -> Result<f64> {
    if dim == 0 || !x.len().is_multiple_of(dim) || x.len() != y.len() || x.is_empty() {
        return Err(Error::Shape(format!(
            "W1 needs two sets with the same number of points of dimension {dim} \
             (got {} and {} values)",
            x.len(),
            y.len()
        )));
    }
    let n = x.len() / dim;
    let mut cost = vec![0.0; n * n];
    for i in 0..n {
        let a = &x[i * dim..(i + 1) * dim];
        for j in 0..n {
            let b = &y[j * dim..(j + 1) * dim];
            cost[i * n + j] = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).powi(2))
                .sum::<f64>()
                .sqrt();
        }
    }
    Ok(assignment(&cost, n)?.1 / n as f64)
}
