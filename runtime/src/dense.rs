//! The fully connected layer kernel every network runs.

use crate::activation::Activation;

#[cfg(tinygen_neon)]
mod neon;
#[cfg(tinygen_vfp)]
mod vfp;
#[cfg(all(target_arch = "x86_64", not(target_feature = "fma")))]
mod x86;

/// The fused multiply-add a kernel is compiled with.
#[cfg(not(tinygen_vfp))]
pub(crate) trait MulAdd {
    /// `a * b + c`, rounded once.
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// [`crate::math::mul_add`]: whatever this target has.
#[cfg(not(tinygen_vfp))]
pub(crate) struct Portable;

#[cfg(not(tinygen_vfp))]
impl MulAdd for Portable {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        crate::math::mul_add(a, b, c)
    }
}

/// `y[o] = act(b[o] + Σ_i w[o][i] x[i])`, summed in ascending `i` from the
/// bias, each step one fused multiply-add ([`crate::math::mul_add`]).
///
/// On Arm cores with an FPU, blocks of eight outputs go through the
/// assembly loop of `dense/vfp.rs`, the rest through its dot product.
/// Elsewhere four outputs are computed per pass over `x` (each input value
/// is loaded once for four rows, and the four sums are independent), each
/// still accumulated in ascending `i`: the same operations in the same
/// order as one row at a time, so the results are identical. On x86-64
/// hosts built without FMA instructions the loop runs in a copy compiled
/// with them when the CPU has them (`dense/x86.rs`), rather than calling
/// libm per step. On AArch64 the four rows are the lanes of one register
/// (`dense/neon.rs`), the same operations again.
#[cfg_attr(tinygen_compact, inline(never))]
#[cfg_attr(not(tinygen_compact), inline)]
pub(crate) fn dense(w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], activation: Activation) {
    #[cfg(tinygen_vfp)]
    {
        let (w, bias, y) = eight_rows(w, bias, x, y, activation);
        // The rows left, one at a time through the assembly dot product.
        let n = x.len().max(1);
        for ((row, &b), slot) in w.chunks_exact(n).zip(bias).zip(y) {
            *slot = activation.apply(vfp::dot(row, x, b));
        }
    }
    #[cfg(all(target_arch = "x86_64", not(target_feature = "fma")))]
    if x86::rows_with_fma(w, bias, x, y, activation) {
        return;
    }
    #[cfg(tinygen_neon)]
    neon::dense(w, bias, x, y, activation);
    #[cfg(all(not(tinygen_vfp), not(tinygen_neon)))]
    rows::<Portable>(w, bias, x, y, activation);
}

/// The portable loop of [`dense`], four rows at a time.
#[cfg(not(tinygen_vfp))]
#[inline(always)]
pub(crate) fn rows<F: MulAdd>(
    w: &[f32],
    bias: &[f32],
    x: &[f32],
    y: &mut [f32],
    activation: Activation,
) {
    let n = x.len().max(1);
    // Never `None` (a slice of f32 is shorter than usize::MAX / 4), but
    // written so that no panic on a zero chunk size is reachable where
    // this loop is compiled on its own (`dense/x86.rs`).
    let Some(four_rows) = n.checked_mul(4) else {
        return;
    };
    let mut blocks = w.chunks_exact(four_rows);
    let mut biases = bias.chunks_exact(4);
    let mut outs = y.chunks_exact_mut(4);
    for ((block, b), out) in (&mut blocks).zip(&mut biases).zip(&mut outs) {
        let mut rows = block.chunks_exact(n);
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            continue;
        };
        let ([b0, b1, b2, b3], [o0, o1, o2, o3]) = (b, out) else {
            continue;
        };
        let (mut a0, mut a1, mut a2, mut a3) = (*b0, *b1, *b2, *b3);
        for ((((&xi, &w0), &w1), &w2), &w3) in x.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
            a0 = F::mul_add(w0, xi, a0);
            a1 = F::mul_add(w1, xi, a1);
            a2 = F::mul_add(w2, xi, a2);
            a3 = F::mul_add(w3, xi, a3);
        }
        *o0 = activation.apply(a0);
        *o1 = activation.apply(a1);
        *o2 = activation.apply(a2);
        *o3 = activation.apply(a3);
    }
    let rest = blocks.remainder().chunks_exact(n);
    for ((row, &b), slot) in rest.zip(biases.remainder()).zip(outs.into_remainder()) {
        let mut acc = b;
        for (&wi, &xi) in row.iter().zip(x) {
            acc = F::mul_add(wi, xi, acc);
        }
        *slot = activation.apply(acc);
    }
}

/// The whole blocks of eight outputs through [`vfp::blocks_of_eight`],
/// the last `n % 4` inputs added in order after it ([`vfp::dot`]), then
/// the activation; returns the weights, biases and outputs of the rows
/// left.
#[cfg(tinygen_vfp)]
fn eight_rows<'a>(
    w: &'a [f32],
    bias: &'a [f32],
    x: &[f32],
    y: &'a mut [f32],
    activation: Activation,
) -> (&'a [f32], &'a [f32], &'a mut [f32]) {
    let n = x.len();
    let blocks = match n {
        0..4 => 0,
        _ => (w.len() / n.max(1)).min(bias.len()).min(y.len()) / 8,
    };
    let rows = 8 * blocks;
    // Within bounds by construction; `min` lets the optimiser see it.
    let (w_done, w_rest) = w.split_at((rows * n).min(w.len()));
    let (b_done, b_rest) = bias.split_at(rows.min(bias.len()));
    let (y_done, y_rest) = y.split_at_mut(rows.min(y.len()));
    if rows == 0 {
        return (w_rest, b_rest, y_rest);
    }
    vfp::blocks_of_eight(w_done, b_done, x, y_done, blocks);
    let done = n - n % 4;
    if let Some(x_tail) = x.get(done..).filter(|t| !t.is_empty()) {
        for (slot, row) in y_done.iter_mut().zip(w_done.chunks_exact(n.max(1))) {
            *slot = vfp::dot(row.get(done..).unwrap_or_default(), x_tail, *slot);
        }
    }
    activation.apply_all(y_done);
    (w_rest, b_rest, y_rest)
}
