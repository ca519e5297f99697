//! One EM iteration as a single pass over blocks of rows, in parallel: the
//! E-step's log-densities, log-sum-exp and responsibilities, and the
//! M-step's sufficient statistics, with no N x K or N x D temporaries.
//!
//! Per block and component, the centred rows `x - mu` (the current means)
//! go through one matrix product for the Mahalanobis terms (`(x - mu) U`,
//! `U` the precision's upper Cholesky factor) and one for the scatter
//! `S = sum_i r_i (x_i - mu)(x_i - mu)^T`; the new covariance about the new
//! means `m` follows exactly from `S`, `a = sum_i r_i (x_i - mu)` and
//! `n = sum_i r_i`: `S - d a^T - a d^T + n d d^T` with `d = m - mu`
//! (scikit-learn centres at `m` in a second pass; the two agree to rounding,
//! checked against it by the parity tests). Full, diagonal and spherical
//! covariances; tied ones take [`GaussianMixture::e_step`] and
//! [`GaussianMixture::from_responsibilities`].

use multiversion::multiversion;
use nalgebra::DMatrix;
use rayon::prelude::*;
use tinygen_runtime::gmm::Covariance;

use super::gmm::{FitError, GaussianMixture, precision_cholesky};

/// Rows per block: a block's centred rows for every component stay in cache.
const BLOCK: usize = 256;

/// Sufficient statistics of one block (or of all of them, summed).
struct Stats {
    /// Sum of the rows' log-likelihoods.
    log_likelihood: f64,
    /// `n_c = sum_i r_ic`.
    n: Vec<f64>,
    /// `a_c = sum_i r_ic (x_i - mu_c)`, K x D.
    a: Vec<f64>,
    /// Scatter about the current means: K x D x D (full) or K x D (diagonal).
    s: Vec<f64>,
}

impl Stats {
    fn zeros(k: usize, d: usize, full: bool) -> Self {
        Stats {
            log_likelihood: 0.0,
            n: vec![0.0; k],
            a: vec![0.0; k * d],
            s: vec![0.0; if full { k * d * d } else { k * d }],
        }
    }

    fn add(mut self, other: Stats) -> Stats {
        self.log_likelihood += other.log_likelihood;
        for (x, y) in [
            (&mut self.n, &other.n),
            (&mut self.a, &other.a),
            (&mut self.s, &other.s),
        ] {
            x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
        }
        self
    }
}

/// One EM iteration from `model`: the mean log-likelihood of `x` under
/// `model` and the model the M-step gives (an error for a singular
/// covariance); `None` for tied covariances.
pub fn em_iteration(
    model: &GaussianMixture,
    x: &DMatrix<f64>,
    reg_covar: f64,
) -> Option<(f64, Result<GaussianMixture, FitError>)> {
    let full = match model.covariance {
        Covariance::Full => true,
        Covariance::Diag | Covariance::Spherical => false,
        Covariance::Tied => return None,
    };
    let (n, d) = x.shape();
    let k = model.components();
    let prep = Prepared::new(model, d);
    let stats = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let rows = BLOCK.min(n - b * BLOCK);
            block_stats(&prep, model, x.rows(b * BLOCK, rows).into_owned(), full)
        })
        .reduce(|| Stats::zeros(k, d, full), Stats::add);
    let mean_ll = stats.log_likelihood / n as f64;
    Some((mean_ll, m_step(model, &stats, reg_covar)))
}

/// What every block needs of the model: the precision factors as matrices
/// and the per-component constants.
struct Prepared {
    /// `U_c` (full) as D x D matrices.
    factors: Vec<DMatrix<f64>>,
    /// `ln w_c + ln det U_c - D/2 ln(2 pi)`.
    constant: Vec<f64>,
}

impl Prepared {
    fn new(model: &GaussianMixture, d: usize) -> Self {
        let k = model.components();
        let log_2pi = d as f64 * (2.0 * std::f64::consts::PI).ln();
        let p = &model.precisions_cholesky;
        let (factors, log_det): (Vec<DMatrix<f64>>, Vec<f64>) = (0..k)
            .map(|c| match model.covariance {
                Covariance::Full => {
                    let u = DMatrix::from_row_slice(d, d, &p[c * d * d..(c + 1) * d * d]);
                    let log_det = u.diagonal().iter().map(|v| v.ln()).sum();
                    (u, log_det)
                }
                Covariance::Diag => (
                    DMatrix::zeros(0, 0),
                    p[c * d..(c + 1) * d].iter().map(|v| v.ln()).sum(),
                ),
                _ => (DMatrix::zeros(0, 0), d as f64 * p[c].ln()),
            })
            .unzip();
        let constant = (0..k)
            .map(|c| model.weights[c].ln() + log_det[c] - 0.5 * log_2pi)
            .collect();
        Prepared { factors, constant }
    }
}

/// The E-step and the sufficient statistics of one block of rows.
fn block_stats(prep: &Prepared, model: &GaussianMixture, xb: DMatrix<f64>, full: bool) -> Stats {
    let (b, d) = xb.shape();
    let k = model.components();
    let mut stats = Stats::zeros(k, d, full);
    // ln w_c + ln N(x_i | c), column c for component c (B x K).
    let mut log_prob = DMatrix::<f64>::zeros(b, k);
    // Full covariances keep each component's centred rows for the scatter.
    let mut centred: Vec<DMatrix<f64>> = Vec::with_capacity(if full { k } else { 0 });
    let mut y = DMatrix::<f64>::zeros(b, if full { d } else { 0 });
    let p = &model.precisions_cholesky;
    for c in 0..k {
        let mu = &model.means[c * d..(c + 1) * d];
        let mut sq = vec![0.0; b];
        if full {
            let mut diff = xb.clone();
            for (j, mut col) in diff.column_iter_mut().enumerate() {
                col.add_scalar_mut(-mu[j]);
            }
            // y = diff U, U upper triangular: column j of y sums columns
            // 0..=j of diff (axpys over the block's rows).
            let u = &prep.factors[c];
            for j in 0..d {
                let yj = &mut y.as_mut_slice()[j * b..(j + 1) * b];
                yj.fill(0.0);
                for i in 0..=j {
                    axpy(yj, u[(i, j)], &diff.as_slice()[i * b..(i + 1) * b]);
                }
                add_squares(&mut sq, yj);
            }
            centred.push(diff);
        } else {
            for (j, col) in xb.column_iter().enumerate() {
                let (m, pj) = match model.covariance {
                    Covariance::Diag => (mu[j], p[c * d + j]),
                    _ => (mu[j], p[c]),
                };
                add_scaled_squares(&mut sq, col.as_slice(), m, pj);
            }
        }
        let constant = prep.constant[c];
        log_prob
            .column_mut(c)
            .iter_mut()
            .zip(&sq)
            .for_each(|(l, s)| *l = -0.5 * s + constant);
    }
    // Responsibilities per row (a row of zero density makes the
    // log-likelihood -inf: EM stops there as diverged).
    let mut row = vec![0.0; k];
    for i in 0..b {
        for (c, r) in row.iter_mut().enumerate() {
            *r = log_prob[(i, c)];
        }
        // One exp per component: r_c = exp(l_c - max) / sum_c exp(l_c - max).
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        if max == f64::NEG_INFINITY {
            stats.log_likelihood = f64::NEG_INFINITY;
            continue;
        }
        row.iter_mut().for_each(|r| *r = (*r - max).exp());
        let sum: f64 = row.iter().sum();
        stats.log_likelihood += max + sum.ln();
        for (c, r) in row.iter().enumerate() {
            log_prob[(i, c)] = r / sum;
        }
    }
    let resp = log_prob;
    for (c, r) in resp.column_iter().enumerate() {
        stats.n[c] = r.sum();
        if let Some(diff) = centred.get(c) {
            let mut weighted = diff.clone();
            for (j, mut col) in weighted.column_iter_mut().enumerate() {
                col.component_mul_assign(&r);
                stats.a[c * d + j] = col.sum();
            }
            // The scatter is symmetric: its lower half, mirrored.
            let s = &mut stats.s[c * d * d..(c + 1) * d * d];
            for j in 0..d {
                let wj = &weighted.as_slice()[j * b..(j + 1) * b];
                for l in 0..=j {
                    let v = dot(wj, &diff.as_slice()[l * b..(l + 1) * b]);
                    s[l * d + j] = v;
                    s[j * d + l] = v;
                }
            }
        } else {
            let mu = &model.means[c * d..(c + 1) * d];
            for (j, col) in xb.column_iter().enumerate() {
                let (a, s) = centred_moments(col.as_slice(), r.as_slice(), mu[j]);
                stats.a[c * d + j] = a;
                stats.s[c * d + j] = s;
            }
        }
    }
    stats
}

// The kernels below are compiled twice, for the baseline and for AVX2
// (chosen at run time): sums run in eight interleaved partial sums, which
// the compiler turns into vector instructions (a single running sum it
// cannot), so results differ from a sequential sum by rounding only.

/// `y += w x`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn axpy(y: &mut [f64], w: f64, x: &[f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += w * x);
}

/// `s += y^2`, elementwise.
#[multiversion(targets("x86_64+avx2+fma"))]
fn add_squares(s: &mut [f64], y: &[f64]) {
    s.iter_mut().zip(y).for_each(|(s, y)| *s += y * y);
}

/// `s += ((x - m) p)^2`, elementwise.
#[multiversion(targets("x86_64+avx2+fma"))]
fn add_scaled_squares(s: &mut [f64], x: &[f64], m: f64, p: f64) {
    s.iter_mut().zip(x).for_each(|(s, x)| {
        let e = (x - m) * p;
        *s += e * e;
    });
}

/// `sum_i a_i b_i`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `(sum_i r_i (x_i - m), sum_i r_i (x_i - m)^2)`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn centred_moments(x: &[f64], r: &[f64], m: f64) -> (f64, f64) {
    let (mut a, mut s) = ([0.0; 8], [0.0; 8]);
    let n = x.len().min(r.len());
    let ((x8, x_tail), (r8, r_tail)) = (x[..n].as_chunks::<8>(), r[..n].as_chunks::<8>());
    let (mut a_tail, mut s_tail) = (0.0, 0.0);
    for (x, r) in x_tail.iter().zip(r_tail) {
        let e = x - m;
        a_tail += r * e;
        s_tail += r * e * e;
    }
    // One pass per sum (the block is in cache), so that the compiler makes
    // the eight lanes of each a vector rather than pairing a with s.
    for (x, r) in x8.iter().zip(r8) {
        for k in 0..8 {
            a[k] += r[k] * (x[k] - m);
        }
    }
    for (x, r) in x8.iter().zip(r8) {
        for k in 0..8 {
            let e = x[k] - m;
            s[k] += r[k] * e * e;
        }
    }
    (
        a.iter().sum::<f64>() + a_tail,
        s.iter().sum::<f64>() + s_tail,
    )
}

/// The M-step from the summed statistics, as
/// [`GaussianMixture::from_responsibilities`] computes it.
fn m_step(
    model: &GaussianMixture,
    stats: &Stats,
    reg_covar: f64,
) -> Result<GaussianMixture, FitError> {
    let k = model.components();
    let d = model.dim();
    let nk: Vec<f64> = stats.n.iter().map(|n| n + 10.0 * f64::EPSILON).collect();
    let mut means = vec![0.0; k * d];
    let mut covariances = Vec::with_capacity(match model.covariance {
        Covariance::Full => k * d * d,
        Covariance::Diag => k * d,
        _ => k,
    });
    for c in 0..k {
        let mu = &model.means[c * d..(c + 1) * d];
        let a = &stats.a[c * d..(c + 1) * d];
        // m = (sum r x) / nk = (a + n mu) / nk.
        let m: Vec<f64> = (0..d)
            .map(|j| (a[j] + stats.n[c] * mu[j]) / nk[c])
            .collect();
        let delta: Vec<f64> = (0..d).map(|j| m[j] - mu[j]).collect();
        means[c * d..(c + 1) * d].copy_from_slice(&m);
        // Scatter about m: S - delta a^T - a delta^T + n delta delta^T.
        let about_m = |s: f64, j: usize, l: usize| {
            s - delta[j] * a[l] - a[j] * delta[l] + stats.n[c] * delta[j] * delta[l]
        };
        match model.covariance {
            Covariance::Full => {
                // The statistics are column-major D x D; the covariance row-major.
                let s = &stats.s[c * d * d..(c + 1) * d * d];
                for j in 0..d {
                    for l in 0..d {
                        let v = about_m(s[l * d + j], j, l) / nk[c];
                        covariances.push(if j == l { v + reg_covar } else { v });
                    }
                }
            }
            _ => {
                let s = &stats.s[c * d..(c + 1) * d];
                let diag = (0..d).map(|j| about_m(s[j], j, j) / nk[c] + reg_covar);
                if model.covariance == Covariance::Diag {
                    covariances.extend(diag);
                } else {
                    covariances.push(diag.sum::<f64>() / d as f64);
                }
            }
        }
    }
    let total: f64 = nk.iter().sum();
    let precisions_cholesky = precision_cholesky(&covariances, model.covariance, k, d, reg_covar)?;
    Ok(GaussianMixture {
        covariance: model.covariance,
        weights: nk.iter().map(|w| w / total).collect(),
        means,
        covariances,
        precisions_cholesky,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three blobs in 5 dimensions, 1,000 rows (crosses several blocks).
    fn data() -> DMatrix<f64> {
        DMatrix::from_fn(1000, 5, |i, j| {
            let h = ((i * 7919 + j * 104729) % 10007) as f64 / 10007.0 - 0.5;
            h + 3.0 * (i % 3) as f64 * if j % 2 == 0 { 1.0 } else { -0.5 }
        })
    }

    #[test]
    fn one_pass_equals_the_e_step_then_the_m_step() {
        let x = data();
        for covariance in [Covariance::Full, Covariance::Diag, Covariance::Spherical] {
            let resp = DMatrix::from_fn(1000, 3, |i, c| if i % 3 == c { 0.8 } else { 0.1 });
            let model =
                GaussianMixture::from_responsibilities(&x, &resp, covariance, 1e-6).unwrap();
            let (ll, next) = em_iteration(&model, &x, 1e-6).unwrap();
            let next = next.unwrap();
            let (expected_ll, log_resp) = model.e_step(&x);
            let expected = GaussianMixture::from_responsibilities(
                &x,
                &log_resp.map(f64::exp),
                covariance,
                1e-6,
            )
            .unwrap();
            assert!(
                (ll - expected_ll).abs() <= 1e-12 * expected_ll.abs(),
                "{covariance:?}"
            );
            for (what, a, b) in [
                ("weights", &next.weights, &expected.weights),
                ("means", &next.means, &expected.means),
                ("covariances", &next.covariances, &expected.covariances),
            ] {
                assert_eq!(a.len(), b.len());
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() <= 1e-10 * v.abs().max(1.0),
                        "{covariance:?} {what}: {u} vs {v}"
                    );
                }
            }
        }
        let tied = GaussianMixture::from_responsibilities(
            &x,
            &DMatrix::from_element(1000, 2, 0.5),
            Covariance::Tied,
            1e-6,
        )
        .unwrap();
        assert!(em_iteration(&tied, &x, 1e-6).is_none());
    }
}
