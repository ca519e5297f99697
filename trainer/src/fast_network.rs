//! The host's fast path for f32 networks, bit-identical to the runtime.
//!
//! The runtime's numerics (`tinygen_runtime::network`) fix every output's
//! sum: from the bias, `acc = fma(w[o][i], x[i], acc)` in ascending `i`,
//! each step IEEE's fused multiply-add (one rounding), then the runtime's
//! own activation. Those numerics leave the outputs independent, so SIMD
//! lanes can be outputs: [`FastNetwork`] copies each layer's weights into
//! blocks of [`WIDTH`] outputs whose weights for one input are adjacent
//! (the last block zero-padded), and its kernel adds one input's products
//! to sixteen outputs with one AVX-512 fused multiply-add (two with AVX2),
//! in tiles of [`ROWS`] input rows by three blocks (one with AVX2) per pass
//! over the weights (each weight is loaded once for all the rows), or one
//! row by four blocks (two): independent sums, so that the operations
//! overlap. Sigmoid layers use a vectorised copy of libm's `expf` whose
//! bits are the runtime's, over a whole layer's outputs at once. Every
//! output sees the same operations in the same order as on the board; only
//! their scheduling differs. Batches run in parallel over rows.

use anyhow::ensure;
use multiversion::multiversion;
use rayon::prelude::*;
use tinygen_runtime::{Activation, Network};

use crate::fast_math::{exp_lanes, exp8_matches_the_runtime};

/// Outputs per block: one AVX-512 register, two AVX2 ones.
pub const WIDTH: usize = 16;
/// Input rows that share one pass over the weights.
pub const ROWS: usize = 4;
/// Batches up to this many rows run on the calling thread.
const SERIAL_ROWS: usize = 16;
/// The most rows per parallel task.
const MAX_ROWS_PER_TASK: usize = 64;

/// The weights or sums of [`WIDTH`] outputs.
type Wide = [f32; WIDTH];

/// 64 bytes on a cache line of their own: the fast paths' weights, whose
/// 64-byte vector loads would otherwise straddle two lines wherever the
/// allocator put them (up to 1.7x slower; see BENCHMARKS.md).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [u8; 64]);

// SAFETY: 64 bytes of any value, without padding (size = alignment = 64).
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Line {}

/// `n` zeroed lines.
pub(crate) fn lines(n: usize) -> Vec<Line> {
    vec![Line([0; 64]); n]
}

/// One layer in blocks of [`WIDTH`] outputs.
#[derive(Debug, Clone)]
struct FastLayer {
    inputs: usize,
    outputs: usize,
    activation: Activation,
    /// Block `k`, input `i`: the weights of outputs `16k..16k+16` for
    /// input `i` (a [`Wide`] a line).
    weights: Vec<Line>,
    /// Block `k`: the biases of outputs `16k..16k+16`.
    biases: Vec<Wide>,
    /// Whether [`sigmoid_all`] gives the runtime's sigmoid (its libm build).
    fast_sigmoid: bool,
}

/// An f32 network laid out for the host's SIMD units (see the module docs).
#[derive(Debug, Clone)]
pub struct FastNetwork {
    layers: Vec<FastLayer>,
}

impl FastNetwork {
    /// Copies a parsed network's layers into output blocks.
    pub fn new(network: &Network<'_>) -> anyhow::Result<Self> {
        let layers: Vec<FastLayer> = network
            .layer_weights()
            .map(|(layer, w, bias)| {
                let (inputs, outputs) = (usize::from(layer.inputs), usize::from(layer.outputs));
                let blocks = outputs.div_ceil(WIDTH);
                let mut weights = lines(blocks * inputs);
                let mut biases = vec![[0.0; WIDTH]; blocks];
                let wide: &mut [Wide] = bytemuck::cast_slice_mut(&mut weights);
                for o in 0..outputs {
                    let (k, lane) = (o / WIDTH, o % WIDTH);
                    biases[k][lane] = bias[o];
                    for i in 0..inputs {
                        wide[k * inputs + i][lane] = w[o * inputs + i];
                    }
                }
                FastLayer {
                    inputs,
                    outputs,
                    activation: layer.activation,
                    weights,
                    biases,
                    fast_sigmoid: exp8_matches_the_runtime(),
                }
            })
            .collect();
        ensure!(
            !layers.is_empty() && layers.len() == network.layers().len(),
            "the network's weights do not match its layers"
        );
        Ok(Self { layers })
    }

    /// Values per input row.
    pub fn input_dim(&self) -> usize {
        self.layers[0].inputs
    }

    /// Values per output row.
    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Runs row-major `inputs` (whole rows) into `outputs`, in parallel
    /// over rows: the values `Network::forward` gives, bit for bit. Rows
    /// with NaN or infinite values are an error, as on the device.
    pub fn forward_batch(&self, inputs: &[f32], outputs: &mut [f32]) -> anyhow::Result<()> {
        let (i, o) = (self.input_dim(), self.output_dim());
        in_row_tasks(inputs, i, outputs, o, ROWS, |x, out| {
            self.forward_rows(x, out)
        })
    }

    /// One input row (the batch-1 call).
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> anyhow::Result<()> {
        self.forward_batch(input, output)
    }

    /// The rows of one task, layer by layer, the hidden layers' values in
    /// two buffers.
    fn forward_rows(&self, inputs: &[f32], outputs: &mut [f32]) {
        let rows = inputs.len() / self.input_dim();
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let x = if l == 0 { inputs } else { &src[..] };
            if l == last {
                layer_rows(layer, x, outputs);
            } else {
                dst.clear();
                dst.resize(rows * layer.outputs, 0.0);
                layer_rows(layer, x, &mut dst);
                std::mem::swap(&mut src, &mut dst);
            }
        }
    }
}

/// Runs `task` over row-major `inputs` (whole rows of `i` values) into
/// `outputs` (rows of `o`): on the calling thread up to [`SERIAL_ROWS`]
/// rows, else in parallel, one task per thread in whole tiles of
/// `tile_rows` rows and at most [`MAX_ROWS_PER_TASK`] (each layer's weights
/// are read once per task, its activations should stay in cache). Errors
/// for partial rows and for NaN or infinite inputs, as on the device. The
/// f32 and int8 fast paths' batch loop.
pub(crate) fn in_row_tasks(
    inputs: &[f32],
    i: usize,
    outputs: &mut [f32],
    o: usize,
    tile_rows: usize,
    task: impl Fn(&[f32], &mut [f32]) + Sync,
) -> anyhow::Result<()> {
    let rows = inputs.len() / i.max(1);
    ensure!(
        i > 0 && inputs.len() == rows * i && outputs.len() == rows * o,
        "{} inputs and {} outputs are not whole rows of {i} and {o}",
        inputs.len(),
        outputs.len()
    );
    ensure!(
        crate::fast_math::all_finite(inputs),
        "runtime: {}",
        tinygen_runtime::Error::NonFiniteInput
    );
    if rows <= SERIAL_ROWS {
        task(inputs, outputs);
        return Ok(());
    }
    let per_task = rows
        .div_ceil(rayon::current_num_threads())
        .next_multiple_of(tile_rows.max(1))
        .min(MAX_ROWS_PER_TASK);
    outputs
        .par_chunks_mut(per_task * o)
        .zip(inputs.par_chunks(per_task * i))
        .for_each(|(out, x)| task(x, out));
    Ok(())
}

/// Whether the CPU has AVX-512's 32 registers of sixteen lanes, so that
/// tiles of three blocks (twelve sums; one row by four) fit in registers.
fn wide_registers() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The rows of `x` through one layer into `y`, in tiles of rows by output
/// blocks whose sums are independent (so that the additions overlap): see
/// [`tile_shapes`].
fn layer_rows(layer: &FastLayer, x: &[f32], y: &mut [f32]) {
    layer_rows_in(layer, x, y, wide_registers());
}

/// [`layer_rows`] in the tiles for AVX-512 (`wide`) or for AVX2.
fn layer_rows_in(layer: &FastLayer, x: &[f32], y: &mut [f32], wide: bool) {
    let m = layer.outputs;
    let mut put = |r: usize, k: usize, acc: &Wide| {
        let start = r * m + k * WIDTH;
        let lanes = (m - k * WIDTH).min(WIDTH);
        if lanes == WIDTH {
            // A copy of known length: vector stores, not a call to memmove.
            y[start..start + WIDTH].copy_from_slice(acc);
        } else {
            y[start..start + lanes].copy_from_slice(&acc[..lanes]);
        }
    };
    if wide {
        tile_shapes::<3, 4>(layer, x, &mut put);
    } else {
        tile_shapes::<1, 2>(layer, x, &mut put);
    }
    // The activation over all the rows at once: the sigmoid's long chain of
    // dependent operations overlaps across blocks.
    match layer.activation {
        Activation::Sigmoid if layer.fast_sigmoid => sigmoid_all(y),
        activation => activation.apply_all(y),
    }
}

/// [`ROWS`] rows by `B` blocks at a time, each group of blocks' weights
/// used for all the rows' tiles while they are in cache; the rows left
/// over (all of them at batch 1) one by one, `B1` blocks at a time.
fn tile_shapes<const B: usize, const B1: usize>(
    layer: &FastLayer,
    x: &[f32],
    put: &mut dyn FnMut(usize, usize, &Wide),
) {
    let n = layer.inputs;
    let tiled = x.len() / (ROWS * n) * ROWS;
    tiles::<ROWS, B>(layer, &x[..tiled * n], put);
    for (r, row) in x[tiled * n..].chunks_exact(n).enumerate() {
        tiles::<1, B1>(layer, row, &mut |_, k, acc| put(tiled + r, k, acc));
    }
}

/// Runs the rows of `x` (a multiple of R) through `layer`, B output
/// blocks by R rows at a time (blocks outermost), handing each row's
/// block of sums (before the activation) to `put`.
fn tiles<const R: usize, const B: usize>(
    layer: &FastLayer,
    x: &[f32],
    put: &mut dyn FnMut(usize, usize, &Wide),
) {
    let n = layer.inputs;
    let weights: &[Wide] = bytemuck::cast_slice(&layer.weights);
    let groups = weights.chunks(B * n).zip(layer.biases.chunks(B));
    for (g, (blocks, biases)) in groups.enumerate() {
        for (t, xs) in x.chunks_exact(R * n).enumerate() {
            if biases.len() == B {
                let mut acc = [[[0.0; WIDTH]; B]; R];
                for a in &mut acc {
                    a.copy_from_slice(biases);
                }
                accumulate::<R, B>(blocks, xs, &mut acc);
                for (r, a) in acc.iter().enumerate() {
                    for (b, block) in a.iter().enumerate() {
                        put(t * R + r, g * B + b, block);
                    }
                }
            } else {
                // The last, partial group: one block at a time.
                for (b, (block, bias)) in blocks.chunks_exact(n).zip(biases).enumerate() {
                    let mut acc = [[*bias]; R];
                    accumulate::<R, 1>(block, xs, &mut acc);
                    for (r, a) in acc.iter().enumerate() {
                        put(t * R + r, g * B + b, &a[0]);
                    }
                }
            }
        }
    }
}

/// `acc[r][b][l] = fma(blocks[b][i][l], x[r][i], acc[r][b][l])` for
/// ascending `i`: R rows of inputs (`x` row-major) against B consecutive
/// blocks of sixteen outputs (`blocks` holds B blocks of `n` inputs each).
// Without FMA instructions `mul_add` is a call to libm (exact, slow).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn accumulate<const R: usize, const B: usize>(
    blocks: &[Wide],
    x: &[f32],
    acc: &mut [[Wide; B]; R],
) {
    let n = blocks.len() / B;
    // Each row's inputs and each block's weights as slices of n, so that
    // the loop below needs no bounds checks.
    let xs: [&[f32]; R] = std::array::from_fn(|r| &x[r * n..][..n]);
    let ws: [&[Wide]; B] = std::array::from_fn(|b| &blocks[b * n..][..n]);
    let mut a = *acc;
    for i in 0..n {
        for (ar, xr) in a.iter_mut().zip(&xs) {
            let xi = xr[i];
            for (ab, wb) in ar.iter_mut().zip(&ws) {
                let w = &wb[i];
                for l in 0..WIDTH {
                    // One rounding, as on the board.
                    ab[l] = w[l].mul_add(xi, ab[l]);
                }
            }
        }
    }
    *acc = a;
}

/// The runtime's sigmoid of every value, in place, each value's bits the
/// scalar function's: four registers of lanes at a time (independent
/// chains), then one, then the last few values through the scalar function.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "x86_64+avx"))]
fn sigmoid_all(values: &mut [f32]) {
    let mut quads = values.chunks_exact_mut(4 * WIDTH);
    for chunk in &mut quads {
        let lanes: &mut [f32; 4 * WIDTH] = chunk.try_into().expect("a whole chunk");
        *lanes = sigmoid_lanes(lanes);
    }
    let mut blocks = quads.into_remainder().chunks_exact_mut(WIDTH);
    for chunk in &mut blocks {
        let lanes: &mut Wide = chunk.try_into().expect("a whole chunk");
        *lanes = sigmoid_lanes(lanes);
    }
    Activation::Sigmoid.apply_all(blocks.into_remainder());
}

/// The runtime's sigmoid (`x >= 0`: `1 / (1 + e)`, else `e / (1 + e)`, `e
/// = exp(-|x|)`) of `N` values, each lane's bits the scalar function's.
#[inline(always)]
fn sigmoid_lanes<const N: usize>(x: &[f32; N]) -> [f32; N] {
    // exp(-|x|): the sign bit set.
    let e = exp_lanes(&x.map(|v| f32::from_bits(v.to_bits() | 0x8000_0000)));
    let mut y: [f32; N] = std::array::from_fn(|l| {
        // One division whichever the sign.
        let numerator = if x[l] >= 0.0 { 1.0 } else { e[l] };
        numerator / (1.0 + e[l])
    });
    // NaN lanes (checked as one vector compare) get the scalar's NaN.
    if x.iter().fold(false, |any, v| any | v.is_nan()) {
        for (y, &v) in y.iter_mut().zip(x) {
            if v.is_nan() {
                *y = Activation::Sigmoid.apply(v);
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
    use tinygen_runtime::{Network, Scratch};

    use super::*;
    use crate::host::AlignedBytes;

    /// A random network with the given widths and activations.
    fn network(widths: &[usize], activations: &[Activation], seed: u64) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let params: Vec<(Vec<f32>, Vec<f32>)> = widths
            .windows(2)
            .map(|w| {
                let scale = 1.0 / (w[0] as f32).sqrt();
                (
                    (0..w[0] * w[1])
                        .map(|_| rng.random_range(-scale..scale))
                        .collect(),
                    (0..w[1]).map(|_| rng.random_range(-0.5..0.5)).collect(),
                )
            })
            .collect();
        DecoderParams {
            role: Role::Decoder,
            latent: widths[0],
            layers: params
                .iter()
                .zip(widths.windows(2))
                .zip(activations)
                .map(|(((w, b), io), &activation)| LayerParams {
                    inputs: io[0],
                    outputs: io[1],
                    activation,
                    weight: w,
                    bias: b,
                })
                .collect(),
            prior: PriorParams::None,
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn the_fast_path_is_bit_identical_to_the_runtime() {
        use Activation::*;
        for (seed, widths, activations) in [
            (1, vec![16, 128, 784], vec![Relu, Sigmoid]),
            (2, vec![3, 5], vec![Tanh]),
            (3, vec![7, 9, 17, 1], vec![LeakyRelu, Identity, Sigmoid]),
            (4, vec![20, 8, 8], vec![Tanh, Relu]),
            (5, vec![20, 400, 49], vec![Relu, Sigmoid]),
        ] {
            let bytes = AlignedBytes::new(&network(&widths, &activations, seed));
            let net = Network::from_bytes(bytes.as_bytes()).unwrap();
            let fast = FastNetwork::new(&net).unwrap();
            let (i, o) = (widths[0], *widths.last().unwrap());
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 10);
            // Batches that exercise whole and partial row groups and tasks.
            for rows in [1, 3, 4, 5, 37, 64, 130] {
                let x: Vec<f32> = (0..rows * i).map(|_| rng.random_range(-3.0..3.0)).collect();
                let mut fast_out = vec![0.0; rows * o];
                fast.forward_batch(&x, &mut fast_out).unwrap();
                let mut scratch = Box::new(Scratch::<1024>::new());
                let mut want = vec![0.0; o];
                // Each layer in both tile shapes, whatever this CPU has.
                let mut wide_out = x.clone();
                let mut narrow_out = x.clone();
                for layer in &fast.layers {
                    let mut wide = vec![0.0; rows * layer.outputs];
                    let mut narrow = wide.clone();
                    layer_rows_in(layer, &wide_out, &mut wide, true);
                    layer_rows_in(layer, &narrow_out, &mut narrow, false);
                    (wide_out, narrow_out) = (wide, narrow);
                }
                for (r, row) in x.chunks_exact(i).enumerate() {
                    net.forward(row, &mut want, &mut scratch).unwrap();
                    for out in [&fast_out, &wide_out, &narrow_out] {
                        for (a, b) in out[r * o..(r + 1) * o].iter().zip(&want) {
                            assert_eq!(a.to_bits(), b.to_bits(), "{widths:?} row {r}");
                        }
                    }
                }
            }
        }
    }

    /// Every float (of a stride through the bit patterns, both signs) gets
    /// the runtime's sigmoid bit for bit, whichever part of
    /// [`sigmoid_all`] it goes through.
    #[test]
    fn the_vector_sigmoid_is_the_runtimes() {
        assert!(exp8_matches_the_runtime());
        // 64 + 16 + 7 values: the four-register, one-register and scalar parts.
        const LEN: usize = 87;
        let mut bits = 0u32;
        while bits < 0x7f80_0000 {
            let values: Vec<f32> = (0..LEN as u32)
                .map(|l| {
                    let b = bits.wrapping_add(l * 131);
                    f32::from_bits(if l % 2 == 0 { b } else { b | 0x8000_0000 })
                })
                .collect();
            let mut got = values.clone();
            sigmoid_all(&mut got);
            for (got, &x) in got.iter().zip(&values) {
                let want = Activation::Sigmoid.apply(x);
                assert_eq!(got.to_bits(), want.to_bits(), "sigmoid({x:e})");
            }
            bits += 211 * 5;
        }
    }

    /// All 2^32 bit patterns (`cargo test --release -p tinygen --lib
    /// exhaustive -- --ignored`, about a minute).
    #[test]
    #[ignore]
    fn the_vector_sigmoid_is_the_runtimes_exhaustive() {
        (0u32..1 << 26).into_par_iter().for_each(|chunk| {
            let values: Vec<f32> = (0..64).map(|l| f32::from_bits(chunk * 64 + l)).collect();
            let mut got = values.clone();
            sigmoid_all(&mut got);
            for (got, &x) in got.iter().zip(&values) {
                let want = Activation::Sigmoid.apply(x);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "sigmoid({x:e})"
                );
            }
        });
    }

    #[test]
    fn bad_rows_are_errors() {
        let bytes = AlignedBytes::new(&network(&[2, 3], &[Activation::Relu], 5));
        let net = Network::from_bytes(bytes.as_bytes()).unwrap();
        let fast = FastNetwork::new(&net).unwrap();
        let mut out = vec![0.0; 3];
        assert!(fast.forward(&[1.0, f32::NAN], &mut out).is_err());
        assert!(fast.forward(&[1.0, 2.0, 3.0], &mut out).is_err());
        assert!(fast.forward(&[1.0, 2.0], &mut out[..2]).is_err());
    }
}
