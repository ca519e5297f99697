//! Drawing points from a fitted [`GaussianMixture`].
//!
//! A draw picks a component with probability equal to its weight, then
//! returns `mu + L z`, where `L` is the lower Cholesky factor of that
//! component's covariance (`L L^T = Sigma`) and `z` is a vector of independent
//! standard normals (Box-Muller on the generator's uniform `f64`s).

use nalgebra::DMatrix;
use rand::Rng;
use tinygen_runtime::gmm::Covariance;

use super::gmm::GaussianMixture;

/// Fills `out` with independent standard normal draws (Box-Muller transform
/// of the generator's uniform `f64`s; both values of each pair are used).
pub fn fill_standard_normal(rng: &mut impl Rng, out: &mut [f64]) {
    for pair in out.chunks_mut(2) {
        // `random::<f64>()` lies in [0, 1), so `u1` lies in (0, 1] and its
        // logarithm is finite.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        pair[0] = r * cos;
        if let Some(second) = pair.get_mut(1) {
            *second = r * sin;
        }
    }
}

/// The square-root factor of one component's covariance.
enum Factor {
    /// Lower-triangular Cholesky factor (full and tied covariances).
    Lower(DMatrix<f64>),
    /// Standard deviation of every coordinate (diag and spherical).
    Diagonal(Vec<f64>),
}

impl GaussianMixture {
    /// Draws `n` independent points from the mixture, one per row (N x D).
    ///
    /// Each row picks component `k` with probability `weights[k]` (weights
    /// are normalised by their sum), then is `mu_k + L_k z` with `L_k` the
    /// lower Cholesky factor of the component's covariance, for every
    /// covariance type, and `z` standard normal. The random numbers are
    /// consumed in a fixed order (first the `n` component choices, then the
    /// `n * D` normals), so a seeded generator gives a reproducible sample.
    ///
    /// # Panics
    ///
    /// If the mixture has no components, if its weights are negative, not
    /// finite or sum to zero, or if a covariance is not positive definite.
    /// A mixture returned by a fit satisfies all of these.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> DMatrix<f64> {
        let k = self.components();
        assert!(k > 0, "cannot sample from a mixture with no components");
        let d = self.dim();
        assert!(
            self.weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            "mixture weights must be finite and non-negative: {:?}",
            self.weights
        );
        let mut cdf = Vec::with_capacity(k);
        let mut total = 0.0;
        for w in &self.weights {
            total += w;
            cdf.push(total);
        }
        assert!(
            total > 0.0 && total.is_finite(),
            "mixture weights must have a positive finite sum, got {total}"
        );
        // The last component that can be drawn (guards against `u * total`
        // rounding up to `total` when trailing weights are zero).
        let last = self
            .weights
            .iter()
            .rposition(|w| *w > 0.0)
            .expect("the weights have a positive sum");

        let factors = self.factors();
        let factor = |c: usize| match self.covariance {
            Covariance::Tied => &factors[0],
            _ => &factors[c],
        };

        let choices: Vec<usize> = (0..n)
            .map(|_| {
                let u = rng.random::<f64>() * total;
                cdf.partition_point(|&c| c <= u).min(last)
            })
            .collect();
        let mut z = vec![0.0; n * d];
        fill_standard_normal(rng, &mut z);

        let mut out = DMatrix::zeros(n, d);
        for (i, (&c, z)) in choices.iter().zip(z.chunks_exact(d.max(1))).enumerate() {
            let mu = &self.means[c * d..(c + 1) * d];
            match factor(c) {
                Factor::Lower(l) => {
                    for j in 0..d {
                        let lz: f64 = (0..=j).map(|m| l[(j, m)] * z[m]).sum();
                        out[(i, j)] = mu[j] + lz;
                    }
                }
                Factor::Diagonal(sd) => {
                    for j in 0..d {
                        out[(i, j)] = mu[j] + sd[j] * z[j];
                    }
                }
            }
        }
        out
    }

    /// Square-root factors of the covariances: one per component, or a single
    /// one for a tied covariance.
    fn factors(&self) -> Vec<Factor> {
        let (k, d) = (self.components(), self.dim());
        let std_dev = |v: f64, c: usize| {
            assert!(
                v > 0.0 && v.is_finite(),
                "variance {v} of component {c} is not positive and finite"
            );
            v.sqrt()
        };
        match self.covariance {
            Covariance::Full | Covariance::Tied => {
                let blocks = if self.covariance == Covariance::Full {
                    k
                } else {
                    1
                };
                (0..blocks)
                    .map(|c| {
                        let cov = DMatrix::from_row_slice(
                            d,
                            d,
                            &self.covariances[c * d * d..(c + 1) * d * d],
                        );
                        let chol = cov.cholesky().unwrap_or_else(|| {
                            panic!("covariance of component {c} is not positive definite")
                        });
                        Factor::Lower(chol.l())
                    })
                    .collect()
            }
            Covariance::Diag => (0..k)
                .map(|c| {
                    Factor::Diagonal(
                        self.covariances[c * d..(c + 1) * d]
                            .iter()
                            .map(|&v| std_dev(v, c))
                            .collect(),
                    )
                })
                .collect(),
            Covariance::Spherical => (0..k)
                .map(|c| Factor::Diagonal(vec![std_dev(self.covariances[c], c); d]))
                .collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use nalgebra::DVector;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A mixture from weights, means (K x D) and covariances in the flat
    /// layout of `covariance`, with the matching precision Cholesky factors
    /// (computed as in `gmm.rs`, so that `score_samples` works).
    pub(crate) fn mixture(
        covariance: Covariance,
        weights: &[f64],
        means: &[f64],
        covariances: &[f64],
    ) -> GaussianMixture {
        let d = means.len() / weights.len();
        let precisions_cholesky = match covariance {
            Covariance::Full | Covariance::Tied => covariances
                .chunks_exact(d * d)
                .flat_map(|block| {
                    let l = DMatrix::from_row_slice(d, d, block)
                        .cholesky()
                        .expect("test covariance is positive definite")
                        .l();
                    let inv = l.solve_lower_triangular(&DMatrix::identity(d, d)).unwrap();
                    // Row-major (L^-1)^T is column-major L^-1.
                    inv.iter().copied().collect::<Vec<_>>()
                })
                .collect(),
            Covariance::Diag | Covariance::Spherical => {
                covariances.iter().map(|v| 1.0 / v.sqrt()).collect()
            }
        };
        GaussianMixture {
            covariance,
            weights: weights.to_vec(),
            means: means.to_vec(),
            covariances: covariances.to_vec(),
            precisions_cholesky,
        }
    }

    /// Exact mean and covariance of a mixture, from its parameters.
    fn moments(gm: &GaussianMixture) -> (DVector<f64>, DMatrix<f64>) {
        let (k, d) = (gm.components(), gm.dim());
        let mut mean = DVector::zeros(d);
        let mut second = DMatrix::zeros(d, d);
        for c in 0..k {
            let mu = DVector::from_column_slice(&gm.means[c * d..(c + 1) * d]);
            let sigma = match gm.covariance {
                Covariance::Full => {
                    DMatrix::from_row_slice(d, d, &gm.covariances[c * d * d..(c + 1) * d * d])
                }
                Covariance::Tied => DMatrix::from_row_slice(d, d, &gm.covariances),
                Covariance::Diag => DMatrix::from_diagonal(&DVector::from_column_slice(
                    &gm.covariances[c * d..(c + 1) * d],
                )),
                Covariance::Spherical => DMatrix::identity(d, d) * gm.covariances[c],
            };
            mean += &mu * gm.weights[c];
            second += (sigma + &mu * mu.transpose()) * gm.weights[c];
        }
        let cov = second - &mean * mean.transpose();
        (mean, cov)
    }

    /// Checks the sample mean and covariance of `n` draws against the exact
    /// moments, within `z` standard errors estimated from the sample itself.
    fn check_moments(gm: &GaussianMixture, n: usize, seed: u64, z: f64) {
        let d = gm.dim();
        let x = gm.sample(n, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(x.shape(), (n, d));
        let (mean, cov) = moments(gm);
        let nf = n as f64;
        let xbar = x.row_mean();
        let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - xbar[j]);
        for j in 0..d {
            let se = (cov[(j, j)] / nf).sqrt();
            assert!(
                (xbar[j] - mean[j]).abs() < z * se,
                "{:?}: mean[{j}] = {} but expected {} (se {se})",
                gm.covariance,
                xbar[j],
                mean[j]
            );
        }
        for a in 0..d {
            for b in 0..d {
                let prod: Vec<f64> = (0..n).map(|i| centred[(i, a)] * centred[(i, b)]).collect();
                let s = prod.iter().sum::<f64>() / nf;
                let var = prod.iter().map(|p| (p - s).powi(2)).sum::<f64>() / (nf - 1.0);
                let se = (var / nf).sqrt();
                assert!(
                    (s - cov[(a, b)]).abs() < z * se,
                    "{:?}: cov[{a},{b}] = {s} but expected {} (se {se})",
                    gm.covariance,
                    cov[(a, b)]
                );
            }
        }
    }

    fn full_two_component() -> GaussianMixture {
        mixture(
            Covariance::Full,
            &[0.3, 0.7],
            &[-1.0, 2.0, 2.0, 0.5],
            &[1.0, 0.6, 0.6, 0.8, 0.5, -0.3, -0.3, 2.0],
        )
    }

    #[test]
    fn full_mixture_moments_match() {
        check_moments(&full_two_component(), 200_000, 1, 4.0);
    }

    #[test]
    fn every_covariance_type_has_the_right_moments() {
        let means = [-1.0, 2.0, 0.5, 2.0, 0.5, -1.5];
        let cases = [
            mixture(
                Covariance::Tied,
                &[0.4, 0.6],
                &means,
                &[1.5, 0.4, -0.2, 0.4, 0.7, 0.1, -0.2, 0.1, 0.9],
            ),
            mixture(
                Covariance::Diag,
                &[0.4, 0.6],
                &means,
                &[0.3, 1.2, 2.0, 1.5, 0.2, 0.6],
            ),
            mixture(Covariance::Spherical, &[0.4, 0.6], &means, &[0.5, 2.0]),
        ];
        for (seed, gm) in cases.iter().enumerate() {
            check_moments(gm, 50_000, seed as u64 + 10, 4.0);
        }
    }

    #[test]
    fn zero_weight_components_are_never_drawn() {
        let gm = mixture(
            Covariance::Spherical,
            &[0.0, 1.0, 0.0],
            &[-100.0, 0.0, 100.0],
            &[1.0, 1.0, 1.0],
        );
        let x = gm.sample(10_000, &mut ChaCha8Rng::seed_from_u64(3));
        assert!(x.iter().all(|v| v.abs() < 10.0));
    }

    #[test]
    fn seeded_sampling_is_deterministic() {
        let gm = full_two_component();
        let a = gm.sample(1000, &mut ChaCha8Rng::seed_from_u64(42));
        let b = gm.sample(1000, &mut ChaCha8Rng::seed_from_u64(42));
        let c = gm.sample(1000, &mut ChaCha8Rng::seed_from_u64(43));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            gm.sample(0, &mut ChaCha8Rng::seed_from_u64(42)).shape(),
            (0, 2)
        );
    }

    #[test]
    fn box_muller_gives_standard_normals() {
        // An odd length exercises the unpaired last value.
        let mut z = vec![0.0; 100_001];
        fill_standard_normal(&mut ChaCha8Rng::seed_from_u64(7), &mut z);
        let n = z.len() as f64;
        let mean = z.iter().sum::<f64>() / n;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let below = z.iter().filter(|&&v| v < 1.0).count() as f64 / n;
        // Standard errors: 1/sqrt(n) for the mean, sqrt(2/n) for the variance,
        // sqrt(p(1-p)/n) for the fraction below 1 (Phi(1) = 0.841345).
        assert!(mean.abs() < 4.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 4.0 * (2.0 / n).sqrt(), "variance {var}");
        let p = 0.841_344_746;
        assert!(
            (below - p).abs() < 4.0 * (p * (1.0 - p) / n).sqrt(),
            "P(z < 1) = {below}"
        );
    }
}
