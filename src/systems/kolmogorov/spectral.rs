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

/// Cache-blocked transpose: `dst[j * dst_stride + i] = src[i * src_stride + j]` for
/// `i < rows`, `j < cols`.
fn transpose(
    src: &[C64],
    src_stride: usize,
    dst: &mut [C64],
    dst_stride: usize,
    rows: usize,
    cols: usize,
) {
    // 8 × 8 tiles, writing along destination rows: with power-of-two strides a taller tile
    // would map its lines to one cache set and thrash.
    const TILE: usize = 8;
    for i0 in (0..rows).step_by(TILE) {
        let i1 = (i0 + TILE).min(rows);
        for j0 in (0..cols).step_by(TILE) {
            for j in j0..(j0 + TILE).min(cols) {
                let d = &mut dst[j * dst_stride + i0..j * dst_stride + i1];
                for (k, v) in d.iter_mut().enumerate() {
                    *v = src[(i0 + k) * src_stride + j];
                }
            }
        }
    }
}

/// Reusable buffers of the transforms (one per thread of work).
pub struct FftScratch {
    rows: Vec<C64>,
    cols: Vec<C64>,
    row_in: Vec<f64>,
    scratch: Vec<C64>,
}

impl SpectralGrid {
    /// Plans the transforms of an n × n grid (n even, ≥ 4).
    pub fn new(n: usize) -> Result<Self> {
        if n < 4 || !n.is_multiple_of(2) {
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
            row_in: vec![0.0; self.n],
            scratch: vec![C64::default(); len],
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
        for (out, inp) in ws.rows.chunks_exact_mut(nk).zip(phys.chunks_exact(n)) {
            ws.row_in.copy_from_slice(inp);
            self.r2c
                .process_with_scratch(&mut ws.row_in, out, &mut ws.scratch)
                .expect("buffer sizes match the plan");
        }
        transpose(&ws.rows, nk, spec, n, n, cols);
        spec[cols * n..]
            .iter_mut()
            .for_each(|c| *c = C64::default());
        self.fwd
            .process_with_scratch(&mut spec[..cols * n], &mut ws.scratch);
    }

    /// Spectral `[kx][ky]` → physical `[iy][ix]` (divides by n²). `spec` is left unchanged.
    pub fn inverse(&self, spec: &[C64], phys: &mut [f64], ws: &mut FftScratch) {
        let mut cols = std::mem::take(&mut ws.cols);
        cols.copy_from_slice(spec);
        self.inverse_band_in_place(&mut cols, phys, ws, self.nk);
        ws.cols = cols;
    }

    /// Inverse transform of a spectrum that vanishes outside its first `cols` x-wavenumber
    /// columns (a dealiased field); only those columns are transformed, and `spec` is used as
    /// scratch (its content is destroyed).
    pub fn inverse_band_in_place(
        &self,
        spec: &mut [C64],
        phys: &mut [f64],
        ws: &mut FftScratch,
        cols: usize,
    ) {
        let (n, nk) = (self.n, self.nk);
        self.inv
            .process_with_scratch(&mut spec[..cols * n], &mut ws.scratch);
        transpose(spec, n, &mut ws.rows, nk, cols, n);
        let scale = 1.0 / (n * n) as f64;
        for (row, out) in ws.rows.chunks_exact_mut(nk).zip(phys.chunks_exact_mut(n)) {
            row[cols..].iter_mut().for_each(|c| *c = C64::default());
            // a real field has real DC and Nyquist bins; drop round-off imaginary parts
            row[0].im = 0.0;
            row[nk - 1].im = 0.0;
            self.c2r
                .process_with_scratch(row, out, &mut ws.scratch)
                .expect("buffer sizes match the plan");
            out.iter_mut().for_each(|v| *v *= scale);
        }
    }
}
