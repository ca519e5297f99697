//! The int8 dot products of [`super::dense_i8`] and the weight layout they
//! read.
//!
//! # Layout
//!
//! A layer's `outputs x inputs` int8 weights are stored in blocks of
//! [`BLOCK_ROWS`] consecutive rows (the last block holds the `outputs % 4`
//! rows left, if any). Within a block of `R` rows: for each group of four
//! columns `4g..4g+4` (`g < inputs / 4`), the `R` rows' four weights, row
//! after row; then, if `t = inputs % 4 > 0`, each row's last `t` weights,
//! row after row. [`interleave`] writes it from row-major weights. One pass
//! over the input then serves four rows, and each row's four weights are one
//! 32-bit word next to the other rows' (one pointer, sequential loads). This
//! is the order of the `mlp-int8/2` files (`runtime/FORMAT.md`).
//!
//! # Kernels
//!
//! Both compute `Σ_j w[r][j] (x[j] - z)` in wrapping `i32`, which is exact,
//! so the order of the sum does not matter and host and device agree bit for
//! bit:
//!
//! - [`Dual`]: the input word widened once into two pairs of `i16` with the
//!   zero point subtracted (`SXTAB16`), then per row one load, two
//!   sign-extensions (`SXTB16`) and two dual multiply-accumulates
//!   (`SMLAD`). Used on ARMv7E-M (Cortex-M4/M7), whose DSP extension has
//!   these instructions (`quant/dsp.rs`), and on Armv8-M Mainline builds
//!   with `-C target-feature=+dsp`, for cores that have the optional
//!   extension (Cortex-M33/M35P/M55; `runtime/build.rs` selects).
//! - [`Portable`]: the four inputs widened once, one multiply-accumulate per
//!   weight; every other core and the host.

/// Rows per block of the weight layout.
pub const BLOCK_ROWS: usize = 4;

/// How one group of four columns is multiplied into one row's sum.
pub(super) trait GroupMac {
    /// The group's four inputs, widened with the zero point subtracted.
    type Wide: Copy;
    /// Widens four inputs (`z` an int8 zero point).
    fn widen(x: &[i8; 4], z: i32) -> Self::Wide;
    /// `acc + Σ_{i<4} w[i] x[i]`, wrapping.
    fn mac(acc: i32, w: &[i8; 4], x: Self::Wide) -> i32;
}

/// One multiply-accumulate per weight.
#[cfg_attr(tinygen_dsp, allow(dead_code))]
pub(super) struct Portable;

impl GroupMac for Portable {
    type Wide = [i32; 4];
    #[inline(always)]
    fn widen(x: &[i8; 4], z: i32) -> [i32; 4] {
        x.map(|v| i32::from(v).wrapping_sub(z))
    }
    #[inline(always)]
    fn mac(acc: i32, w: &[i8; 4], x: [i32; 4]) -> i32 {
        w.iter().zip(x).fold(acc, |a, (&w, x)| {
            a.wrapping_add(i32::from(w).wrapping_mul(x))
        })
    }
}

/// Two products per instruction with the DSP extension's [`DualMac`].
#[cfg_attr(not(any(test, tinygen_dsp)), allow(dead_code))]
pub(super) struct Dual<D>(core::marker::PhantomData<D>);

impl<D: DualMac> GroupMac for Dual<D> {
    /// Inputs 0 and 2, inputs 1 and 3, as halfword pairs.
    type Wide = (u32, u32);
    #[inline(always)]
    fn widen(x: &[i8; 4], z: i32) -> (u32, u32) {
        // (-z, -z) as two halfwords; x - z fits an i16.
        let neg_z = u32::from((z as i16).wrapping_neg() as u16) * 0x0001_0001;
        let x = word(x);
        (D::sxtab16(neg_z, x), D::sxtab16_ror8(neg_z, x))
    }
    #[inline(always)]
    fn mac(acc: i32, w: &[i8; 4], (even, odd): (u32, u32)) -> i32 {
        let w = word(w);
        D::smlad(D::sxtb16_ror8(w), odd, D::smlad(D::sxtb16(w), even, acc))
    }
}

/// The kernel of this target.
#[cfg(tinygen_dsp)]
pub(super) type Native = Dual<super::dsp::Arm>;
/// The kernel of this target.
#[cfg(not(tinygen_dsp))]
pub(super) type Native = Portable;

/// The instructions [`Dual`] is written in (ARM ARM semantics).
#[cfg_attr(not(any(test, tinygen_dsp)), allow(dead_code))]
pub(super) trait DualMac {
    /// `SXTB16 w`: bytes 0 and 2 of `w`, sign-extended to two halfwords.
    fn sxtb16(w: u32) -> u32;
    /// `SXTB16 w, ROR #8`: bytes 1 and 3.
    fn sxtb16_ror8(w: u32) -> u32;
    /// `SXTAB16 a, w`: `a`'s halfwords plus bytes 0 and 2 of `w`
    /// (wrapping per halfword).
    fn sxtab16(a: u32, w: u32) -> u32;
    /// `SXTAB16 a, w, ROR #8`: `a`'s halfwords plus bytes 1 and 3.
    fn sxtab16_ror8(a: u32, w: u32) -> u32;
    /// `SMLAD a, b, acc`: `acc + a.lo * b.lo + a.hi * b.hi` (signed
    /// halfwords, wrapping).
    fn smlad(a: u32, b: u32, acc: i32) -> i32;
}

/// [`DualMac`] in plain Rust: the specification the DSP instructions are
/// checked against, and how the host tests [`Dual`].
#[cfg_attr(not(test), allow(dead_code))]
pub(super) struct Emulated;

impl DualMac for Emulated {
    fn sxtb16(w: u32) -> u32 {
        let lo = u32::from(i16::from(w as u8 as i8) as u16);
        let hi = u32::from(i16::from((w >> 16) as u8 as i8) as u16);
        lo | hi << 16
    }
    fn sxtb16_ror8(w: u32) -> u32 {
        Self::sxtb16(w.rotate_right(8))
    }
    fn sxtab16(a: u32, w: u32) -> u32 {
        let e = Self::sxtb16(w);
        let lo = (a as u16).wrapping_add(e as u16);
        let hi = ((a >> 16) as u16).wrapping_add((e >> 16) as u16);
        u32::from(lo) | u32::from(hi) << 16
    }
    fn sxtab16_ror8(a: u32, w: u32) -> u32 {
        Self::sxtab16(a, w.rotate_right(8))
    }
    fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let p = |a: u32, b: u32| i32::from(a as u16 as i16) * i32::from(b as u16 as i16);
        acc.wrapping_add(p(a, b)).wrapping_add(p(a >> 16, b >> 16))
    }
}

/// `Σ_j w[r][j] (x[j] - z)` for the `R <= 4` rows of one block: `block`
/// holds `R x x.len()` weights in the layout above. The sums past `R` are 0.
///
/// Not inlined: on its own the hot loop keeps its four sums, both pointers
/// and the widened inputs in registers (inlined into the caller, LLVM
/// spills some of them to the stack in the loop).
#[inline(never)]
pub(super) fn dot_block<K: GroupMac>(x: &[i8], z: i32, block: &[i8]) -> [i32; BLOCK_ROWS] {
    let mut acc = [0i32; BLOCK_ROWS];
    let n = x.len();
    let rows = block.len().checked_div(n).unwrap_or(0).min(BLOCK_ROWS);
    let (x4, x_tail) = x.as_chunks::<4>();
    let (groups, tails) = block
        .split_at_checked(4 * rows * x4.len())
        .unwrap_or((&[], &[]));
    if rows == BLOCK_ROWS {
        // Zipped iterators and fixed-size chunks: no bounds checks in the
        // hot loop, and the four sums stay in registers. (Unrolled twice,
        // LLVM interleaves the two groups and spills: slower on the M4.)
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        for (xb, wb) in x4.iter().zip(groups.as_chunks::<16>().0) {
            let x = K::widen(xb, z);
            if let [w0, w1, w2, w3] = wb.as_chunks::<4>().0 {
                a0 = K::mac(a0, w0, x);
                a1 = K::mac(a1, w1, x);
                a2 = K::mac(a2, w2, x);
                a3 = K::mac(a3, w3, x);
            }
        }
        acc = [a0, a1, a2, a3];
    } else {
        // The last block of a layer: checked slicing (no chunk iterators,
        // whose length is a division the no-panic proof cannot see past).
        let width = 4 * rows;
        for (g, xb) in x4.iter().enumerate() {
            let x = K::widen(xb, z);
            let wb = groups.get(g * width..(g + 1) * width).unwrap_or(&[]);
            for (a, w) in acc.iter_mut().zip(wb.as_chunks::<4>().0) {
                *a = K::mac(*a, w, x);
            }
        }
    }
    let t = x_tail.len();
    for (r, a) in acc.iter_mut().enumerate().take(rows) {
        let w = tails.get(r * t..(r + 1) * t).unwrap_or(&[]);
        for (&w, &x) in w.iter().zip(x_tail) {
            *a = a.wrapping_add(i32::from(w).wrapping_mul(i32::from(x).wrapping_sub(z)));
        }
    }
    acc
}

/// Row-major `outputs x inputs` weights in the layout above (the inverse
/// of [`row_major`]). Extra weights past `outputs x inputs` are dropped.
#[cfg(feature = "alloc")]
#[must_use]
pub fn interleave(weights: &[i8], inputs: usize) -> alloc::vec::Vec<i8> {
    let mut out = alloc::vec::Vec::with_capacity(weights.len());
    for_each_position(weights.len(), inputs, |i| out.push(weights[i]));
    out
}

/// Row-major weights from the layout above (the inverse of [`interleave`]).
#[cfg(feature = "alloc")]
#[must_use]
pub fn row_major(blocked: &[i8], inputs: usize) -> alloc::vec::Vec<i8> {
    let mut out = alloc::vec![0i8; blocked.len() - blocked.len() % inputs.max(1)];
    let mut src = blocked.iter();
    for_each_position(out.len(), inputs, |i| {
        out[i] = src.next().copied().unwrap_or(0)
    });
    out
}

/// Calls `f` with the row-major index of each stored weight, in storage
/// order, for `len / inputs` rows.
#[cfg(feature = "alloc")]
fn for_each_position(len: usize, inputs: usize, mut f: impl FnMut(usize)) {
    if inputs == 0 {
        return;
    }
    let outputs = len / inputs;
    let groups = inputs / 4;
    for first in (0..outputs).step_by(BLOCK_ROWS) {
        let rows = first..outputs.min(first + BLOCK_ROWS);
        for g in 0..groups {
            for r in rows.clone() {
                (0..4).for_each(|c| f(r * inputs + 4 * g + c));
            }
        }
        for r in rows {
            (4 * groups..inputs).for_each(|c| f(r * inputs + c));
        }
    }
}

/// Four int8 values as one little-endian word.
#[cfg_attr(not(any(test, tinygen_dsp)), allow(dead_code))]
#[inline(always)]
fn word(b: &[i8; 4]) -> u32 {
    u32::from_le_bytes(b.map(|v| v as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// `Σ_j w[r][j] (x[j] - z)` in `i64`, from row-major weights.
    fn reference(x: &[i8], z: i32, rows: &[i8]) -> Vec<i64> {
        rows.chunks(x.len())
            .map(|row| {
                row.iter()
                    .zip(x)
                    .map(|(&w, &x)| i64::from(w) * (i64::from(x) - i64::from(z)))
                    .sum()
            })
            .collect()
    }

    fn values(seed: u64, n: usize) -> Vec<i8> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8 as i8
            })
            .collect()
    }

    #[test]
    fn the_emulated_dsp_instructions_follow_the_arm_arm() {
        // Bytes 0x80 (-128) and 0x7f (127) in bytes 0 and 2, 0x01, 0xff in 1, 3.
        let w = 0xff_7f_01_80_u32;
        assert_eq!(Emulated::sxtb16(w), 0x007f_ff80);
        assert_eq!(Emulated::sxtb16_ror8(w), 0xffff_0001);
        assert_eq!(Emulated::sxtab16(0x0001_0001, w), 0x0080_ff81);
        // Halfword wrap-around: 0x7fff + 127.
        assert_eq!(Emulated::sxtab16(0x7fff_0000, w) >> 16, 0x807e);
        assert_eq!(Emulated::smlad(0x0002_fffd, 0xfffe_0003, 10), 10 - 9 - 4);
        assert_eq!(Emulated::smlad(0x8000_8000, 0x8000_8000, 0), i32::MIN);
    }

    #[test]
    fn both_kernels_give_the_exact_sums_on_every_block_shape() {
        for inputs in 1..=13 {
            for rows in 1..=BLOCK_ROWS {
                for z in [-128, -1, 0, 37, 127] {
                    let seed = ((inputs * 100 + rows * 10) as u64).wrapping_add(z as u64);
                    let x = values(seed, inputs);
                    let w = values(seed + 1, rows * inputs);
                    let mut want: Vec<i32> =
                        reference(&x, z, &w).into_iter().map(|v| v as i32).collect();
                    want.resize(BLOCK_ROWS, 0);
                    let block = interleave(&w, inputs);
                    assert_eq!(row_major(&block, inputs), w);
                    let portable = dot_block::<Portable>(&x, z, &block);
                    let dual = dot_block::<Dual<Emulated>>(&x, z, &block);
                    assert_eq!(portable.to_vec(), want, "{inputs} x {rows}, z {z}");
                    assert_eq!(dual.to_vec(), want, "{inputs} x {rows}, z {z}");
                }
            }
        }
    }

    #[test]
    fn the_layout_keeps_four_rows_word_by_word() {
        // 5 rows of 6 inputs: block 0 holds rows 0-3, block 1 row 4.
        let w: Vec<i8> = (0..30).collect();
        let block = interleave(&w, 6);
        assert_eq!(
            &block[..16],
            &[0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21]
        );
        assert_eq!(&block[16..24], &[4, 5, 10, 11, 16, 17, 22, 23]);
        assert_eq!(&block[24..], &[24, 25, 26, 27, 28, 29]);
    }

    #[test]
    fn extreme_values_wrap_as_i32() {
        // 4 rows of 64 inputs, all -128 against x - z = 255: the exact sums.
        let x = vec![127i8; 64];
        let w = vec![-128i8; 4 * 64];
        let block = interleave(&w, 64);
        let want = -128 * 255 * 64;
        assert_eq!(dot_block::<Portable>(&x, -128, &block), [want; 4]);
        assert_eq!(dot_block::<Dual<Emulated>>(&x, -128, &block), [want; 4]);
    }
}
