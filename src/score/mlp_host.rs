//! The ResMLP's forward pass and its input VJP written out on the host (f32 GEMMs from the
//! `gemm` crate, the element-wise work fused into single passes), for CPU builds.
//!
//! The guided ε of Algorithm 3 (and MMPS's covariance products) needs, per window, one forward
//! of the local network and one vector–Jacobian product **with respect to its input**, the
//! parameters frozen. Written out, that reverse pass is one GEMM with the transposed weight per
//! linear layer, and the LayerNorm and SiLU derivatives as one pass each over saved
//! activations — no parameter gradients, no graph, no intermediate tensors per operation. For
//! a block `h ↦ h + SiLU(n W₁ + b₁) W₂ + b₂` (row vectors, `n = LN(h)`, `a = n W₁ + b₁`) and a
//! cotangent `g` of the block's output:
//!
//! `g_s = g W₂ᵀ`, `g_a = g_s ⊙ SiLU′(a)`, `g_n = g_a W₁ᵀ`,
//! `g_h = g + (g_n − mean(g_n) − n · mean(g_n ⊙ n)) / √(var(h) + 1e-5)`.
//!
//! The time embedding is the same for every window of a sampling step, so its product with the
//! input layer's weight is folded into the bias once per call (`forward` of [`HostMlp`]). The
//! element-wise loops have AVX2/FMA variants chosen at run time, and the activations live in
//! reused buffers. `super::mlp` tests all of it against burn's operations and autodiff, and
//! `examples/guided_flops.rs` times it against the same-shape GEMM.

use gemm::Parallelism;

/// Rows (windows) per task: each task's GEMMs and saved activations stay in the cores' caches,
/// and the tasks of one call run in parallel (rayon).
pub const ROWS: usize = 256;

/// A dense layer `y = x W + b` with `W` stored row-major `[inputs, outputs]` (burn's `Linear`
/// layout), and `Wᵀ` row-major for the reverse pass, so that every GEMM reads its right-hand
/// side row by row.
#[derive(Debug, Clone)]
pub struct HostLinear {
    /// `[inputs · outputs]`, row-major.
    weight: Vec<f32>,
    /// `[outputs · inputs]`, row-major.
    transposed: Vec<f32>,
    /// `[outputs]`.
    bias: Vec<f32>,
    /// Number of inputs.
    inputs: usize,
    /// Number of outputs.
    outputs: usize,
}

impl HostLinear {
    /// A layer from its row-major `[inputs, outputs]` weight and its bias.
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        assert_eq!(weight.len(), inputs * outputs);
        assert_eq!(bias.len(), outputs);
        let mut transposed = vec![0.0; weight.len()];
        for i in 0..inputs {
            for o in 0..outputs {
                transposed[o * inputs + i] = weight[i * outputs + o];
            }
        }
        Self {
            weight,
            transposed,
            bias,
            inputs,
            outputs,
        }
    }
}

/// One residual block `h + Linear₂(SiLU(Linear₁(LN(h))))`.
#[derive(Debug, Clone)]
pub struct HostBlock {
    /// The first linear layer (width → width).
    pub first: HostLinear,
    /// The second linear layer (width → width).
    pub second: HostLinear,
}

/// The ResMLP trunk of [`super::mlp::ResMlp`] with its weights on the host: input layer on
/// `[window values, embedding]`, residual blocks, output layer.
#[derive(Debug, Clone)]
pub struct HostMlp {
    /// Input layer, `(io + E) → width`; its first `io` rows act on the window values.
    input: HostLinear,
    /// The residual blocks.
    blocks: Vec<HostBlock>,
    /// Output layer, `width → io`.
    output: HostLinear,
    /// `Wᵀ` of the input layer's rows that act on the window values, `[width · io]`.
    input_transposed: Vec<f32>,
}

/// What the reverse pass needs from a forward over one task's rows: per block the normalised
/// input `n`, the SiLU derivative at the pre-activation `a` (`[rows · width]` each) and the
/// rows' `1/√(var + 1e-5)`.
struct Tape {
    rows: usize,
    /// `[blocks · rows · width]`.
    normalised: Vec<f32>,
    /// `[blocks · rows · width]`.
    silu_slope: Vec<f32>,
    /// `[blocks · rows]`.
    inv_std: Vec<f32>,
}

impl Drop for Tape {
    fn drop(&mut self) {
        for b in [
            &mut self.normalised,
            &mut self.silu_slope,
            &mut self.inv_std,
        ] {
            give(std::mem::take(b));
        }
    }
}

/// Buffers reused across calls. A task's activations are a few hundred KiB, which the system
/// allocator serves by mapping fresh pages on every call — each page zeroed by the kernel on
/// first touch, a cost comparable to the GEMMs' at these sizes; pooled buffers stay mapped.
static POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// Most buffers kept in [`POOL`] (enough for every task of a sampling batch; more are freed).
const POOL_SIZE: usize = 512;

/// A zeroed buffer of `len` values, from [`POOL`] where one is large enough: the smallest such
/// (so that small requests do not take the large buffers and leave the pool to grow).
fn take(len: usize) -> Vec<f32> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)
            .map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut b) => {
            b.clear();
            b.resize(len, 0.0);
            b
        }
        None => vec![0.0; len],
    }
}

/// Returns a buffer to [`POOL`].
fn give(b: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < POOL_SIZE && b.capacity() > 0 {
        pool.push(b);
    }
}

/// `bias` written into every row of `out` (`[rows · bias.len()]`).
fn fill_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// The saved activations of a forward over all rows, for [`HostMlp::vjp`].
pub struct Saved {
    tapes: Vec<Tape>,
}

/// `c (m × n) += a (m × k) · w (k × n)`, all row-major. One thread: the callers parallelise
/// over rows.
fn matmul(c: &mut [f32], a: &[f32], w: &[f32], m: usize, k: usize, n: usize) {
    gemm_rows(c, a, w, [m, k, n], true)
}

/// `c (m × n) = a (m × k) · w (k × n)`, overwriting `c` (see [`matmul`]).
fn matmul_into(c: &mut [f32], a: &[f32], w: &[f32], m: usize, k: usize, n: usize) {
    gemm_rows(c, a, w, [m, k, n], false)
}

fn gemm_rows(c: &mut [f32], a: &[f32], w: &[f32], [m, k, n]: [usize; 3], accumulate: bool) {
    assert!(c.len() == m * n && a.len() == m * k && w.len() == k * n);
    let (rhs_cs, rhs_rs) = (1, n as isize);
    // SAFETY: the three slices hold exactly the m×n, m×k and k×n elements addressed by these
    // strides (checked above), and `c` does not alias `a` or `w` (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Whether the CPU has AVX2 and FMA, for the element-wise loops' wide variants (8 f32 lanes
/// and fused multiply–adds, where the default x86-64 target compiles for SSE2's 4 lanes).
#[cfg(target_arch = "x86_64")]
fn wide_simd() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Defines `fn $name` whose body is compiled twice — for AVX2 and FMA, chosen at run time
/// where the CPU has them ([`wide_simd`]), and for the default target.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            if wide_simd() {
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) {
                    body($($arg),*)
                }
                // SAFETY: the CPU supports AVX2 and FMA (checked by `wide_simd`).
                return unsafe { wide($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

multiversion! {
    /// `a ← SiLU(a) = a σ(a)` in place, and with `slope` also
    /// `SiLU′(a) = σ(a) (1 + a (1 − σ(a)))`.
    fn silu(a: &mut [f32], slope: Option<&mut [f32]>) {
        match slope {
            Some(slope) => {
                for (av, dv) in a.iter_mut().zip(slope.iter_mut()) {
                    let sg = sigmoid(*av);
                    *dv = sg * (1.0 + *av * (1.0 - sg));
                    *av *= sg;
                }
            }
            None => {
                for av in a.iter_mut() {
                    *av *= sigmoid(*av);
                }
            }
        }
    }
}

multiversion! {
    /// `g ← g ⊙ s` (the SiLU's reverse pass with the saved slope `s`).
    fn scale(g: &mut [f32], s: &[f32]) {
        for (gv, sv) in g.iter_mut().zip(s) {
            *gv *= sv;
        }
    }
}

multiversion! {
    /// The LayerNorm's reverse pass, row by row, added into `gh`:
    /// `gh += (g_n − mean(g_n) − n · mean(g_n ⊙ n)) / √(var + 1e-5)`.
    fn layer_norm_vjp(gh: &mut [f32], gn: &[f32], n: &[f32], inv: &[f32], w: usize) {
        for (((ghr, gnr), nr), iv) in gh
            .chunks_exact_mut(w)
            .zip(gn.chunks_exact(w))
            .zip(n.chunks_exact(w))
            .zip(inv)
        {
            let mean_g = sum(gnr) / w as f32;
            let mean_gn = dot(gnr, nr) / w as f32;
            for ((ghv, &gv), &nv) in ghr.iter_mut().zip(gnr).zip(nr) {
                *ghv += iv * (gv - mean_g - nv * mean_gn);
            }
        }
    }
}

/// `1 / (1 + e^(−a))` with [`exp`].
#[inline(always)]
fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp(-a))
}

/// `e^x` in f32 arithmetic the compiler can vectorise (no libm call, no float-to-int cast):
/// `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its Taylor polynomial of degree 7
/// (truncation error below 1e-8 relative), `2^n` by writing the exponent bits. The integer n is
/// read from the bits of `x log₂e + 1.5·2²³`, whose last mantissa bits hold it. Arguments are
/// clamped to [−87, 88], where `e^x` is a normal f32.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // max/min are single vector instructions (`clamp` adds NaN handling); a NaN argument
    // still gives a NaN SiLU, through its factor `a`
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let two_n = (shifted.to_bits().wrapping_sub(ROUND.to_bits())).wrapping_add(127) << 23;
    f32::from_bits(two_n) * p
}

/// `Σ aᵢ bᵢ` with eight partial sums, so that the loop vectorises (a single running sum would
/// be a chain of dependent additions).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ aᵢ` with eight partial sums (see [`dot`]).
#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ac = a.chunks_exact(8);
    let tail: f32 = ac.remainder().iter().sum();
    for x in ac {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl HostMlp {
    /// Checks the layers' shapes against each other (a programming error if they disagree:
    /// they are read from one network).
    pub fn new(input: HostLinear, blocks: Vec<HostBlock>, output: HostLinear) -> Self {
        let width = input.outputs;
        for b in &blocks {
            assert!(b.first.inputs == width && b.first.outputs == width);
            assert!(b.second.inputs == width && b.second.outputs == width);
        }
        assert_eq!(output.inputs, width);
        let io = output.outputs;
        assert!(input.inputs >= io);
        let input_transposed = input
            .transposed
            .chunks_exact(input.inputs)
            .flat_map(|row| row[..io].to_vec())
            .collect();
        Self {
            input,
            blocks,
            output,
            input_transposed,
        }
    }

    /// Values per window, `(2k+1)·D`.
    pub fn io(&self) -> usize {
        self.output.outputs
    }

    fn width(&self) -> usize {
        self.input.outputs
    }

    /// The input layer's bias for embedding `emb` (`[E]`): `b + emb · W[io..]`.
    fn input_bias(&self, emb: &[f32]) -> Vec<f32> {
        let (io, w) = (self.io(), self.width());
        assert_eq!(emb.len(), self.input.inputs - io);
        let mut bias = self.input.bias.clone();
        matmul(
            &mut bias,
            emb,
            &self.input.weight[io * w..],
            1,
            emb.len(),
            w,
        );
        bias
    }

    /// The raw outputs F of windows `x` (`[rows · io]`, row-major) at one time whose embedding
    /// is `emb`, and, with `save`, the activations the VJP needs.
    pub fn forward(&self, x: &[f32], emb: &[f32], save: bool) -> (Vec<f32>, Option<Saved>) {
        use rayon::prelude::*;
        let io = self.io();
        assert_eq!(x.len() % io, 0);
        let bias = self.input_bias(emb);
        let parts: Vec<(Vec<f32>, Option<Tape>)> = x
            .par_chunks(ROWS * io)
            .map(|xs| self.forward_rows(xs, &bias, save))
            .collect();
        let mut out = Vec::with_capacity(x.len());
        let mut tapes = Vec::with_capacity(parts.len());
        for (f, tape) in parts {
            out.extend_from_slice(&f);
            tapes.extend(tape);
        }
        (out, save.then_some(Saved { tapes }))
    }

    fn forward_rows(&self, x: &[f32], input_bias: &[f32], save: bool) -> (Vec<f32>, Option<Tape>) {
        let (io, w) = (self.io(), self.width());
        let rows = x.len() / io;
        let size = rows * w;
        let mut h = take(size);
        fill_rows(&mut h, input_bias);
        matmul(&mut h, x, &self.input.weight[..io * w], rows, io, w);
        let blocks = self.blocks.len();
        let mut tape = save.then(|| Tape {
            rows,
            normalised: take(blocks * size),
            silu_slope: take(blocks * size),
            inv_std: take(blocks * rows),
        });
        // without a tape, one block's LayerNorm output and row scales at a time
        let (mut n_own, mut inv_own) = if save {
            (Vec::new(), Vec::new())
        } else {
            (take(size), take(rows))
        };
        let mut a = take(size);
        for (l, b) in self.blocks.iter().enumerate() {
            let (n, inv, slope) = match tape.as_mut() {
                Some(t) => (
                    &mut t.normalised[l * size..(l + 1) * size],
                    &mut t.inv_std[l * rows..(l + 1) * rows],
                    Some(&mut t.silu_slope[l * size..(l + 1) * size]),
                ),
                None => (&mut n_own[..], &mut inv_own[..], None),
            };
            layer_norm(&h, n, inv, w);
            fill_rows(&mut a, &b.first.bias);
            matmul(&mut a, n, &b.first.weight, rows, w, w);
            silu(&mut a, slope);
            for row in h.chunks_exact_mut(w) {
                for (hv, bv) in row.iter_mut().zip(&b.second.bias) {
                    *hv += bv;
                }
            }
            matmul(&mut h, &a, &b.second.weight, rows, w, w);
        }
        let mut f = vec![0.0; rows * io];
        fill_rows(&mut f, &self.output.bias);
        matmul(&mut f, &h, &self.output.weight, rows, w, io);
        for buffer in [h, a, n_own, inv_own] {
            give(buffer);
        }
        (f, tape)
    }

    /// `(∂F/∂x)ᵀ g` at the saved forward: the cotangent `g` of the raw outputs (`[rows · io]`)
    /// pulled back to the window values (`[rows · io]`).
    pub fn vjp(&self, saved: &Saved, g: &[f32]) -> Vec<f32> {
        use rayon::prelude::*;
        let io = self.io();
        let total: usize = saved.tapes.iter().map(|t| t.rows).sum();
        assert_eq!(g.len(), total * io);
        let mut starts = Vec::with_capacity(saved.tapes.len());
        let mut offset = 0;
        for tape in &saved.tapes {
            starts.push(offset);
            offset += tape.rows * io;
        }
        let parts: Vec<Vec<f32>> = saved
            .tapes
            .par_iter()
            .zip(starts)
            .map(|(tape, s)| self.vjp_rows(tape, &g[s..s + tape.rows * io]))
            .collect();
        parts.concat()
    }

    fn vjp_rows(&self, tape: &Tape, g: &[f32]) -> Vec<f32> {
        let (io, w, rows) = (self.io(), self.width(), tape.rows);
        let size = rows * w;
        let mut gh = take(size);
        matmul(&mut gh, g, &self.output.transposed, rows, io, w);
        let (mut gs, mut gn) = (take(size), take(size));
        for (l, b) in self.blocks.iter().enumerate().rev() {
            matmul_into(&mut gs, &gh, &b.second.transposed, rows, w, w);
            scale(&mut gs, &tape.silu_slope[l * size..(l + 1) * size]);
            matmul_into(&mut gn, &gs, &b.first.transposed, rows, w, w);
            layer_norm_vjp(
                &mut gh,
                &gn,
                &tape.normalised[l * size..(l + 1) * size],
                &tape.inv_std[l * rows..(l + 1) * rows],
                w,
            );
        }
        let mut gx = vec![0.0f32; rows * io];
        matmul(&mut gx, &gh, &self.input_transposed, rows, w, io);
        for buffer in [gh, gs, gn] {
            give(buffer);
        }
        gx
    }
}

multiversion! {
    /// Row-wise `(h − mean) / √(var + 1e-5)` into `n`, and each row's `1/√(var + 1e-5)` into
    /// `inv` (the LayerNorm without affine parameters of [`super::embed::normalise_axis1`]).
    fn layer_norm(h: &[f32], n: &mut [f32], inv: &mut [f32], w: usize) {
    for ((hr, nr), iv) in h
        .chunks_exact(w)
        .zip(n.chunks_exact_mut(w))
        .zip(inv.iter_mut())
    {
        let mean = sum(hr) / w as f32;
        for (nv, hv) in nr.iter_mut().zip(hr) {
            *nv = hv - mean;
        }
        let var = dot(nr, nr) / w as f32;
        *iv = 1.0 / (var + 1e-5).sqrt();
        for nv in nr.iter_mut() {
            *nv *= *iv;
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorisable `exp` against the standard library's over the range SiLU sees, and its
    /// clamping outside.
    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let (fast, exact) = (f64::from(exp(x)), f64::from(x).exp());
            worst = worst.max((fast - exact).abs() / exact);
        }
        assert!(worst < 1e-6, "relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert_eq!(exp(1000.0), exp(88.0));
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
