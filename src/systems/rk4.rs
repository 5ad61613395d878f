//! One classical Runge–Kutta (RK4) step of a vector field, with its exact derivatives: the
//! tangent-linear model of the discrete step (forward mode through the four stages) and its
//! adjoint (reverse mode), as the variational methods need them. A system supplies its vector
//! field and the Jacobian's products ([`VectorField`]).

/// An autonomous vector field `f` with the products of its Jacobian `J(x)`.
pub trait VectorField {
    /// `f(x)`, written into `out`.
    fn drift(&self, x: &[f64], out: &mut [f64]);
    /// `J(x) v`, written into `out`.
    fn jacobian_times(&self, x: &[f64], v: &[f64], out: &mut [f64]);
    /// `J(x)ᵀ w`, written into `out`.
    fn jacobian_transpose_times(&self, x: &[f64], w: &[f64], out: &mut [f64]);
}

/// The shifts of the stage points and the weights of the slopes: stage s + 1 is evaluated at
/// `x + shift_s h k_s`, the step is `x + h/6 Σ weight_s k_s`.
const TABLEAU: [(f64, f64); 4] = [(0.5, 1.0), (0.5, 2.0), (1.0, 2.0), (0.0, 1.0)];

/// The four stage points `x, x + h/2 k1, x + h/2 k2, x + h k3` and the step
/// `x + h/6 (k1 + 2 k2 + 2 k3 + k4)`.
pub fn stages(f: &impl VectorField, x: &[f64], h: f64) -> ([Vec<f64>; 4], Vec<f64>) {
    let n = x.len();
    let mut k = vec![0.0; n];
    let mut points: [Vec<f64>; 4] = [x.to_vec(), vec![0.0; n], vec![0.0; n], vec![0.0; n]];
    let mut out = x.to_vec();
    for (s, (shift, weight)) in TABLEAU.into_iter().enumerate() {
        f.drift(&points[s], &mut k);
        for i in 0..n {
            out[i] += h / 6.0 * weight * k[i];
        }
        if s < 3 {
            for i in 0..n {
                points[s + 1][i] = x[i] + shift * h * k[i];
            }
        }
    }
    (points, out)
}

/// One RK4 step of size `h`.
pub fn step(f: &impl VectorField, x: &[f64], h: f64) -> Vec<f64> {
    stages(f, x, h).1
}

/// The tangent-linear model of one RK4 step: its derivative at `x` in the direction `dx`.
pub fn tangent_linear(f: &impl VectorField, x: &[f64], dx: &[f64], h: f64) -> Vec<f64> {
    let n = x.len();
    let (points, _) = stages(f, x, h);
    let mut dk = vec![0.0; n];
    let mut u = dx.to_vec();
    let mut out = dx.to_vec();
    for (s, (shift, weight)) in TABLEAU.into_iter().enumerate() {
        f.jacobian_times(&points[s], &u, &mut dk);
        for i in 0..n {
            out[i] += h / 6.0 * weight * dk[i];
            u[i] = dx[i] + shift * h * dk[i];
        }
    }
    out
}

/// The adjoint of one RK4 step: the transpose of [`tangent_linear`] at `x` applied to `lambda`
/// (reverse mode through the four stages).
pub fn adjoint(f: &impl VectorField, x: &[f64], lambda: &[f64], h: f64) -> Vec<f64> {
    let n = x.len();
    let (points, _) = stages(f, x, h);
    // adjoints of the slopes k1..k4 from the step's weights h/6 · (1, 2, 2, 1)
    let mut k_bar: [Vec<f64>; 4] =
        TABLEAU.map(|(_, w)| lambda.iter().map(|l| h / 6.0 * w * l).collect());
    let mut out = lambda.to_vec();
    let mut u_bar = vec![0.0; n];
    // stage s was evaluated at x + shift_{s−1} h k_{s−1}: its input adjoint flows to x and to
    // the previous slope
    for s in (0..4).rev() {
        f.jacobian_transpose_times(&points[s], &k_bar[s], &mut u_bar);
        for i in 0..n {
            out[i] += u_bar[i];
        }
        if s > 0 {
            let shift = TABLEAU[s - 1].0;
            for i in 0..n {
                k_bar[s - 1][i] += shift * h * u_bar[i];
            }
        }
    }
    out
}
