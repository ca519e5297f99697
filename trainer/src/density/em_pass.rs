//! One EM iteration as a single pass over blocks of rows, in parallel: the
//! E-step's log-densities, log-sum-exp and responsibilities, and the
//! M-step's sufficient statistics, with no N x K or N x D temporaries.
//!
//! Per block, full covariances project the block on every component at
//! once through `matrixmultiply` (`x [U_1 .. U_K]`, `U` the precision's
//! upper Cholesky factor, minus `mu U`, as scikit-learn does) and take
//! each component's scatter about its current mean, `S = sum_i r_i (x_i -
//! mu)(x_i - mu)^T`, in one product; diagonal and spherical ones expand
//! the squares over the block centred at the mixture's mean (see
//! [`diagonal_block`]). The new covariance about the new means `m` follows
//! exactly from `S`, `a = sum_i r_i (x_i - mu)` and `n = sum_i r_i`: `S - d
//! a^T - a d^T + n d d^T` with `d = m - mu` (scikit-learn centres at `m` in
//! a second pass; the two agree to rounding, checked against it by the
//! parity tests). The loops, and the diagonal products of small mixtures,
//! are in [`super::em_kernels`]. Tied covariances take [`GaussianMixture::e_step`]
//! and [`GaussianMixture::from_responsibilities`].

use nalgebra::DMatrix;
use rayon::prelude::*;
use tinygen_runtime::gmm::Covariance;

use super::em_kernels as kernels;
use super::gmm::{FitError, GaussianMixture, precision_cholesky};

/// Rows per block: a block's copies and products stay in cache (128 and
/// 1,024 timed the same).
const BLOCK: usize = 256;

/// Mixtures of up to this many diagonal or spherical components take
/// their block's products through the loops of [`kernels`] (no copy, no
/// packing); larger ones through matrix products, which reuse each load
/// better there (N = 100,000, ms per iteration in a release build, loops
/// against products: D = 16 K = 8 2.5 against 3.4, D = 64 K = 8 8.4
/// against 11.9; D = 16 K = 16 4.6 against 4.9, level, and K = 32 9.4
/// against 7.8).
const DIAGONAL_KERNEL_MAX_K: usize = 8;

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
    let full = is_full(model.covariance)?;
    let prep = Prepared::new(model, x.ncols());
    let stats = over_blocks(x, model.components(), full, |rows| {
        block_stats(&prep, model, rows, full)
    });
    let mean_ll = stats.log_likelihood / x.nrows() as f64;
    Some((mean_ll, m_step(model, &stats, reg_covar)))
}

/// The M-step from given responsibilities (EM's start), as
/// [`GaussianMixture::from_responsibilities`] computes it but with the
/// blocked statistics of an iteration, about the weighted means; `None`
/// for tied covariances.
pub fn initial_m_step(
    x: &DMatrix<f64>,
    resp: &DMatrix<f64>,
    covariance: Covariance,
    reg_covar: f64,
) -> Option<Result<GaussianMixture, FitError>> {
    let full = is_full(covariance)?;
    let (n, k) = resp.shape();
    let nk: Vec<f64> = (resp.as_slice().chunks_exact(n.max(1)))
        .map(|r| kernels::sum(r) + 10.0 * f64::EPSILON)
        .collect();
    let mut means = crate::linalg::gram(resp, x);
    for (c, mut row) in means.row_iter_mut().enumerate() {
        row /= nk[c];
    }
    let total: f64 = nk.iter().sum();
    let start = GaussianMixture {
        covariance,
        weights: nk.iter().map(|w| w / total).collect(),
        means: means.transpose().as_slice().to_vec(),
        covariances: vec![],
        precisions_cholesky: vec![],
    };
    let g = mixture_mean(&start);
    let stats = over_blocks(x, k, full, |rows| {
        let mut r = Vec::with_capacity(rows.len * k);
        for col in resp.as_slice().chunks_exact(n) {
            r.extend_from_slice(&col[rows.start..rows.start + rows.len]);
        }
        let mut stats = Stats::zeros(k, x.ncols(), full);
        if full {
            full_moments(&start, &rows.copy(), &r, &mut stats);
        } else {
            let columns: Vec<&[f64]> = rows.columns().collect();
            let xc = product_block(rows, &g, k);
            diagonal_moments(&start, &g, &columns, xc.as_ref(), &r, &mut stats);
        }
        stats
    });
    Some(m_step(&start, &stats, reg_covar))
}

/// Whether EM's blocked pass takes full covariances (`Some(true)`),
/// diagonal or spherical ones (`Some(false)`) or not these (tied: `None`).
fn is_full(covariance: Covariance) -> Option<bool> {
    match covariance {
        Covariance::Full => Some(true),
        Covariance::Diag | Covariance::Spherical => Some(false),
        Covariance::Tied => None,
    }
}

/// `f(block)` over blocks of [`BLOCK`] rows of `x`, in parallel, and the
/// sum of the statistics.
fn over_blocks(x: &DMatrix<f64>, k: usize, full: bool, f: impl Fn(Rows) -> Stats + Sync) -> Stats {
    let n = x.nrows();
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let start = b * BLOCK;
            f(Rows {
                x,
                start,
                len: BLOCK.min(n - start),
            })
        })
        .reduce(|| Stats::zeros(k, x.ncols(), full), Stats::add)
}

/// A block: rows `start..start + len` of `x`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    x: &'a DMatrix<f64>,
    start: usize,
    len: usize,
}

impl<'a> Rows<'a> {
    /// Each column's part in the block.
    fn columns(self) -> impl Iterator<Item = &'a [f64]> {
        let n = self.x.nrows();
        (self.x.as_slice().chunks_exact(n.max(1)))
            .map(move |col| &col[self.start..self.start + self.len])
    }

    /// The block as a matrix of its own (column-major).
    fn copy(self) -> DMatrix<f64> {
        let mut values = Vec::with_capacity(self.len * self.x.ncols());
        self.columns().for_each(|col| values.extend_from_slice(col));
        DMatrix::from_vec(self.len, self.x.ncols(), values)
    }
}

/// What every block needs of the model: the precision factors side by
/// side and the per-component constants.
struct Prepared {
    /// Full: `[U_1 .. U_K]`, D x DK, so that one matrix product projects a
    /// block on every component. Diagonal and spherical: column `c` holds
    /// `-2 p_c² m_c` then `p_c²` (2D x K; `p_cj` the precision factor of
    /// feature j, `m_c = mu_c - centre`), so that `[x', x'²]` times it is
    /// every component's squared distance but for `Σ_j p_cj² m_cj²`.
    factors: DMatrix<f64>,
    /// Full: `mu_c U_c` (K x D).
    scale: Vec<f64>,
    /// `ln w_c + ln det U_c - D/2 ln(2 pi)`; diagonal and spherical ones
    /// also minus `Σ_j p_cj² m_cj² / 2`.
    constant: Vec<f64>,
    /// Diagonal and spherical: where blocks are centred ([`mixture_mean`]).
    centre: Vec<f64>,
}

impl Prepared {
    fn new(model: &GaussianMixture, d: usize) -> Self {
        let k = model.components();
        let log_2pi = d as f64 * (2.0 * std::f64::consts::PI).ln();
        let p = &model.precisions_cholesky;
        let log_det = |c: usize| -> f64 {
            match model.covariance {
                Covariance::Full => (0..d).map(|i| p[c * d * d + i * d + i].ln()).sum(),
                Covariance::Diag => p[c * d..(c + 1) * d].iter().map(|v| v.ln()).sum(),
                _ => d as f64 * p[c].ln(),
            }
        };
        let mut constant: Vec<f64> = (0..k)
            .map(|c| model.weights[c].ln() + log_det(c) - 0.5 * log_2pi)
            .collect();
        let centre = match model.covariance {
            Covariance::Full => vec![],
            _ => mixture_mean(model),
        };
        let (factors, scale) = match model.covariance {
            Covariance::Full => {
                // U_c is row-major in the model: (i, j) at c D² + i D + j.
                let factors = DMatrix::from_fn(d, d * k, |i, cj| {
                    let (c, j) = (cj / d, cj % d);
                    p[c * d * d + i * d + j]
                });
                let projected_means = (0..k * d)
                    .map(|cj| {
                        let (c, j) = (cj / d, cj % d);
                        (0..=j)
                            .map(|i| model.means[c * d + i] * p[c * d * d + i * d + j])
                            .sum()
                    })
                    .collect();
                (factors, projected_means)
            }
            Covariance::Diag | Covariance::Spherical => {
                let p2 = |c: usize, j: usize| {
                    let pcj = if model.covariance == Covariance::Diag {
                        p[c * d + j]
                    } else {
                        p[c]
                    };
                    pcj * pcj
                };
                let shifted = |c: usize, j: usize| model.means[c * d + j] - centre[j];
                for (c, constant) in constant.iter_mut().enumerate() {
                    let q: f64 = (0..d)
                        .map(|j| p2(c, j) * shifted(c, j) * shifted(c, j))
                        .sum();
                    *constant -= 0.5 * q;
                }
                let weights = DMatrix::from_fn(2 * d, k, |jj, c| {
                    if jj < d {
                        -2.0 * p2(c, jj) * shifted(c, jj)
                    } else {
                        p2(c, jj - d)
                    }
                });
                (weights, vec![])
            }
            Covariance::Tied => (DMatrix::zeros(0, 0), vec![]),
        };
        Prepared {
            factors,
            scale,
            constant,
            centre,
        }
    }
}

/// The E-step and the sufficient statistics of one block of rows (stored
/// column by column).
fn block_stats(prep: &Prepared, model: &GaussianMixture, rows: Rows, full: bool) -> Stats {
    if full {
        full_block(prep, model, rows.copy())
    } else {
        diagonal_block(prep, model, rows, &prep.centre)
    }
}

/// Full covariances: every component's projection of the block in one
/// matrix product (`x [U_1 .. U_K]`, as scikit-learn projects), then the
/// moments ([`full_moments`]).
fn full_block(prep: &Prepared, model: &GaussianMixture, xb: DMatrix<f64>) -> Stats {
    let (b, d) = xb.shape();
    let k = model.components();
    let mut stats = Stats::zeros(k, d, true);
    let y = &xb * &prep.factors;
    // ln w_c + ln N(x_i | c), column c for component c (B x K); then the
    // responsibilities, in place.
    let mut resp = vec![0.0; b * k];
    for (c, (lp, yc)) in resp
        .chunks_exact_mut(b)
        .zip(y.as_slice().chunks_exact(d * b))
        .enumerate()
    {
        kernels::full_squares(lp, yc, &prep.scale[c * d..(c + 1) * d]);
        kernels::log_prob_from_squares(lp, 0.0, prep.constant[c]);
    }
    stats.log_likelihood = kernels::responsibilities(&mut resp, b);
    full_moments(model, &xb, &resp, &mut stats);
    stats
}

/// Full covariances' statistics of a block about `model`'s means, from
/// the responsibilities `resp` (K columns of B): each component's scatter
/// in one matrix product, `S = (r ∘ diff)ᵀ diff`.
fn full_moments(model: &GaussianMixture, xb: &DMatrix<f64>, resp: &[f64], stats: &mut Stats) {
    let (b, d) = xb.shape();
    let (mut diff, mut weighted) = (vec![0.0; d * b], vec![0.0; d * b]);
    for (c, r) in resp.chunks_exact(b).enumerate() {
        stats.n[c] = kernels::sum(r);
        let mu = &model.means[c * d..(c + 1) * d];
        kernels::centre(&mut diff, xb.as_slice(), mu, b);
        kernels::weigh(&mut weighted, &mut stats.a[c * d..(c + 1) * d], r, &diff, b);
        let s = &mut stats.s[c * d * d..(c + 1) * d * d];
        crate::linalg::gram_into(s, &weighted, &diff, [b, d, d]);
    }
}

/// Diagonal and spherical covariances: the block centred at `g`, the
/// mixture's mean (`x' = x - g`, so that the expansions below lose little
/// to cancellation), then every component's log-density from one product,
/// `Σ_j p_cj² (x'_j - m_cj)² = Σ_j x'_j (-2 p_cj² m_cj) + x'_j² p_cj² +
/// Σ_j p_cj² m_cj²` with `m_c = mu_c - g` (scikit-learn expands the square
/// the same way; the weights and the last sum are [`Prepared`]'s), then
/// the moments ([`diagonal_moments`]).
fn diagonal_block(prep: &Prepared, model: &GaussianMixture, rows: Rows, g: &[f64]) -> Stats {
    let (b, d) = (rows.len, rows.x.ncols());
    let k = model.components();
    let mut stats = Stats::zeros(k, d, false);
    let columns: Vec<&[f64]> = rows.columns().collect();
    // ln w_c + ln N(x_i | c), column c for component c (B x K); then the
    // responsibilities, in place.
    let xc = product_block(rows, g, k);
    let mut resp = match &xc {
        None => {
            let mut resp = vec![0.0; b * k];
            kernels::diagonal_products(&mut resp, &columns, g, prep.factors.as_slice());
            resp
        }
        Some(xc) => (xc * &prep.factors).data.into(),
    };
    for (lp, &constant) in resp.chunks_exact_mut(b).zip(&prep.constant) {
        kernels::log_prob_from_squares(lp, 0.0, constant);
    }
    stats.log_likelihood = kernels::responsibilities(&mut resp, b);
    diagonal_moments(model, g, &columns, xc.as_ref(), &resp, &mut stats);
    stats
}

/// [`centred`]'s block when `k` diagonal or spherical components take the
/// matrix products (more than [`DIAGONAL_KERNEL_MAX_K`]); `None` when the
/// loops of [`kernels`] read the data's columns themselves.
fn product_block(rows: Rows, g: &[f64], k: usize) -> Option<DMatrix<f64>> {
    (k > DIAGONAL_KERNEL_MAX_K).then(|| centred(rows, g))
}

/// `[x' | x'²]` (B x 2D) with `x' = x - g`: the block for the matrix
/// products of mixtures of more than [`DIAGONAL_KERNEL_MAX_K`] components.
fn centred(rows: Rows, g: &[f64]) -> DMatrix<f64> {
    let (b, d) = (rows.len, rows.x.ncols());
    let mut values = vec![0.0; 2 * d * b];
    let (lin, sq) = values.split_at_mut(b * d);
    for (((lin, sq), x), &gj) in lin
        .chunks_exact_mut(b.max(1))
        .zip(sq.chunks_exact_mut(b.max(1)))
        .zip(rows.columns())
        .zip(g)
    {
        kernels::centre_and_square(lin, sq, x, gj);
    }
    DMatrix::from_vec(b, 2 * d, values)
}

/// The mixture's mean `Σ_c w_c mu_c` (the data's mean, once fitted):
/// where diagonal and spherical blocks are centred.
fn mixture_mean(model: &GaussianMixture) -> Vec<f64> {
    let d = model.dim();
    let mut g = vec![0.0; d];
    for (w, mu) in model.weights.iter().zip(model.means.chunks_exact(d.max(1))) {
        g.iter_mut().zip(mu).for_each(|(g, m)| *g += w * m);
    }
    g
}

/// Diagonal and spherical covariances' statistics of a block (its
/// `columns`, and [`centred`]'s `[x' | x'²]` when there are more than
/// [`DIAGONAL_KERNEL_MAX_K`] components) about `model`'s means, from the
/// responsibilities `resp` (K columns of B): `t₁ = Σ r x'` and `t₂ = Σ r
/// x'²` with `x' = x - g` ([`kernels::diagonal_moments`], or `[t₁ | t₂] =
/// Rᵀ [x' | x'²]` in one matrix product), then `Σ r (x' - m) = t₁ - n m`
/// and `Σ r (x' - m)² = t₂ - 2 m t₁ + n m²` with `m = mu - g`.
fn diagonal_moments(
    model: &GaussianMixture,
    g: &[f64],
    columns: &[&[f64]],
    xc: Option<&DMatrix<f64>>,
    resp: &[f64],
    stats: &mut Stats,
) {
    let d = g.len();
    let k = model.components();
    let b = resp.len() / k.max(1);
    let mut t = vec![0.0; 2 * d * k];
    match xc {
        None => {
            let (t1, t2) = t.split_at_mut(d * k);
            kernels::diagonal_moments(t1, t2, columns, g, resp);
        }
        Some(xc) => crate::linalg::gram_into(&mut t, resp, xc.as_slice(), [b, k, 2 * d]),
    }
    let (t1, t2) = t.split_at(d * k);
    for (c, r) in resp.chunks_exact(b.max(1)).enumerate() {
        let n = kernels::sum(r);
        stats.n[c] = n;
        for j in 0..d {
            let m = model.means[c * d + j] - g[j];
            let (t1, t2) = (t1[j * k + c], t2[j * k + c]);
            stats.a[c * d + j] = t1 - n * m;
            stats.s[c * d + j] = t2 - 2.0 * m * t1 + n * m * m;
        }
    }
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
                        // One triangle of the product (it is symmetric up
                        // to rounding), so that the covariance is exactly
                        // symmetric.
                        let v = about_m(s[j.min(l) * d + j.max(l)], j, l) / nk[c];
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

    /// Rows of [`data`]: several blocks, the last one not a whole number
    /// of the kernels' steps.
    const N: usize = 1001;

    /// Three blobs in 5 dimensions.
    fn data() -> DMatrix<f64> {
        DMatrix::from_fn(N, 5, |i, j| {
            let h = ((i * 7919 + j * 104729) % 10007) as f64 / 10007.0 - 0.5;
            h + 3.0 * (i % 3) as f64 * if j % 2 == 0 { 1.0 } else { -0.5 }
        })
    }

    /// Parameters equal to a relative 1e-10.
    fn assert_close(got: &GaussianMixture, want: &GaussianMixture, what: &str) {
        for (name, a, b) in [
            ("weights", &got.weights, &want.weights),
            ("means", &got.means, &want.means),
            ("covariances", &got.covariances, &want.covariances),
            (
                "precisions",
                &got.precisions_cholesky,
                &want.precisions_cholesky,
            ),
        ] {
            assert_eq!(a.len(), b.len(), "{what} {name}");
            for (u, v) in a.iter().zip(b) {
                assert!(
                    (u - v).abs() <= 1e-10 * v.abs().max(1.0),
                    "{what} {name}: {u} vs {v}"
                );
            }
        }
    }

    #[test]
    fn the_blocked_initial_m_step_is_from_responsibilities() {
        let x = data();
        // Three components, six (a tile of four and two more) and 17
        // (through matrix products).
        for k in [3, 6, 17] {
            let resp = DMatrix::from_fn(N, k, |i, c| ((i * 7 + c * 3) % 5) as f64 + 0.5);
            let resp = DMatrix::from_fn(N, k, |i, c| resp[(i, c)] / resp.row(i).sum());
            for covariance in [Covariance::Full, Covariance::Diag, Covariance::Spherical] {
                let got = initial_m_step(&x, &resp, covariance, 1e-6)
                    .unwrap()
                    .unwrap();
                let want =
                    GaussianMixture::from_responsibilities(&x, &resp, covariance, 1e-6).unwrap();
                assert_close(&got, &want, &format!("{covariance:?} K={k}"));
            }
        }
        let resp = DMatrix::from_fn(N, 3, |i, c| ((i * 7 + c * 3) % 5) as f64 + 0.5);
        let resp = DMatrix::from_fn(N, 3, |i, c| resp[(i, c)] / resp.row(i).sum());
        // Far from the origin, where moments about zero (scikit-learn's
        // diagonal M-step, and `from_responsibilities`') lose digits: the
        // blocked diagonal variances are still the full covariances'
        // diagonal, which both compute about the means.
        let far = x.add_scalar(1e3);
        let full =
            GaussianMixture::from_responsibilities(&far, &resp, Covariance::Full, 1e-6).unwrap();
        let diag = initial_m_step(&far, &resp, Covariance::Diag, 1e-6)
            .unwrap()
            .unwrap();
        for (c, variances) in diag.covariances.chunks_exact(5).enumerate() {
            for (j, v) in variances.iter().enumerate() {
                let want = full.covariances[c * 25 + j * 5 + j];
                assert!((v - want).abs() <= 1e-12 * want, "{c} {j}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn one_pass_equals_the_e_step_then_the_m_step() {
        let x = data();
        for (k, covariance) in [3, 6, 17].into_iter().flat_map(|k| {
            [Covariance::Full, Covariance::Diag, Covariance::Spherical].map(|c| (k, c))
        }) {
            let resp = DMatrix::from_fn(N, k, |i, c| {
                if i % k == c {
                    0.8
                } else {
                    0.2 / (k - 1) as f64
                }
            });
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
            let what = format!("{covariance:?} K={k}");
            assert!(
                (ll - expected_ll).abs() <= 1e-12 * expected_ll.abs(),
                "{what}"
            );
            assert_close(&next, &expected, &what);
        }
        assert!(
            initial_m_step(
                &x,
                &DMatrix::from_element(N, 2, 0.5),
                Covariance::Tied,
                1e-6
            )
            .is_none()
        );
        let tied = GaussianMixture::from_responsibilities(
            &x,
            &DMatrix::from_element(N, 2, 0.5),
            Covariance::Tied,
            1e-6,
        )
        .unwrap();
        assert!(em_iteration(&tied, &x, 1e-6).is_none());
    }
}
