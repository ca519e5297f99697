//! Several components on the device: k-means++ seeds, Lloyd's k-means and
//! the clusters' M-step as the initial mixture (scikit-learn's `kmeans`
//! initialisation), then a fixed number of EM passes over the stored,
//! standardized features (see the parent module for the recipe).

use core::num::NonZeroUsize;

use rand_core::{RngCore, SeedableRng};

use super::factor::{invert_cholesky, tri};
use super::{INTERNAL, RecipeSpec};
use crate::Error;
use crate::Xoshiro128PlusPlus;
use crate::gmm::Covariance;

/// The mixture being learned and the E-step's sums, in the learner's state.
struct Mixture<'s> {
    // Non-zero, so that chunking by them has no panic path.
    d: NonZeroUsize,
    /// Values of one component's factor.
    f: NonZeroUsize,
    covariance: Covariance,
    weights: &'s mut [f64],
    means: &'s mut [f64],
    factors: &'s mut [f64],
    sum_n: &'s mut [f64],
    sum_x: &'s mut [f64],
    sum_xx: &'s mut [f64],
    log_resp: &'s mut [f64],
    /// `ln w_c - D/2 ln(2 pi) + ln det X_c` of every component, once per pass.
    log_norm: &'s mut [f64],
}

/// Fits the mixture of `spec`, regularised by `reg`, to `rows`
/// (standardized features, D each) into `state` (weights, means, factors,
/// then the sums, K log-responsibilities and K log-normalisers; see
/// `Layout`).
pub(super) fn fit(
    spec: &RecipeSpec,
    f: usize,
    reg: f64,
    state: &mut [f64],
    rows: &[f32],
) -> Result<(), Error> {
    let (d, k) = (spec.dim as usize, spec.components as usize);
    let (Some(nd), Some(nf)) = (NonZeroUsize::new(d), NonZeroUsize::new(f)) else {
        return Err(INTERNAL);
    };
    let mut rest = state;
    let mut m = Mixture {
        d: nd,
        f: nf,
        covariance: spec.covariance,
        weights: take(&mut rest, k)?,
        means: take(&mut rest, k * d)?,
        factors: take(&mut rest, k * f)?,
        sum_n: take(&mut rest, k)?,
        sum_x: take(&mut rest, k * d)?,
        sum_xx: take(&mut rest, k * f)?,
        log_resp: take(&mut rest, k)?,
        log_norm: take(&mut rest, k)?,
    };
    if rows.is_empty() || rows.len() % nd != 0 {
        return Err(INTERNAL);
    }
    m.seed_means(rows, spec.seed)?;
    m.k_means(rows, spec.iterations)?;
    m.m_step(reg)?;
    for _ in 0..spec.iterations {
        m.e_step(rows)?;
        m.m_step(reg)?;
    }
    Ok(())
}

/// The first `len` values of `rest`, which keeps the others.
fn take<'a>(rest: &mut &'a mut [f64], len: usize) -> Result<&'a mut [f64], Error> {
    let (part, tail) = core::mem::take(rest)
        .split_at_mut_checked(len)
        .ok_or(INTERNAL)?;
    *rest = tail;
    Ok(part)
}

/// Squared distance between a stored row and a mean.
fn distance2(row: &[f32], mean: &[f64]) -> f64 {
    row.iter()
        .zip(mean)
        .map(|(&x, &m)| (f64::from(x) - m) * (f64::from(x) - m))
        .sum()
}

impl Mixture<'_> {
    /// k-means++: the first mean a uniformly drawn row, each next one a
    /// row drawn with probability proportional to its squared distance to
    /// the nearest mean so far.
    fn seed_means(&mut self, rows: &[f32], seed: u64) -> Result<(), Error> {
        let d = self.d.get();
        let n = rows.len() / self.d;
        if n == 0 {
            return Err(INTERNAL);
        }
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
        for c in 0..self.weights.len() {
            let u = rng.next_u32();
            let chosen = if c == 0 {
                ((u64::from(u) * n as u64) >> 32) as usize
            } else {
                let (chosen_means, _) = self.means.split_at_checked(c * d).ok_or(INTERNAL)?;
                let nearest = |row: &[f32]| {
                    chosen_means
                        .chunks_exact(d)
                        .map(|mean| distance2(row, mean))
                        .fold(f64::INFINITY, f64::min)
                };
                let total: f64 = rows.chunks_exact(d).map(nearest).sum();
                let target = f64::from(u) / 4_294_967_296.0 * total;
                let mut cumulative = 0.0;
                let mut chosen = c % n;
                if total > 0.0 {
                    for (i, row) in rows.chunks_exact(d).enumerate() {
                        cumulative += nearest(row);
                        chosen = i;
                        if cumulative > target {
                            break;
                        }
                    }
                }
                chosen
            };
            let row = rows.get(chosen * d..(chosen + 1) * d).ok_or(INTERNAL)?;
            let mean = self.means.get_mut(c * d..(c + 1) * d).ok_or(INTERNAL)?;
            for (m, &x) in mean.iter_mut().zip(row) {
                *m = f64::from(x);
            }
        }
        Ok(())
    }

    /// `passes` of Lloyd's k-means from the seeded means (a mean with no
    /// rows stays), then the sums of one more hard assignment, from which
    /// the M-step makes the initial mixture (scikit-learn's `kmeans`
    /// initialisation).
    fn k_means(&mut self, rows: &[f32], passes: u32) -> Result<(), Error> {
        let d = self.d.get();
        for pass in 0..=passes {
            self.clear_sums();
            for row in rows.chunks_exact(d) {
                let mut best = (f64::INFINITY, 0);
                for (c, mean) in self.means.chunks_exact(d).enumerate() {
                    let dist = distance2(row, mean);
                    if dist < best.0 {
                        best = (dist, c);
                    }
                }
                self.accumulate(row, best.1, 1.0)?;
            }
            if pass == passes {
                break;
            }
            let sums = self.sum_n.iter().zip(self.sum_x.chunks_exact(d));
            for (mean, (&n, sx)) in self.means.chunks_exact_mut(d).zip(sums) {
                if n > 0.0 {
                    for (m, &s) in mean.iter_mut().zip(sx) {
                        *m = s / n;
                    }
                }
            }
        }
        Ok(())
    }

    fn clear_sums(&mut self) {
        self.sum_n.fill(0.0);
        self.sum_x.fill(0.0);
        self.sum_xx.fill(0.0);
    }

    /// Adds `row` with weight `r` to component `c`'s count, sum and second
    /// moments (lower triangle, or diagonal).
    fn accumulate(&mut self, row: &[f32], c: usize, r: f64) -> Result<(), Error> {
        let (d, f) = (self.d.get(), self.f.get());
        *self.sum_n.get_mut(c).ok_or(INTERNAL)? += r;
        let sx = self.sum_x.get_mut(c * d..(c + 1) * d).ok_or(INTERNAL)?;
        for (s, &x) in sx.iter_mut().zip(row) {
            *s += r * f64::from(x);
        }
        let sxx = self.sum_xx.get_mut(c * f..(c + 1) * f).ok_or(INTERNAL)?;
        match self.covariance {
            Covariance::Full | Covariance::Tied => {
                let mut rest = sxx;
                for (i, &xi) in row.iter().enumerate() {
                    let (s_row, tail) = rest.split_at_mut_checked(i + 1).ok_or(INTERNAL)?;
                    rest = tail;
                    let rxi = r * f64::from(xi);
                    for (s, &xj) in s_row.iter_mut().zip(row) {
                        *s += rxi * f64::from(xj);
                    }
                }
            }
            Covariance::Diag | Covariance::Spherical => {
                for (s, &x) in sxx.iter_mut().zip(row) {
                    *s += r * f64::from(x) * f64::from(x);
                }
            }
        }
        Ok(())
    }

    /// Every component's log-normaliser `ln w_c - D/2 ln(2 pi) + sum_j ln
    /// X_c,jj` into `log_norm`.
    fn log_normalisers(&mut self) -> Result<(), Error> {
        let d = self.d.get();
        let half_log_2pi = 0.5 * d as f64 * libm::log(2.0 * core::f64::consts::PI);
        let components = self
            .weights
            .iter()
            .zip(self.factors.chunks_exact(self.f.get()));
        for (norm, (&w, factor)) in self.log_norm.iter_mut().zip(components) {
            let mut log_det = 0.0;
            for j in 0..d {
                let at = match self.covariance {
                    Covariance::Full | Covariance::Tied => tri(j, j),
                    Covariance::Diag | Covariance::Spherical => j,
                };
                log_det += libm::log(*factor.get(at).ok_or(INTERNAL)?);
            }
            *norm = libm::log(w) - half_log_2pi + log_det;
        }
        Ok(())
    }

    /// `ln w_c + ln N(x | mean_c, cov_c)` of every component into
    /// `log_resp` (from [`Self::log_normalisers`]), then normalised by
    /// their log-sum-exp.
    fn responsibilities(&mut self, row: &[f32]) -> Result<(), Error> {
        let d = self.d.get();
        let components = self
            .log_norm
            .iter()
            .zip(self.means.chunks_exact(d))
            .zip(self.factors.chunks_exact(self.f.get()));
        for (l, ((&norm, mean), factor)) in self.log_resp.iter_mut().zip(components) {
            let mut maha = 0.0;
            match self.covariance {
                Covariance::Full | Covariance::Tied => {
                    // y_j = sum_{i <= j} X_ji (x_i - mean_i): row j of X.
                    let mut rows = factor;
                    for j in 0..d {
                        let (x_row, tail) = rows.split_at_checked(j + 1).ok_or(INTERNAL)?;
                        rows = tail;
                        let y: f64 = x_row
                            .iter()
                            .zip(row)
                            .zip(mean)
                            .map(|((&xji, &xi), &mi)| xji * (f64::from(xi) - mi))
                            .sum();
                        maha += y * y;
                    }
                }
                Covariance::Diag | Covariance::Spherical => {
                    for ((&xj, &mj), &p) in row.iter().zip(mean).zip(factor) {
                        let y = p * (f64::from(xj) - mj);
                        maha += y * y;
                    }
                }
            }
            *l = norm - 0.5 * maha;
        }
        let max = self
            .log_resp
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = self.log_resp.iter().map(|&l| libm::exp(l - max)).sum();
        let lse = max + libm::log(sum);
        for l in self.log_resp.iter_mut() {
            *l -= lse;
        }
        Ok(())
    }

    /// Accumulates the responsibility-weighted count, sum and second
    /// moments of every component over all rows.
    fn e_step(&mut self, rows: &[f32]) -> Result<(), Error> {
        self.clear_sums();
        self.log_normalisers()?;
        for row in rows.chunks_exact(self.d.get()) {
            self.responsibilities(row)?;
            for c in 0..self.log_resp.len() {
                let r = libm::exp(*self.log_resp.get(c).ok_or(INTERNAL)?);
                self.accumulate(row, c, r)?;
            }
        }
        Ok(())
    }

    /// scikit-learn's M-step from the sums: `n_c + 10 eps`, normalised
    /// weights, means, covariances plus `reg`, then their factors.
    fn m_step(&mut self, reg: f64) -> Result<(), Error> {
        let (d, f) = (self.d.get(), self.f.get());
        let count = |n: f64| n + 10.0 * f64::EPSILON;
        let total: f64 = self.sum_n.iter().map(|&n| count(n)).sum();
        let components = self
            .weights
            .iter_mut()
            .zip(self.means.chunks_exact_mut(d))
            .zip(self.factors.chunks_exact_mut(f));
        let sums = self
            .sum_n
            .iter()
            .zip(self.sum_x.chunks_exact(d))
            .zip(self.sum_xx.chunks_exact(f));
        for (((w, mean), factor), ((&n, sx), sxx)) in components.zip(sums) {
            let n = count(n);
            *w = n / total;
            for (m, &s) in mean.iter_mut().zip(sx) {
                *m = s / n;
            }
            let mean = &*mean;
            match self.covariance {
                Covariance::Full | Covariance::Tied => {
                    for i in 0..d {
                        for j in 0..=i {
                            let at = tri(i, j);
                            let s = *sxx.get(at).ok_or(INTERNAL)?;
                            let (mi, mj) =
                                (*mean.get(i).ok_or(INTERNAL)?, *mean.get(j).ok_or(INTERNAL)?);
                            let mut c = s / n - mi * mj;
                            if i == j {
                                c += reg;
                            }
                            *factor.get_mut(at).ok_or(INTERNAL)? = c;
                        }
                    }
                }
                Covariance::Diag | Covariance::Spherical => {
                    for ((c, &s), &m) in factor.iter_mut().zip(sxx).zip(mean) {
                        *c = s / n - m * m + reg;
                    }
                }
            }
            invert_cholesky(factor, d, self.covariance)?;
        }
        Ok(())
    }
}
