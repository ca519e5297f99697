//! The host's fast path for mixture and KDE scoring, bit-identical to the
//! runtime.
//!
//! The device scores one point at a time; on the host, SIMD lanes are rows.
//! Eight rows, transposed into [`F32x8`] values, go through the runtime's own
//! kernel ([`Gmm::component_log_densities`], generic over its lane type), so
//! every row sees the device's operations in the device's order. The
//! log-sum-exp over components then runs lane by lane as the runtime's
//! `LogSumExp` does, with libm's `exp` and `ln` in vectors ([`exp8`], [`ln8`]).
//! Rows whose component values are not all finite take the scalar
//! log-sum-exp. Batches run in parallel over rows.

use anyhow::ensure;
use multiversion::multiversion;
use rayon::prelude::*;
use tinygen_runtime::math::LogSumExp;
use tinygen_runtime::{Error, Gmm};

use crate::fast_math::{Block, F32x8, LANES, exp8, exp8_matches_the_runtime, ln8};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 512;

/// Scores `points` (row-major, N x D) into `out` (length N): what
/// [`Gmm::log_density_batch`] writes, bit for bit, faster. Rows with NaN or
/// infinite values are an error, as on the device.
pub fn log_density_batch(gmm: &Gmm<'_>, points: &[f32], out: &mut [f32]) -> anyhow::Result<()> {
    let d = gmm.dim();
    ensure!(
        points.len() == out.len() * d,
        "runtime: {}",
        Error::DimensionMismatch {
            expected: out.len() * d,
            found: points.len()
        }
    );
    ensure!(
        crate::fast_math::all_finite(points),
        "runtime: {}",
        Error::NonFiniteInput
    );
    if !exp8_matches_the_runtime() {
        // The runtime's exp is micromath's: score as the device does.
        return gmm
            .log_density_batch(points, out)
            .map_err(|e| anyhow::anyhow!("runtime: {e}"));
    }
    out.par_chunks_mut(ROWS_PER_TASK)
        .zip(points.par_chunks(ROWS_PER_TASK * d))
        .for_each(|(out, rows)| score_rows(gmm, rows, out));
    Ok(())
}

/// One task's rows, eight at a time (the last group padded with zeros).
fn score_rows(gmm: &Gmm<'_>, rows: &[f32], out: &mut [f32]) {
    let d = gmm.dim();
    let mut x = vec![F32x8([0.0; LANES]); d];
    let mut values = Vec::with_capacity(gmm.components());
    let mut terms = Vec::with_capacity(gmm.components());
    for (group, slots) in rows.chunks(LANES * d).zip(out.chunks_mut(LANES)) {
        for (l, row) in group.chunks_exact(d).enumerate() {
            for (xi, &v) in x.iter_mut().zip(row) {
                xi.0[l] = v;
            }
        }
        if group.len() < LANES * d {
            // The last group's missing rows: zeros, finite and ignored.
            for xi in x.iter_mut() {
                xi.0[group.len() / d..].fill(0.0);
            }
        }
        let scores = score_group(gmm, &x, &mut values, &mut terms);
        slots.copy_from_slice(&scores[..slots.len()]);
    }
}

/// The log-densities of eight transposed rows (`x[i]`: feature `i` of
/// each), with buffers for the component values and the log-sum-exp's terms.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn score_group<'a>(
    gmm: &Gmm<'a>,
    x: &[F32x8],
    values: &mut Vec<F32x8>,
    terms: &mut Vec<Block>,
) -> Block {
    values.clear();
    // The length is the model's: the call cannot fail.
    let _ = gmm.component_log_densities(
        x,
        #[inline(always)]
        |v| values.push(v),
    );
    log_sum_exp8(values, terms)
}

/// The runtime's `LogSumExp` over `values`, lane by lane. For finite
/// values its first term sets the maximum and a sum of one (`0 · e^-inf +
/// 1`), and each later term `v` either adds `e^(v - max)` or rescales the sum
/// by `e^(max - v)`, adds one and becomes the maximum. The maxima do not
/// depend on the sum, so all the exponentials are taken first (into
/// `terms`, negated where they rescale), independently of each other, and
/// the sum then runs over them in order.
#[inline(always)]
fn log_sum_exp8(values: &[F32x8], terms: &mut Vec<Block>) -> Block {
    let Some((first, rest)) = values.split_first() else {
        return [f32::NEG_INFINITY; LANES];
    };
    let mut max = first.0;
    // Lanes with a non-finite value (as 1), for the scalar log-sum-exp.
    let mut odd = max.map(|v| u32::from(!v.is_finite()));
    terms.resize(rest.len(), [0.0; LANES]);
    for (term, v) in terms.iter_mut().zip(rest) {
        let v = v.0;
        let e = exp8(&std::array::from_fn(|l| {
            let arg = if v[l] <= max[l] {
                v[l] - max[l]
            } else {
                max[l] - v[l]
            };
            // Below -87.5, e^arg is subnormal: it leaves a sum of at least
            // one unchanged and `sum · e + 1` one, exactly as zero does, and
            // zero spares the processor's slow subnormal arithmetic.
            if arg < -87.5 { f32::NEG_INFINITY } else { arg }
        }));
        for l in 0..LANES {
            let below = v[l] <= max[l];
            term[l] = if below { e[l] } else { -e[l] };
            max[l] = if below { max[l] } else { v[l] };
            odd[l] |= u32::from(!v[l].is_finite());
        }
    }
    let mut sum = [1.0f32; LANES];
    for t in terms.iter() {
        for l in 0..LANES {
            // The sign bit says which update: -0.0 (a rescale by zero) too.
            sum[l] = if t[l].is_sign_positive() {
                sum[l] + t[l]
            } else {
                sum[l] * -t[l] + 1.0
            };
        }
    }
    let logs = ln8(&sum);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = max[l] + logs[l];
    }
    if odd.iter().any(|&o| o != 0) {
        for l in 0..LANES {
            if odd[l] != 0 {
                let mut acc = LogSumExp::new();
                for v in values {
                    acc.push(v.0[l]);
                }
                out[l] = acc.finish();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use tinygen_runtime::gmm::{Covariance, GmmParams, Standardizer};
    use tinygen_runtime::{Gmm, ModelKind};

    use super::*;
    use crate::host::AlignedBytes;

    /// A random mixture's file: well-conditioned upper-triangular precision
    /// factors, optionally standardized.
    fn mixture(cov: Covariance, d: usize, k: usize, standardized: bool, seed: u64) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut normal = || -> f64 { rng.random_range(-1.7..1.7) };
        let weights: Vec<f64> = (0..k).map(|c| 1.0 + c as f64).collect();
        let total: f64 = weights.iter().sum();
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let means: Vec<f64> = (0..k * d).map(|_| 2.0 * normal()).collect();
        let precisions: Vec<f64> = match cov {
            Covariance::Full | Covariance::Tied => {
                let blocks = if cov == Covariance::Full { k } else { 1 };
                (0..blocks * d * d)
                    .map(|n| {
                        let (i, j) = (n % (d * d) / d, n % d);
                        match i.cmp(&j) {
                            std::cmp::Ordering::Equal => 0.5 + normal().abs(),
                            std::cmp::Ordering::Less => 0.3 * normal(),
                            std::cmp::Ordering::Greater => 0.0,
                        }
                    })
                    .collect()
            }
            Covariance::Diag => (0..k * d).map(|_| 0.5 + normal().abs()).collect(),
            Covariance::Spherical => (0..k).map(|_| 0.5 + normal().abs()).collect(),
        };
        let mean: Vec<f64> = (0..d).map(|_| normal()).collect();
        let scale: Vec<f64> = (0..d).map(|_| 0.5 + normal().abs()).collect();
        let params = GmmParams {
            covariance: cov,
            dim: d,
            weights: &weights,
            means: &means,
            precisions_cholesky: &precisions,
            standardizer: standardized.then_some(Standardizer {
                mean: &mean,
                scale: &scale,
            }),
        };
        let kind = if cov == Covariance::Tied && k > 8 {
            ModelKind::Kde
        } else {
            ModelKind::Gmm
        };
        params.encode_as(kind).unwrap()
    }

    fn check(bytes: &[u8], rows: usize, spread: f32, seed: u64) {
        let file = AlignedBytes::new(bytes);
        let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let points: Vec<f32> = (0..rows * gmm.dim())
            .map(|_| spread * rng.random_range(-1.7f32..1.7))
            .collect();
        let mut fast = vec![0.0; rows];
        log_density_batch(&gmm, &points, &mut fast).unwrap();
        let mut slow = vec![0.0; rows];
        gmm.log_density_batch(&points, &mut slow).unwrap();
        for (r, (f, s)) in fast.iter().zip(&slow).enumerate() {
            assert_eq!(f.to_bits(), s.to_bits(), "row {r}: {f} vs {s}");
        }
    }

    #[test]
    fn every_covariance_scores_as_the_runtime_bit_for_bit() {
        let mut seed = 0;
        for cov in [
            Covariance::Full,
            Covariance::Tied,
            Covariance::Diag,
            Covariance::Spherical,
        ] {
            for (d, k) in [(1, 1), (3, 2), (4, 8), (7, 3), (16, 8), (70, 2)] {
                for standardized in [false, true] {
                    seed += 1;
                    let bytes = mixture(cov, d, k, standardized, seed);
                    // Rows near the components, far away (underflowing
                    // terms) and a count that leaves a partial group.
                    check(&bytes, 1037, 1.0, seed);
                    check(&bytes, 13, 30.0, seed + 100);
                }
            }
        }
    }

    #[test]
    fn a_kernel_density_scores_as_the_runtime_bit_for_bit() {
        check(&mixture(Covariance::Tied, 5, 300, true, 9), 600, 2.0, 10);
    }

    #[test]
    fn extreme_rows_score_as_the_runtime() {
        // Far enough that the Mahalanobis terms overflow to infinity.
        let bytes = mixture(Covariance::Full, 4, 3, false, 3);
        check(&bytes, 40, 1e19, 4);
        check(&bytes, 40, 1e30, 5);
    }

    #[test]
    fn terms_down_to_subnormal_and_zero_score_as_the_runtime() {
        // Two unit Gaussians at 0 and 1: at x their log-densities differ by
        // 1/2 - x, so x from 80 to 110 sweeps the log-sum-exp's terms
        // through e^-87 (subnormal from -87.34) to e^-104 (zero).
        let params = GmmParams {
            covariance: Covariance::Diag,
            dim: 1,
            weights: &[0.5, 0.5],
            means: &[0.0, 1.0],
            precisions_cholesky: &[1.0, 1.0],
            standardizer: None,
        };
        for means in [[0.0, 1.0], [1.0, 0.0]] {
            let bytes = GmmParams {
                means: &means,
                ..params
            }
            .encode()
            .unwrap();
            let file = AlignedBytes::new(&bytes);
            let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
            let points: Vec<f32> = (0..30_000).map(|i| 80.0 + i as f32 * 0.001).collect();
            let mut fast = vec![0.0; points.len()];
            log_density_batch(&gmm, &points, &mut fast).unwrap();
            for (x, f) in points.iter().zip(&fast) {
                let want = gmm.log_density(&[*x]).unwrap();
                assert_eq!(f.to_bits(), want.to_bits(), "x = {x}");
            }
        }
    }

    #[test]
    fn bad_rows_are_errors() {
        let file = AlignedBytes::new(&mixture(Covariance::Diag, 2, 2, false, 1));
        let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
        let mut out = vec![0.0; 2];
        assert!(log_density_batch(&gmm, &[1.0, f32::NAN, 0.0, 0.0], &mut out).is_err());
        assert!(log_density_batch(&gmm, &[1.0, 2.0, 3.0], &mut out).is_err());
        assert!(log_density_batch(&gmm, &[], &mut []).is_ok());
        // NaN and infinities anywhere in a longer batch (the check's vector
        // body and its tail).
        let (mut out, mut points) = (vec![0.0; 61], vec![0.5f32; 122]);
        assert!(log_density_batch(&gmm, &points, &mut out).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 61, 121] {
                points[at] = bad;
                let err = log_density_batch(&gmm, &points, &mut out).unwrap_err();
                assert!(err.to_string().contains("finite"), "{err}");
                points[at] = 0.5;
            }
        }
    }
}
