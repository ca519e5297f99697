//! The loops of one EM pass over a block of rows ([`super::em_pass`]),
//! diagonal covariances' products included, each compiled for the
//! baseline, for AVX2 with FMA and for AVX-512 (chosen at run time). A
//! block is stored column by column (`b` rows a column); the loops run
//! over rows, which the compiler puts side by side in vector lanes, so
//! every sum over features or components is still computed row by row in
//! a fixed order. Sums over rows run in [`LANES`] partial sums added at
//! the end, so they differ from a sequential sum by rounding only.

use multiversion::multiversion;
use multiversion::target::{Target, selected_target};

/// Partial sums of a sum over rows (two AVX registers of f64).
const LANES: usize = 8;

/// Whether a multiversioned function's `target` fuses multiply-adds:
/// every AArch64 core does; on x86-64, with the FMA extension.
const fn has_fma(target: Target) -> bool {
    cfg!(target_arch = "aarch64")
        || (cfg!(target_arch = "x86_64") && target.supports_feature_str("fma"))
}

/// `a b + c`, fused where the selected target has FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `diff_j = x_j - mu_j` for every column `j` (each `b` rows).
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn centre(diff: &mut [f64], x: &[f64], mu: &[f64], b: usize) {
    for ((d, x), &m) in diff.chunks_exact_mut(b).zip(x.chunks_exact(b)).zip(mu) {
        d.iter_mut().zip(x).for_each(|(d, x)| *d = x - m);
    }
}

/// `lp_i = Σ_j (y_ij - m_j)²` for full covariances, from the block's
/// projections `y = x U` (`d` columns of `b`) and `m = mu U`; a column at a
/// time, so each row's sum runs over `j` in order.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn full_squares(lp: &mut [f64], y: &[f64], m: &[f64]) {
    const FMA: bool = has_fma(selected_target!());
    lp.fill(0.0);
    for (col, &mj) in y.chunks_exact(lp.len().max(1)).zip(m) {
        for (s, &v) in lp.iter_mut().zip(col) {
            let e = v - mj;
            *s = madd::<FMA>(e, e, *s);
        }
    }
}

/// `x'_i = x_i - g` and `x'_i²`.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn centre_and_square(lin: &mut [f64], sq: &mut [f64], x: &[f64], g: f64) {
    for ((l, s), &v) in lin.iter_mut().zip(sq.iter_mut()).zip(x) {
        *l = v - g;
        *s = *l * *l;
    }
}

/// Rows a step of the diagonal products below (two AVX-512 registers of
/// f64).
const STEP: usize = 16;

/// Components a tile of the diagonal products below.
const TILE: usize = 4;

/// `out_ic = Σ_j x'_ij u_jc + x'_ij² v_jc` for every component `c` (`out`:
/// `k` columns of `b` rows), `x'_j = x_j - g_j` from the block's columns
/// `x_j`; `weights` holds `k` columns of `2D`, column `c` being `u_c` then
/// `v_c`. In tiles of [`STEP`] rows by [`TILE`] components, `x'` formed on
/// the fly (no copy of the block); each row's sum runs over `j` in order.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn diagonal_products(out: &mut [f64], columns: &[&[f64]], g: &[f64], weights: &[f64]) {
    const FMA: bool = has_fma(selected_target!());
    let k = weights.len() / (2 * g.len()).max(1);
    let b = out.len() / k.max(1);
    // (Plain loops: a closure here would not take the function's target
    // features, and `mul_add` would become a call.)
    let whole = k / TILE * TILE;
    for c0 in (0..whole).step_by(TILE) {
        products_tile::<FMA, TILE>(out, columns, g, weights, c0, b);
    }
    for c0 in whole..k {
        products_tile::<FMA, 1>(out, columns, g, weights, c0, b);
    }
}

/// [`diagonal_products`] for components `c0..c0 + C`.
#[inline(always)]
fn products_tile<const FMA: bool, const C: usize>(
    out: &mut [f64],
    columns: &[&[f64]],
    g: &[f64],
    weights: &[f64],
    c0: usize,
    b: usize,
) {
    let d = g.len();
    let whole = b / STEP * STEP;
    // Feature j's weights of the tile's components: (u, v).
    let tile = |j: usize| -> ([f64; C], [f64; C]) {
        let (mut u, mut v) = ([0.0; C], [0.0; C]);
        for t in 0..C {
            u[t] = weights[(c0 + t) * 2 * d + j];
            v[t] = weights[(c0 + t) * 2 * d + d + j];
        }
        (u, v)
    };
    for i0 in (0..whole).step_by(STEP) {
        let mut acc = [[0.0; STEP]; C];
        for (j, (col, &gj)) in columns.iter().zip(g).enumerate() {
            let (uj, vj) = tile(j);
            let x: &[f64; STEP] = col[i0..i0 + STEP].try_into().expect("a step of rows");
            for l in 0..STEP {
                let d = x[l] - gj;
                let d2 = d * d;
                for t in 0..C {
                    acc[t][l] = madd::<FMA>(d2, vj[t], madd::<FMA>(d, uj[t], acc[t][l]));
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            out[(c0 + t) * b + i0..][..STEP].copy_from_slice(a);
        }
    }
    for i in whole..b {
        let mut acc = [0.0; C];
        for (j, (col, &gj)) in columns.iter().zip(g).enumerate() {
            let (uj, vj) = tile(j);
            let d = col[i] - gj;
            let d2 = d * d;
            for t in 0..C {
                acc[t] = madd::<FMA>(d2, vj[t], madd::<FMA>(d, uj[t], acc[t]));
            }
        }
        for (t, a) in acc.iter().enumerate() {
            out[(c0 + t) * b + i] = *a;
        }
    }
}

/// `t1_jc = Σ_i r_ic x'_ij` and `t2_jc = Σ_i r_ic x'_ij²` (D x K
/// row-major) from the responsibilities `r` (`k` columns of `b` rows) and
/// the block's columns `x_j`, `x'_j = x_j - g_j` formed on the fly; sums
/// over rows in [`LANES`] partial sums, [`TILE`] components at a time.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn diagonal_moments(t1: &mut [f64], t2: &mut [f64], columns: &[&[f64]], g: &[f64], r: &[f64]) {
    const FMA: bool = has_fma(selected_target!());
    let k = t1.len() / g.len().max(1);
    let whole = k / TILE * TILE;
    for c0 in (0..whole).step_by(TILE) {
        moments_tile::<FMA, TILE>(t1, t2, columns, g, r, c0);
    }
    for c0 in whole..k {
        moments_tile::<FMA, 1>(t1, t2, columns, g, r, c0);
    }
}

/// [`diagonal_moments`] for components `c0..c0 + C`.
#[inline(always)]
fn moments_tile<const FMA: bool, const C: usize>(
    t1: &mut [f64],
    t2: &mut [f64],
    columns: &[&[f64]],
    g: &[f64],
    r: &[f64],
    c0: usize,
) {
    let k = t1.len() / g.len();
    let b = r.len() / k;
    let whole = b / LANES * LANES;
    let rc: [&[f64]; C] = std::array::from_fn(|t| &r[(c0 + t) * b..][..b]);
    for (j, (col, &gj)) in columns.iter().zip(g).enumerate() {
        let col = &col[..b];
        let mut s1 = [[0.0; LANES]; C];
        let mut s2 = [[0.0; LANES]; C];
        for i0 in (0..whole).step_by(LANES) {
            let x: &[f64; LANES] = col[i0..i0 + LANES].try_into().expect("a step of rows");
            let rt: [&[f64; LANES]; C] =
                std::array::from_fn(|t| rc[t][i0..i0 + LANES].try_into().expect("a step of rows"));
            let mut d = [0.0; LANES];
            let mut d2 = [0.0; LANES];
            for l in 0..LANES {
                d[l] = x[l] - gj;
                d2[l] = d[l] * d[l];
            }
            for t in 0..C {
                for l in 0..LANES {
                    s1[t][l] = madd::<FMA>(rt[t][l], d[l], s1[t][l]);
                    s2[t][l] = madd::<FMA>(rt[t][l], d2[l], s2[t][l]);
                }
            }
        }
        // The last rows (fewer than a step) in sums of their own.
        let mut e1 = [0.0; C];
        let mut e2 = [0.0; C];
        for i in whole..b {
            let d = col[i] - gj;
            for t in 0..C {
                e1[t] = madd::<FMA>(rc[t][i], d, e1[t]);
                e2[t] = madd::<FMA>(rc[t][i], d * d, e2[t]);
            }
        }
        for t in 0..C {
            t1[j * k + c0 + t] = s1[t].iter().sum::<f64>() + e1[t];
            t2[j * k + c0 + t] = s2[t].iter().sum::<f64>() + e2[t];
        }
    }
}

/// `lp_i = constant - ½ (sq_i + q)`, in place over `sq`.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn log_prob_from_squares(sq: &mut [f64], q: f64, constant: f64) {
    for v in sq.iter_mut() {
        *v = constant - 0.5 * (*v + q);
    }
}

/// Turns the log-probabilities `lp` (`k` columns of `b`: `ln w_c + ln N(x_i
/// | c)`) into responsibilities in place and returns the block's summed
/// log-likelihood `Σ_i ln Σ_c exp(lp_ic)` (-inf if a row has zero density;
/// that row's responsibilities are then NaN, and EM stops as diverged).
/// Each step is a loop over the rows, so that the compiler runs the rows
/// through vector lanes, the exponential and logarithm included.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn responsibilities(lp: &mut [f64], b: usize) -> f64 {
    const FMA: bool = has_fma(selected_target!());
    let mut max = vec![f64::NEG_INFINITY; b];
    for col in lp.chunks_exact(b) {
        for (m, &v) in max.iter_mut().zip(col) {
            *m = m.max(v);
        }
    }
    let mut sum = vec![0.0; b];
    for col in lp.chunks_exact_mut(b) {
        for ((v, s), &m) in col.iter_mut().zip(&mut sum).zip(&max) {
            *v = exp_nonpositive::<FMA>(*v - m);
            *s += *v;
        }
    }
    let mut total = [0.0; LANES];
    for (i, (&m, &s)) in max.iter().zip(&sum).enumerate() {
        let row = if m == f64::NEG_INFINITY {
            f64::NEG_INFINITY
        } else {
            m + ln_positive::<FMA>(s)
        };
        total[i % LANES] += row;
    }
    // One division a row, then products.
    for s in sum.iter_mut() {
        *s = 1.0 / *s;
    }
    for col in lp.chunks_exact_mut(b) {
        for (v, &inv) in col.iter_mut().zip(&sum) {
            *v *= inv;
        }
    }
    total.iter().sum()
}

/// `w_j = r ∘ diff_j` for every column `j` (each `b` rows), and `a_j =
/// Σ_i w_ij`.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn weigh(w: &mut [f64], a: &mut [f64], r: &[f64], diff: &[f64], b: usize) {
    for ((wj, dj), aj) in w.chunks_exact_mut(b).zip(diff.chunks_exact(b)).zip(a) {
        for ((w, &x), &ri) in wj.iter_mut().zip(dj).zip(r) {
            *w = ri * x;
        }
        *aj = sum(wj);
    }
}

/// `Σ_i r_i`, in lanes.
#[multiversion(targets("x86_64+avx512f+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub fn sum(r: &[f64]) -> f64 {
    let (whole, tail) = r.as_chunks::<LANES>();
    let mut n = [0.0; LANES];
    for v in whole {
        for l in 0..LANES {
            n[l] += v[l];
        }
    }
    n.iter().sum::<f64>() + tail.iter().sum::<f64>()
}

/// `e^x` for `x <= 0`, to about an ulp: `x = k ln 2 + r` (`ln 2` in two
/// parts, `|r| <= ln 2 / 2`), a degree-13 Taylor polynomial in `r`, then
/// `2^k` from the exponent bits. Values below -708.39 (whose results would
/// be subnormal) and -inf give 0; NaN gives NaN. Branch-free, for loops
/// that the compiler vectorises.
#[inline(always)]
fn exp_nonpositive<const FMA: bool>(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5 2^52 rounds to an integer, left in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    const MIN: f64 = -708.39;
    let v = x.max(MIN);
    let t = madd::<FMA>(v, std::f64::consts::LOG2_E, SHIFTER);
    let k = t - SHIFTER;
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, v));
    let mut p = INV_FACTORIAL[13];
    for c in INV_FACTORIAL[..13].iter().rev() {
        p = madd::<FMA>(p, r, *c);
    }
    let scale =
        f64::from_bits((t.to_bits().wrapping_sub(SHIFTER.to_bits())).wrapping_add(1023) << 52);
    // Below MIN (and -inf): 0; NaN stays NaN through the sum.
    if x < MIN { 0.0 } else { p * scale + 0.0 * x }
}

/// `1 / n!` for `n <= 13`: the Taylor coefficients of `e^r`.
const INV_FACTORIAL: [f64; 14] = {
    let mut t = [1.0; 14];
    let mut n = 1;
    while n < 14 {
        t[n] = t[n - 1] / n as f64;
        n += 1;
    }
    t
};

/// `ln x` for positive normal finite `x`, to about an ulp (fdlibm's
/// `log`: `x = 2^k m` with `m` in [√2/2, √2), `f = m - 1`, `s = f / (2 +
/// f)` and a degree-14 polynomial in `s`). Branch-free.
#[inline(always)]
fn ln_positive<const FMA: bool>(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const LG: [f64; 7] = [
        6.666_666_666_666_735e-1,
        3.999_999_999_940_942e-1,
        2.857_142_874_366_239e-1,
        2.222_219_843_214_978_4e-1,
        1.818_357_216_161_805e-1,
        1.531_383_769_920_937_3e-1,
        1.479_819_860_511_658_6e-1,
    ];
    // √2/2's bits: shifting the mantissa by them puts m in [√2/2, √2).
    const HALF_SQRT2: u64 = 0x3fe6_a09e_667f_3bcd;
    // 2^52 + 1023: the exponent field read as an integer-valued float.
    const EXPONENT: u64 = 0x4330_0000_0000_0000;
    let bits = x.to_bits().wrapping_add(0x3ff0_0000_0000_0000 - HALF_SQRT2);
    let k = f64::from_bits((bits >> 52) | EXPONENT) - f64::from_bits(EXPONENT | 0x3ff);
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) + HALF_SQRT2);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * madd::<FMA>(w, madd::<FMA>(w, LG[5], LG[3]), LG[1]);
    let t2 = z * madd::<FMA>(
        w,
        madd::<FMA>(w, madd::<FMA>(w, LG[6], LG[4]), LG[2]),
        LG[0],
    );
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    madd::<FMA>(s, hfsq + r, k * LN2_LO) - hfsq + f + k * LN2_HI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_ln_are_within_two_ulps_of_std() {
        let mut worst_exp: f64 = 0.0;
        let mut worst_ln: f64 = 0.0;
        for i in 0..200_000 {
            let x = -(i as f64) * 708.0 / 200_000.0 - 1e-9 * (i % 7) as f64;
            for fma in [false, true] {
                let got = if fma {
                    exp_nonpositive::<true>(x)
                } else {
                    exp_nonpositive::<false>(x)
                };
                worst_exp = worst_exp.max((got - x.exp()).abs() / x.exp());
            }
            let y = 1.0 + i as f64 * 1e-3 + (i % 13) as f64 * 1e-7;
            let got = ln_positive::<true>(y);
            worst_ln = worst_ln.max((got - y.ln()).abs() / y.ln().abs().max(1e-300));
        }
        assert!(worst_exp <= 4.5e-16, "exp: {worst_exp:e}");
        assert!(worst_ln <= 4.5e-16, "ln: {worst_ln:e}");
        assert_eq!(exp_nonpositive::<false>(0.0), 1.0);
        assert_eq!(exp_nonpositive::<false>(-0.0), 1.0);
        assert_eq!(exp_nonpositive::<false>(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive::<false>(-800.0), 0.0);
        assert!(exp_nonpositive::<false>(f64::NAN).is_nan());
        assert_eq!(ln_positive::<false>(1.0), 0.0);
        assert!((ln_positive::<false>(1e300) - 1e300f64.ln()).abs() < 1e-12);
        assert!((ln_positive::<false>(3e-300) - 3e-300f64.ln()).abs() < 1e-12);
    }
}
