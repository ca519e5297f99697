//! Matrix products through `matrixmultiply` (its blocked kernels, chosen
//! for the CPU at run time), for shapes where nalgebra would take a dot
//! product per entry (`tr_mul`) or cannot read a transposed view.

use nalgebra::DMatrix;

/// `aᵀ b`.
pub fn gram(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let (n, p, q) = (a.nrows(), a.ncols(), b.ncols());
    let mut out = DMatrix::zeros(p, q);
    gram_into(out.as_mut_slice(), a.as_slice(), b.as_slice(), [n, p, q]);
    out
}

/// `out = aᵀ b` for column-major `a` (`n x p`), `b` (`n x q`) and `out`
/// (`p x q`).
///
/// # Panics
/// If a slice's length is not its shape's.
pub fn gram_into(out: &mut [f64], a: &[f64], b: &[f64], [n, p, q]: [usize; 3]) {
    assert!(
        a.len() == n * p && b.len() == n * q && out.len() == p * q,
        "gram: shapes"
    );
    if n == 0 {
        out.fill(0.0);
        return;
    }
    if p == 0 || q == 0 {
        return;
    }
    let s = |v: usize| isize::try_from(v).expect("gram: dimension overflows isize");
    // SAFETY: aᵀ is p x n with element (i, k) at a[i n + k] (row stride n,
    // column stride 1), b is n x q with (k, j) at b[j n + k], out is p x q
    // with (i, j) at out[j p + i]: every index is within the slices, whose
    // lengths were checked above (so n p, n q, p q do not overflow); out
    // does not alias a or b (&mut).
    unsafe {
        matrixmultiply::dgemm(
            p,
            n,
            q,
            1.0,
            a.as_ptr(),
            s(n),
            1,
            b.as_ptr(),
            1,
            s(n),
            0.0,
            out.as_mut_ptr(),
            1,
            s(p),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_is_the_transpose_product() {
        for (n, p, q) in [(1, 1, 1), (7, 3, 5), (300, 16, 16), (5, 6, 2), (0, 3, 2)] {
            let a = DMatrix::from_fn(n, p, |i, j| ((i * 31 + j * 7) % 13) as f64 - 6.0);
            let b = DMatrix::from_fn(n, q, |i, j| ((i * 17 + j * 5) % 11) as f64 * 0.5);
            let got = gram(&a, &b);
            let want = a.transpose() * &b;
            assert_eq!(got.shape(), (p, q));
            // Small integers and halves: every sum is exact.
            assert_eq!(got, want, "{n} x {p}, {q}");
        }
    }
}
