//! A covariance into the factor the mixture file stores, in place.

use crate::Error;
use crate::gmm::Covariance;

const INTERNAL: Error = Error::InvalidShape(crate::Shape::Internal);

/// Index of entry `(i, j)`, `j <= i`, in a packed lower triangle (row by
/// row).
pub(super) fn tri(i: usize, j: usize) -> usize {
    i * (i + 1) / 2 + j
}

/// Values of one component's covariance or factor: the packed lower
/// triangle when full or tied, the diagonal otherwise.
pub(super) fn factor_len(d: usize, covariance: Covariance) -> Option<usize> {
    match covariance {
        Covariance::Full | Covariance::Tied => Some(d.checked_mul(d.checked_add(1)?)? / 2),
        Covariance::Diag | Covariance::Spherical => Some(d),
    }
}

/// Turns a covariance `m` (full or tied: the packed lower triangle; diag
/// and spherical: the diagonal, whose mean a spherical one takes) into the
/// inverse `X = L⁻¹` of its Cholesky factor `L` (packed lower), or
/// `1 / sqrt(variance)` on the diagonal. `NotPositiveDefinite` if a pivot
/// or a variance is not positive and finite.
pub(super) fn invert_cholesky(
    m: &mut [f64],
    d: usize,
    covariance: Covariance,
) -> Result<(), Error> {
    let positive = |v: f64| v > 0.0 && v.is_finite();
    match covariance {
        Covariance::Full | Covariance::Tied => {
            let get = |m: &[f64], i: usize, j: usize| m.get(tri(i, j)).copied().ok_or(INTERNAL);
            let set = |m: &mut [f64], i: usize, j: usize, v: f64| {
                m.get_mut(tri(i, j)).map(|slot| *slot = v).ok_or(INTERNAL)
            };
            // Cholesky factor L, column by column.
            for j in 0..d {
                for i in j..d {
                    let mut sum = get(m, i, j)?;
                    for k in 0..j {
                        sum -= get(m, i, k)? * get(m, j, k)?;
                    }
                    if i == j {
                        if !positive(sum) {
                            return Err(Error::NotPositiveDefinite);
                        }
                        set(m, j, j, libm::sqrt(sum))?;
                    } else {
                        set(m, i, j, sum / get(m, j, j)?)?;
                    }
                }
            }
            // Its inverse X, in place: X_jj = 1 / L_jj and, for i > j,
            // X_ij = -X_jj * sum_{k=j+1..i} X_ik L_kj (columns right to
            // left, rows bottom up, so each L_kj is read before it is
            // overwritten).
            for j in (0..d).rev() {
                let inv = 1.0 / get(m, j, j)?;
                for i in (j + 1..d).rev() {
                    let mut sum = 0.0;
                    for k in j + 1..=i {
                        sum += get(m, i, k)? * get(m, k, j)?;
                    }
                    set(m, i, j, -inv * sum)?;
                }
                set(m, j, j, inv)?;
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(Error::NotPositiveDefinite);
            }
        }
        Covariance::Diag => {
            for v in m.iter_mut() {
                if !positive(*v) {
                    return Err(Error::NotPositiveDefinite);
                }
                *v = 1.0 / libm::sqrt(*v);
            }
        }
        Covariance::Spherical => {
            let var = m.iter().sum::<f64>() / d as f64;
            if !positive(var) {
                return Err(Error::NotPositiveDefinite);
            }
            m.fill(1.0 / libm::sqrt(var));
        }
    }
    Ok(())
}
