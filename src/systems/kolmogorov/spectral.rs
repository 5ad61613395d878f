//! The periodic spectral grid on [0, 2π)²: FFT plans (planned once, shared), wavenumbers,
//! the 2/3-rule dealiasing mask, and 2-D real transforms into caller-owned buffers.
//!
//! Layouts: physical fields are row-major `[iy][ix]` (n × n, y down the rows). Spectral fields
//! are `[kx][ky]` ((n/2+1) × n): a real FFT along x per row, a transpose, then complex FFTs
//! along y over contiguous blocks. The forward transform is unnormalised; the inverse divides by
//! n², so `inverse(forward(f)) = f`.

use std::sync::Arc;

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{num_complex::Complex, Fft, FftPlanner};

use crate::{Error, Result};

/// Complex numbers of the spectral fields.
pub type C64 = Complex<f64>;

/// FFT plans, wavenumbers and masks of an n × n periodic grid.
pub struct SpectralGrid {
    n: usize,
    nk: usize,
    r2c: Arc<dyn RealToComplex<f64>>,
    c2r: Arc<dyn ComplexToReal<f64>>,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
    /// x wavenumbers 0..=n/2 (length n/2+1).
    pub kx: Vec<f64>,
    /// y wavenumbers in FFT order 0, 1, …, n/2−1, −n/2, …, −1 (length n).
    pub ky: Vec<f64>,
    /// |k|² in spectral layout.
    pub k2: Vec<f64>,
    /// 1 where |kx| < n/3 and |ky| < n/3 (2/3 rule), else 0, in spectral layout.
    pub dealias: Vec<f64>,
}

/// Grids at least this large split each transform over two threads; smaller ones run serially
/// (the join overhead would dominate).
const PARALLEL_FROM: usize = 128;

/// Runs `a` and `b`, in parallel when `parallel`.
fn join(parallel: bool, a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
    if parallel {
        rayon::join(a, b);
    } else {
        a();
        b();
    }
}

/// Reusable buffers of the transforms (one per thread of work). Rows are split in two halves
/// transformed in parallel (`rayon::join`), each half with its own scratch.
pub struct FftScratch {
    rows: Vec<C64>,
    cols: Vec<C64>,
    row_in: [Vec<f64>; 2],
    scratch: [Vec<C64>; 2],
}

impl SpectralGrid {
    /// Plans the transforms of an n × n grid (n even, ≥ 4).
    pub fn new(n: usize) -> Result<Self> {
        if n < 4 || n % 2 != 0 {
            return Err(Error::Invalid(format!(
                "spectral grid size must be even and ≥ 4, got {n}"
            )));
        }
        let nk = n / 2 + 1;
        let mut real = RealFftPlanner::<f64>::new();
        let mut complex = FftPlanner::<f64>::new();
        let kx: Vec<f64> = (0..nk).map(|i| i as f64).collect();
        let ky: Vec<f64> = (0..n)
            .map(|j| {
                if j < n / 2 {
                    j as f64
                } else {
                    j as f64 - n as f64
                }
            })
            .collect();
        let cut = n as f64 / 3.0;
        let mut k2 = vec![0.0; nk * n];
        let mut dealias = vec![0.0; nk * n];
        for (a, &x) in kx.iter().enumerate() {
            for (b, &y) in ky.iter().enumerate() {
                k2[a * n + b] = x * x + y * y;
                dealias[a * n + b] = if x.abs() < cut && y.abs() < cut {
                    1.0
                } else {
                    0.0
                };
            }
        }
        Ok(Self {
            n,
            nk,
            r2c: real.plan_fft_forward(n),
            c2r: real.plan_fft_inverse(n),
            fwd: complex.plan_fft_forward(n),
            inv: complex.plan_fft_inverse(n),
            kx,
            ky,
            k2,
            dealias,
        })
    }

    /// Grid size n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of spectral values, (n/2+1)·n.
    pub fn spectral_len(&self) -> usize {
        self.nk * self.n
    }

    /// Buffers for [`Self::forward`] and [`Self::inverse`].
    pub fn scratch(&self) -> FftScratch {
        let len = self
            .r2c
            .get_scratch_len()
            .max(self.c2r.get_scratch_len())
            .max(self.fwd.get_inplace_scratch_len())
            .max(self.inv.get_inplace_scratch_len());
        FftScratch {
            rows: vec![C64::default(); self.spectral_len()],
            cols: vec![C64::default(); self.spectral_len()],
            row_in: [vec![0.0; self.n], vec![0.0; self.n]],
            scratch: [vec![C64::default(); len], vec![C64::default(); len]],
        }
    }

    /// Number of x-wavenumber columns that the 2/3 rule keeps (`kx < n/3`).
    pub fn band(&self) -> usize {
        (self.n - 1) / 3 + 1
    }

    /// Physical `[iy][ix]` → spectral `[kx][ky]` (unnormalised).
    pub fn forward(&self, phys: &[f64], spec: &mut [C64], ws: &mut FftScratch) {
        self.forward_band(phys, spec, ws, self.nk);
    }

    /// Like [`Self::forward`], but only the first `cols` x-wavenumber columns are computed; the
    /// others are set to zero (for fields about to be dealiased).
    pub fn forward_band(&self, phys: &[f64], spec: &mut [C64], ws: &mut FftScratch, cols: usize) {
        let (n, nk) = (self.n, self.nk);
        let half = n / 2;
        let (rows_a, rows_b) = ws.rows.split_at_mut(half * nk);
        let [in_a, in_b] = &mut ws.row_in;
        let [sc_a, sc_b] = &mut ws.scratch;
        let r2c = &self.r2c;
        let run = |rows: &mut [C64], phys: &[f64], row_in: &mut Vec<f64>, sc: &mut Vec<C64>| {
            for (out, inp) in rows.chunks_exact_mut(nk).zip(phys.chunks_exact(n)) {
                row_in.copy_from_slice(inp);
                r2c.process_with_scratch(row_in, out, sc)
                    .expect("buffer sizes match the plan");
            }
        };
        join(
            self.n >= PARALLEL_FROM,
            || run(rows_a, &phys[..half * n], in_a, sc_a),
            || run(rows_b, &phys[half * n..], in_b, sc_b),
        );
        for a in 0..cols {
            let col = &mut spec[a * n..(a + 1) * n];
            for (iy, c) in col.iter_mut().enumerate() {
                *c = ws.rows[iy * nk + a];
            }
        }
        spec[cols * n..]
            .iter_mut()
            .for_each(|c| *c = C64::default());
        let split = cols.div_ceil(2) * n;
        let (spec_a, spec_b) = spec[..cols * n].split_at_mut(split);
        let fwd = &self.fwd;
        join(
            self.n >= PARALLEL_FROM,
            || fwd.process_with_scratch(spec_a, sc_a),
            || {
                if !spec_b.is_empty() {
                    fwd.process_with_scratch(spec_b, sc_b)
                }
            },
        );
    }

    /// Spectral `[kx][ky]` → physical `[iy][ix]` (divides by n²). `spec` is left unchanged.
    pub fn inverse(&self, spec: &[C64], phys: &mut [f64], ws: &mut FftScratch) {
        self.inverse_band(spec, phys, ws, self.nk);
    }

    /// Like [`Self::inverse`], for a spectrum known to vanish outside the first `cols`
    /// x-wavenumber columns (a dealiased field): the other columns are not transformed.
    pub fn inverse_band(&self, spec: &[C64], phys: &mut [f64], ws: &mut FftScratch, cols: usize) {
        let (n, nk) = (self.n, self.nk);
        let half = n / 2;
        let band = &mut ws.cols[..cols * n];
        band.copy_from_slice(&spec[..cols * n]);
        let split = cols.div_ceil(2) * n;
        let (col_a, col_b) = band.split_at_mut(split);
        let [sc_a, sc_b] = &mut ws.scratch;
        let inv = &self.inv;
        join(
            self.n >= PARALLEL_FROM,
            || inv.process_with_scratch(col_a, sc_a),
            || {
                if !col_b.is_empty() {
                    inv.process_with_scratch(col_b, sc_b)
                }
            },
        );
        for iy in 0..n {
            let row = &mut ws.rows[iy * nk..(iy + 1) * nk];
            for (a, r) in row.iter_mut().enumerate().take(cols) {
                *r = ws.cols[a * n + iy];
            }
            row[cols..].iter_mut().for_each(|c| *c = C64::default());
        }
        let scale = 1.0 / (n * n) as f64;
        let (rows_a, rows_b) = ws.rows.split_at_mut(half * nk);
        let (phys_a, phys_b) = phys.split_at_mut(half * n);
        let c2r = &self.c2r;
        let run = |rows: &mut [C64], phys: &mut [f64], sc: &mut Vec<C64>| {
            for (row, out) in rows.chunks_exact_mut(nk).zip(phys.chunks_exact_mut(n)) {
                // a real field has real DC and Nyquist bins; drop round-off imaginary parts
                row[0].im = 0.0;
                row[nk - 1].im = 0.0;
                c2r.process_with_scratch(row, out, sc)
                    .expect("buffer sizes match the plan");
                out.iter_mut().for_each(|v| *v *= scale);
            }
        };
        join(
            self.n >= PARALLEL_FROM,
            || run(rows_a, phys_a, sc_a),
            || run(rows_b, phys_b, sc_b),
        );
    }
}
