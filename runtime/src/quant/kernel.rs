//! The int8 dot products of [`super::dense_i8`] and the packed weight layout
//! they read (`mlp-int8/3`, `runtime/FORMAT.md`).
//!
//! # Layout
//!
//! Two rows' weights for the same input share one signed 16-bit *lane*,
//! `v = 256 w_hi + w_lo`, so that one multiply of `v` by an input serves
//! both rows and the pair still takes one byte per weight. A layer's
//! `outputs x inputs` weights are padded with zero rows and columns to
//! multiples of four ([`padded`]) and stored as 32-bit words (`pack`,
//! feature `alloc`), block after block. Block `b` holds rows
//! `4b .. 4b + 4` as two pairs: pair 0 is rows `4b` (lo) and `4b + 1`
//! (hi), pair 1 rows `4b + 2` (lo) and `4b + 3` (hi). Within a block,
//! each group of four columns `4g .. 4g + 4` takes four words, each two
//! lanes (the first in the low halfword):
//! pair 0 at columns `4g, 4g + 1`; pair 0 at `4g + 2, 4g + 3`; pair 1 at
//! `4g, 4g + 1`; pair 1 at `4g + 2, 4g + 3`. A block is
//! [`padded`]`(inputs)` words.
//!
//! Every lane decodes: `w_lo = v as i8` (its low byte) and `w_hi = (v -
//! w_lo) / 256`, which lies in `[-128, 128]`. Writers store weights in
//! `[-128, 127]` whose lane fits an `i16`, i.e. all but `w_hi = -128` with
//! `w_lo < 0` ([`lane`]); TFLite's symmetric weights are in `[-127, 127]`,
//! which always fit. A lane only a hand-made file holds (`w_hi = 128`) is
//! still computed exactly, the same on every target.
//!
//! # Kernels
//!
//! The input is first widened into `i16` lanes `x - z` (zero past the
//! last input, so padded columns add nothing), two to a word, up to
//! [`CHUNK`] inputs at a time. Per chunk, block and pair, a kernel (`ChunkDot`)
//! returns `A = Σ v x` and `S = Σ w_lo x` in wrapping `i32`; then
//! `Σ w_lo x = S` and `Σ w_hi x = (A - S) >> 8`. That is exact: `A - S =
//! 256 Σ w_hi x` modulo 2^32, and within a chunk `|Σ w_hi x| <= 256 · 128 ·
//! 255 < 2^23`, so `256 Σ w_hi x` fits an `i32`. The chunk sums are added
//! into the row totals in wrapping `i32`: the totals are TFLite's
//! accumulators bit for bit, whatever the order, on every target.
//!
//! - `Packed`: per word `A = SMLAD(w, x, A)`, `w' = SXTB16(w)` (the two
//!   lanes' low bytes, `w_lo`, sign-extended), `S = SMLAD(w', x, S)`: three
//!   instructions per four multiply-accumulates. On ARMv7E-M (Cortex-M4/M7)
//!   and on Armv8-M Mainline built with `-C target-feature=+dsp`
//!   (Cortex-M33/M35P/M55; `runtime/build.rs` selects) it runs as the
//!   assembly loop of `quant/dsp.rs`; the host tests run the same loop
//!   with the instructions emulated (`Emulated`).
//! - `Portable` and `PortableLanes`: the same sums in plain Rust (two
//!   multiplies per lane), the lanes picked out of words or loaded as
//!   halfwords and bytes, whichever the core runs in fewer instructions
//!   (measured: the first on the Cortex-M0 and M3, the second on RISC-V).
//! - `Avx2` (`kernel/avx2.rs`): on x86-64 hosts, `SMLAD` on eight words at
//!   once with `VPMADDWD` where the CPU has AVX2, else `Portable`.
//! - `Neon` (`kernel/neon.rs`): on AArch64, a group's four words as eight
//!   halfwords, each pair's four products widened and added in one `SMLAL`.

#[cfg(feature = "alloc")]
use crate::Error;

/// Rows per block of the layout.
pub const BLOCK_ROWS: usize = 4;

/// The most inputs widened at a time: the most for which the `S`/`A` split
/// is exact (`256 · 128 · 255 < 2^23`). A multiple of 4, so chunks end on
/// groups.
pub const CHUNK: usize = 256;

/// Words of this target's widened chunk: [`CHUNK`] inputs, 512 bytes of
/// stack. (Chunks of 64 inputs, 384 bytes fewer, cost the Cortex-M3 9.6%
/// more instructions on the MLPerf Tiny autoencoder than before packing,
/// against 3.9% with 256: each chunk of each block costs a call and its
/// fix-ups, about 65 instructions there.)
pub(super) const NATIVE_WIDE: usize = CHUNK / 2;

/// Rows whose totals are kept while the chunks of an input longer than
/// [`CHUNK`] go by (each chunk is widened once per group of rows).
const GROUP_ROWS: usize = 32;

/// `n` rounded up to a multiple of 4: the stored rows and columns of a
/// layer with `n` outputs or inputs. Saturates (no layer is that wide).
#[must_use]
pub const fn padded(n: usize) -> usize {
    match n.checked_next_multiple_of(4) {
        Some(p) => p,
        None => usize::MAX - 3,
    }
}

/// Words of a packed `outputs x inputs` layer: `padded(outputs) / 4 ·
/// padded(inputs)`, `None` on overflow.
#[must_use]
pub const fn packed_words(inputs: usize, outputs: usize) -> Option<usize> {
    (padded(outputs) / BLOCK_ROWS).checked_mul(padded(inputs))
}

/// The lane of weights `lo` and `hi` (`256 hi + lo` as an `i16`'s bits), if
/// it fits: not for `hi = -128` with `lo < 0`.
#[must_use]
pub fn lane(lo: i8, hi: i8) -> Option<u16> {
    let v = 256 * i32::from(hi) + i32::from(lo);
    i16::try_from(v).ok().map(|v| v as u16)
}

/// `(w_lo, w_hi)` of a lane, `w_hi` in `[-128, 128]`.
#[must_use]
pub fn unlane(v: u16) -> (i8, i16) {
    let lo = v as i8;
    (lo, (v as i16 as i32 - i32::from(lo)).div_euclid(256) as i16)
}

/// One chunk of one block: `[A0, S0, A1, S1]` for its two pairs (see the
/// module docs).
pub(super) trait ChunkDot {
    /// `x`: the chunk's widened input, two lanes a word (its groups of four
    /// inputs); `w`: the block's words for those columns, four per group.
    /// At most `min(x.len() / 2, w.len() / 4, CHUNK / 4)` groups are read.
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4];
}

/// The lanes of a word, low first, sign-extended.
#[cfg_attr(any(tinygen_dsp, tinygen_neon), allow(dead_code))]
#[inline(always)]
fn lanes(word: u32) -> [i32; 2] {
    [
        i32::from(word as u16 as i16),
        i32::from((word >> 16) as u16 as i16),
    ]
}

/// The groups of a chunk: two input words and four weight words each.
#[cfg_attr(
    any(tinygen_dsp, target_arch = "riscv32", tinygen_neon),
    allow(dead_code)
)]
#[inline(always)]
fn groups<'a>(x: &'a [u32], w: &'a [u32]) -> impl Iterator<Item = (&'a [u32; 2], &'a [u32; 4])> {
    x.as_chunks::<2>()
        .0
        .iter()
        .zip(w.as_chunks::<4>().0)
        .take(CHUNK / 4)
}

/// Plain Rust: per lane `A += v x`, `S += (v as i8) x`, the lanes picked
/// out of word loads. The Cortex-M0 and M3 kernel (and x86-64 hosts'
/// without AVX2).
#[cfg_attr(
    any(tinygen_dsp, target_arch = "riscv32", tinygen_neon),
    allow(dead_code)
)]
pub(super) struct Portable;

impl ChunkDot for Portable {
    #[inline(never)]
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
        let [mut a0, mut s0, mut a1, mut s1] = [0i32; 4];
        let mac = |a: &mut i32, s: &mut i32, word: u32, [xa, xb]: [i32; 2]| {
            let [va, vb] = lanes(word);
            *a = a
                .wrapping_add(va.wrapping_mul(xa))
                .wrapping_add(vb.wrapping_mul(xb));
            let (la, lb) = (i32::from(va as i8), i32::from(vb as i8));
            *s = s
                .wrapping_add(la.wrapping_mul(xa))
                .wrapping_add(lb.wrapping_mul(xb));
        };
        for (&[x01, x23], &[w0, w1, w2, w3]) in groups(x, w) {
            let x01 = lanes(x01);
            mac(&mut a0, &mut s0, w0, x01);
            mac(&mut a1, &mut s1, w2, x01);
            let x23 = lanes(x23);
            mac(&mut a0, &mut s0, w1, x23);
            mac(&mut a1, &mut s1, w3, x23);
        }
        [a0, s0, a1, s1]
    }
}

/// [`Portable`]'s sums with the lanes and their low bytes read by halfword
/// and byte loads: the RISC-V kernel (rv32imac has no instruction to
/// sign-extend a halfword or byte in a register; on the Cortex-M0 and M3
/// this form costs 3% and 14% more instructions on the MLPerf Tiny
/// autoencoder, on RISC-V 7% fewer).
#[cfg_attr(not(any(test, target_arch = "riscv32")), allow(dead_code))]
pub(super) struct PortableLanes;

impl ChunkDot for PortableLanes {
    #[inline(never)]
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
        let lanes16: &[i16] = bytemuck::cast_slice(w);
        let bytes: &[[i8; 2]] = bytemuck::cast_slice(w);
        let [mut a0, mut s0, mut a1, mut s1] = [0i32; 4];
        let groups = x
            .as_chunks::<2>()
            .0
            .iter()
            .zip(lanes16.as_chunks::<8>().0)
            .zip(bytes.as_chunks::<8>().0)
            .take(CHUNK / 4);
        for ((&[x01, x23], v), lo) in groups {
            let [x0, x1] = lanes(x01);
            let [x2, x3] = lanes(x23);
            for (k, x) in [x0, x1, x2, x3].into_iter().enumerate() {
                a0 = a0.wrapping_add(i32::from(v[k]).wrapping_mul(x));
                s0 = s0.wrapping_add(i32::from(lo[k][0]).wrapping_mul(x));
                a1 = a1.wrapping_add(i32::from(v[4 + k]).wrapping_mul(x));
                s1 = s1.wrapping_add(i32::from(lo[4 + k][0]).wrapping_mul(x));
            }
        }
        [a0, s0, a1, s1]
    }
}

/// The DSP loop of `quant/dsp.rs`, written with [`DualMac`]'s
/// instructions (run on the host with [`Emulated`]).
#[cfg(test)]
pub(super) struct Packed<D>(core::marker::PhantomData<D>);

#[cfg(test)]
impl<D: DualMac> ChunkDot for Packed<D> {
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
        let [mut a0, mut s0, mut a1, mut s1] = [0i32; 4];
        for (&[x01, x23], &[w0, w1, w2, w3]) in groups(x, w) {
            a0 = D::smlad(w0, x01, a0);
            s0 = D::smlad(D::sxtb16(w0), x01, s0);
            a0 = D::smlad(w1, x23, a0);
            s0 = D::smlad(D::sxtb16(w1), x23, s0);
            a1 = D::smlad(w2, x01, a1);
            s1 = D::smlad(D::sxtb16(w2), x01, s1);
            a1 = D::smlad(w3, x23, a1);
            s1 = D::smlad(D::sxtb16(w3), x23, s1);
        }
        [a0, s0, a1, s1]
    }
}

/// The kernel of this target.
#[cfg(tinygen_dsp)]
pub(super) type Native = super::dsp::Arm;
/// The kernel of this target.
#[cfg(all(not(tinygen_dsp), target_arch = "riscv32"))]
pub(super) type Native = PortableLanes;
/// The kernel of this target.
#[cfg(target_arch = "x86_64")]
pub(super) type Native = avx2::Avx2;
/// The kernel of this target.
#[cfg(tinygen_neon)]
pub(super) type Native = neon::Neon;
/// The kernel of this target.
#[cfg(all(
    not(tinygen_dsp),
    not(target_arch = "riscv32"),
    not(target_arch = "x86_64"),
    not(tinygen_neon)
))]
pub(super) type Native = Portable;

/// The DSP instructions [`Packed`] is written in (ARM ARM semantics).
#[cfg(test)]
pub(super) trait DualMac {
    /// `SXTB16 w`: bytes 0 and 2 of `w`, sign-extended to two halfwords.
    fn sxtb16(w: u32) -> u32;
    /// `SMLAD a, b, acc`: `acc + a.lo * b.lo + a.hi * b.hi` (signed
    /// halfwords, wrapping).
    fn smlad(a: u32, b: u32, acc: i32) -> i32;
}

/// [`DualMac`] in plain Rust: how the host runs the DSP loop.
#[cfg(test)]
pub(super) struct Emulated;

#[cfg(test)]
impl DualMac for Emulated {
    fn sxtb16(w: u32) -> u32 {
        let lo = u32::from(i16::from(w as u8 as i8) as u16);
        let hi = u32::from(i16::from((w >> 16) as u8 as i8) as u16);
        lo | hi << 16
    }
    fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let p = |a: u32, b: u32| i32::from(a as u16 as i16) * i32::from(b as u16 as i16);
        acc.wrapping_add(p(a, b)).wrapping_add(p(a >> 16, b >> 16))
    }
}

/// Widens `x[start..start + 2 wide.len()]` into lanes `x - z` (0 past the
/// end of `x`), two to a word.
#[inline(never)]
fn widen(x: &[i8], z: i32, start: usize, wide: &mut [u32]) {
    let rest = x.get(start..).unwrap_or(&[]);
    let (pairs, tail) = rest.as_chunks::<2>();
    let lane = |v: i8| u32::from(i32::from(v).wrapping_sub(z) as u16);
    let mut words = wide.iter_mut();
    // `pairs` first: when it runs out, `zip` takes no word from `words`.
    for (&[a, b], word) in pairs.iter().zip(words.by_ref()) {
        *word = lane(a) | lane(b) << 16;
    }
    if let (Some(word), [a]) = (words.next(), tail) {
        *word = lane(*a);
    }
    words.for_each(|word| *word = 0);
}

/// Calls `emit` with `Σ_j w[r][j] (x[j] - z)` (wrapping `i32`) for rows `r
/// = 0 .. outputs`, in order, a group of up to 32 rows a call; `weights`
/// holds the packed layer (at least `packed_words(x.len(), outputs)` words;
/// the caller checks). The input is widened `2 WIDE` values at a time
/// (`WIDE` even, at most `CHUNK / 2`). Nothing is emitted for an empty input.
pub(super) fn dots<K: ChunkDot, const WIDE: usize>(
    x: &[i8],
    z: i32,
    weights: &[u32],
    outputs: usize,
    mut emit: impl FnMut(&[i32]),
) {
    const { assert!(WIDE >= 2 && WIDE.is_multiple_of(2) && WIDE <= CHUNK / 2) };
    let width = padded(x.len());
    if x.is_empty() {
        return;
    }
    let chunk = 2 * WIDE;
    let chunks = width.div_ceil(chunk);
    let mut wide = [0u32; WIDE];
    let mut rest = weights;
    let mut left = outputs;
    let mut widened = false;
    while left > 0 {
        let rows = left.min(GROUP_ROWS);
        let blocks = rows.div_ceil(BLOCK_ROWS);
        let Some((group, after)) = rest.split_at_checked(blocks * width) else {
            return;
        };
        let mut totals = [0i32; GROUP_ROWS];
        for c in 0..chunks {
            let start = c * chunk;
            let len = width.saturating_sub(start).min(chunk) / 2;
            let xw = wide.get_mut(..len).unwrap_or(&mut []);
            // One chunk stays widened for every group of rows.
            if chunks > 1 || !widened {
                widen(x, z, start, xw);
                widened = true;
            }
            let xw: &[u32] = xw;
            let mut ws = group;
            for t in totals
                .as_chunks_mut::<BLOCK_ROWS>()
                .0
                .iter_mut()
                .take(blocks)
            {
                let (block, tail) = ws.split_at_checked(width).unwrap_or((ws, &[]));
                ws = tail;
                let w = block.get(start..).unwrap_or(&[]);
                let [a0, s0, a1, s1] = K::dot(xw, w);
                for (t, (a, s)) in t
                    .as_chunks_mut::<2>()
                    .0
                    .iter_mut()
                    .zip([(a0, s0), (a1, s1)])
                {
                    t[0] = t[0].wrapping_add(s);
                    t[1] = t[1].wrapping_add(a.wrapping_sub(s) >> 8);
                }
            }
        }
        emit(totals.get(..rows).unwrap_or(&[]));
        rest = after;
        left -= rows;
    }
}

/// Row-major `outputs x inputs` weights (`outputs = weights.len() /
/// inputs`) in the packed layout.
///
/// # Errors
///
/// [`Error::DimensionMismatch`] unless `weights` holds whole rows (and
/// `inputs > 0`); [`Error::ParameterOutOfRange`] for a pair of weights no
/// lane holds ([`lane`]: `-128` in a pair's high row beside a negative
/// low-row weight).
#[cfg(feature = "alloc")]
pub fn pack(weights: &[i8], inputs: usize) -> Result<alloc::vec::Vec<u32>, Error> {
    if inputs == 0 || !weights.len().is_multiple_of(inputs) {
        return Err(Error::DimensionMismatch {
            expected: weights.len().next_multiple_of(inputs.max(1)),
            found: weights.len(),
        });
    }
    let outputs = weights.len() / inputs;
    let w = |r: usize, c: usize| {
        if r < outputs && c < inputs {
            weights[r * inputs + c]
        } else {
            0
        }
    };
    let lane_at = |r: usize, c: usize| lane(w(r, c), w(r + 1, c)).ok_or(Error::ParameterOutOfRange);
    let mut out = alloc::vec::Vec::with_capacity(packed_words(inputs, outputs).unwrap_or(0));
    for block in (0..outputs).step_by(BLOCK_ROWS) {
        for g in (0..inputs).step_by(4) {
            for pair in [block, block + 2] {
                for c in [g, g + 2] {
                    out.push(u32::from(lane_at(pair, c)?) | u32::from(lane_at(pair, c + 1)?) << 16);
                }
            }
        }
    }
    Ok(out)
}

/// The `outputs x inputs` weights a packed layer stands for, row-major (the
/// inverse of [`pack`]; `i16` because a lane may decode to 128).
/// `DimensionMismatch` if `words` is not `packed_words(inputs, outputs)`
/// long.
#[cfg(feature = "alloc")]
pub fn unpack(words: &[u32], inputs: usize, outputs: usize) -> Result<alloc::vec::Vec<i16>, Error> {
    let expected = packed_words(inputs, outputs).unwrap_or(usize::MAX);
    if words.len() != expected {
        return Err(Error::DimensionMismatch {
            expected,
            found: words.len(),
        });
    }
    let width = padded(inputs);
    let mut out = alloc::vec![0i16; inputs * outputs];
    for (i, &word) in words.iter().enumerate() {
        let (block, within) = (i / width, i % width);
        let (g, k) = (within / 4, within % 4);
        let row = BLOCK_ROWS * block + 2 * (k / 2);
        for (h, v) in [word as u16, (word >> 16) as u16].into_iter().enumerate() {
            let col = 4 * g + 2 * (k % 2) + h;
            let (lo, hi) = unlane(v);
            for (r, value) in [(row, i16::from(lo)), (row + 1, hi)] {
                if r < outputs && col < inputs {
                    out[r * inputs + col] = value;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(tinygen_neon)]
mod neon;
#[cfg(test)]
mod tests;
