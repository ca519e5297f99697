//! k-means (k-means++ seeding, Lloyd iterations): the default initialisation
//! of Gaussian mixtures.

use nalgebra::DMatrix;
use rand::Rng;

/// Squared Euclidean distance between row `i` of `x` and row `c` of `centers`.
fn sq_dist(x: &DMatrix<f64>, i: usize, centers: &DMatrix<f64>, c: usize) -> f64 {
    (0..x.ncols())
        .map(|j| {
            let d = x[(i, j)] - centers[(c, j)];
            d * d
        })
        .sum()
}

/// Draws an index with probability proportional to `weights` (all >= 0).
fn draw_weighted(weights: &[f64], rng: &mut impl Rng) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return rng.random_range(0..weights.len());
    }
    let mut target = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if target < w {
            return i;
        }
        target -= w;
    }
    weights.len() - 1
}

/// Greedy k-means++ seeding (as scikit-learn: `2 + ln k` candidates per
/// step, keep the one that lowers the potential most). Returns row indices.
pub fn kmeans_plusplus(x: &DMatrix<f64>, k: usize, rng: &mut impl Rng) -> Vec<usize> {
    let n = x.nrows();
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut chosen = vec![rng.random_range(0..n)];
    let mut closest: Vec<f64> = (0..n).map(|i| row_dist(x, i, chosen[0])).collect();
    while chosen.len() < k {
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let candidate = draw_weighted(&closest, rng);
            let updated: Vec<f64> = (0..n)
                .map(|i| closest[i].min(row_dist(x, i, candidate)))
                .collect();
            let potential: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|(p, _, _)| potential < *p) {
                best = Some((potential, candidate, updated));
            }
        }
        let (_, candidate, updated) = best.expect("at least one trial");
        chosen.push(candidate);
        closest = updated;
    }
    chosen
}

fn row_dist(x: &DMatrix<f64>, a: usize, b: usize) -> f64 {
    (0..x.ncols())
        .map(|j| {
            let d = x[(a, j)] - x[(b, j)];
            d * d
        })
        .sum()
}

/// Lloyd's k-means from k-means++ seeds; returns the label of every row.
///
/// Stops when the squared center shift falls below `1e-4` times the mean
/// feature variance (scikit-learn's tolerance) or after 300 iterations.
pub fn kmeans_labels(x: &DMatrix<f64>, k: usize, rng: &mut impl Rng) -> Vec<usize> {
    let (n, d) = x.shape();
    let seeds = kmeans_plusplus(x, k, rng);
    let mut centers = DMatrix::from_fn(k, d, |c, j| x[(seeds[c], j)]);
    let mean_var = (0..d)
        .map(|j| {
            let col = x.column(j);
            let m = col.mean();
            col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64
        })
        .sum::<f64>()
        / d as f64;
    let tol = 1e-4 * mean_var;
    let mut labels = vec![0usize; n];
    for _ in 0..300 {
        for (i, label) in labels.iter_mut().enumerate() {
            *label = (0..k)
                .map(|c| (c, sq_dist(x, i, &centers, c)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(c, _)| c);
        }
        let mut sums = DMatrix::<f64>::zeros(k, d);
        let mut counts = vec![0usize; k];
        for (i, &c) in labels.iter().enumerate() {
            counts[c] += 1;
            for j in 0..d {
                sums[(c, j)] += x[(i, j)];
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            if counts[c] == 0 {
                continue; // keep an empty cluster's center where it was
            }
            for j in 0..d {
                let new = sums[(c, j)] / counts[c] as f64;
                shift += (new - centers[(c, j)]).powi(2);
                centers[(c, j)] = new;
            }
        }
        if shift <= tol {
            break;
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn separates_two_well_separated_blobs() {
        let mut rows = Vec::new();
        for i in 0..50 {
            let t = i as f64 * 0.01;
            rows.extend([t, -t]);
            rows.extend([10.0 + t, 10.0 - t]);
        }
        let x = DMatrix::from_row_slice(100, 2, &rows);
        let labels = kmeans_labels(&x, 2, &mut ChaCha8Rng::seed_from_u64(3));
        for pair in labels.chunks(2) {
            assert_ne!(pair[0], pair[1]);
        }
        assert!(labels.iter().step_by(2).all(|&l| l == labels[0]));
    }
}
