//! The host's fast path for int8 networks, bit-identical to the runtime.
//!
//! An int8 layer's outputs are fixed by exact integer arithmetic: each
//! output's sum `bias + Σ_j w[o][j] (x[j] - z)` in wrapping `i32`, which is
//! the same in any order, then the runtime's requantization
//! ([`Requant::output`]) and table. So only the schedule of the sums is the
//! host's: [`FastQNetwork`] copies each layer's weights (unpacked from the
//! file's layout) into blocks of [`WIDTH`] outputs by four inputs, 64 bytes
//! whose sixteen 4-byte groups are one output's weights for four adjacent
//! inputs. With AVX-512 VNNI one `VPDPBUSD` then adds 64 products of
//! unsigned by signed bytes into sixteen sums: the inputs go in as `u = x +
//! 128` (unsigned), and each output starts from `bias - (128 + z) Σ_j
//! w[o][j]`, which makes `Σ w u` into the runtime's sum modulo 2^32. Tiles
//! of [`ROWS`] input rows by three blocks (one row by eight) keep twelve
//! (eight) sums in flight. Without VNNI the same layout runs as plain Rust
//! (for the tests on any CPU; slower than the runtime there, see
//! [`has_vnni`]).
//! Every output then goes through the runtime's own `Requant::output` and
//! table, and the last tensor through `QNetwork::finish`; with AVX-512,
//! single-rounding requantization runs eight outputs at a time in `i64`
//! lanes (`vnni::requantize`, tested against `Requant::output` over the
//! whole range of sums, multipliers and shifts). Batches run in parallel
//! over rows.

use anyhow::{bail, ensure};
use tinygen_runtime::QNetwork;
use tinygen_runtime::qnetwork::QLayerData;
use tinygen_runtime::quant::Rounding;
use tinygen_runtime::quant::kernel::unpack;

use crate::fast_network::in_row_tasks;

/// Outputs per block: the `i32` lanes of one AVX-512 register.
pub const WIDTH: usize = 16;
/// Input rows that share one pass over the weights.
pub const ROWS: usize = 4;

/// Four inputs' weights for [`WIDTH`] outputs: byte `4 o + k` is output
/// `o`'s weight for input `k`.
type Block = [i8; 4 * WIDTH];

/// One layer in blocks of [`WIDTH`] outputs.
struct FastQLayer<'a> {
    data: QLayerData<'a>,
    /// Groups of four inputs (the input zero-padded to a multiple of 4).
    groups: usize,
    /// Blocks of [`WIDTH`] outputs (zero rows past the last output).
    blocks: usize,
    /// Block `b`, group `g` at `b * groups + g`.
    weights: Vec<Block>,
    /// Each output's starting sum, `bias - (128 + z) Σ_j w[o][j]`
    /// (wrapping), `blocks * WIDTH` of them.
    start: Vec<i32>,
    /// With single rounding, each output's multiplier and `31 - shift`
    /// (the shift clamped as the runtime does), `blocks * WIDTH` of each,
    /// for the vector requantization; empty with double rounding.
    multiplier: Vec<i32>,
    right_shift: Vec<i32>,
}

/// An int8 network laid out for the host's SIMD units (see the module
/// docs), borrowing the parsed network.
pub struct FastQNetwork<'a> {
    network: &'a QNetwork<'a>,
    layers: Vec<FastQLayer<'a>>,
    vnni: bool,
}

impl<'a> FastQNetwork<'a> {
    /// Copies the network's layers into output blocks. An error for a
    /// weight of 128 (a lane only a hand-made file holds), which a signed
    /// byte cannot hold: run such a file with the runtime.
    pub fn new(network: &'a QNetwork<'a>) -> anyhow::Result<Self> {
        let mut layers = Vec::new();
        for data in network.layer_data() {
            let data = data.map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
            let (inputs, outputs) = (data.inputs, data.outputs);
            let w = unpack(data.weights, inputs, outputs).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (groups, blocks) = (inputs.div_ceil(4), outputs.div_ceil(WIDTH));
            let mut weights = vec![[0i8; 4 * WIDTH]; blocks * groups];
            let mut start = vec![0i32; blocks * WIDTH];
            let offset = 128 + data.input_zero_point;
            for o in 0..outputs {
                let row = &w[o * inputs..(o + 1) * inputs];
                let mut sum = 0i32;
                for (j, &v) in row.iter().enumerate() {
                    let Ok(v) = i8::try_from(v) else {
                        bail!("a weight of {v} does not fit a signed byte");
                    };
                    weights[(o / WIDTH) * groups + j / 4][4 * (o % WIDTH) + j % 4] = v;
                    sum += i32::from(v);
                }
                let bias = data.bias.get(o).copied().unwrap_or(0);
                start[o] = bias.wrapping_sub(offset.wrapping_mul(sum));
            }
            let (mut multiplier, mut right_shift) = (Vec::new(), Vec::new());
            if data.requant.rounding == Rounding::Single {
                for o in 0..blocks * WIDTH {
                    let (m, shift) = data.requant.scale(o);
                    multiplier.push(m);
                    right_shift.push(31 - shift.clamp(-31, 30));
                }
            }
            layers.push(FastQLayer {
                data,
                groups,
                blocks,
                weights,
                start,
                multiplier,
                right_shift,
            });
        }
        ensure!(!layers.is_empty(), "the network has no layers");
        Ok(Self {
            network,
            layers,
            vnni: has_vnni(),
        })
    }

    /// Runs row-major `inputs` (whole rows) into `outputs`, in parallel
    /// over rows: the values `QNetwork::forward` gives, bit for bit. Rows
    /// with NaN or infinite values are an error, as on the device.
    pub fn forward_batch(&self, inputs: &[f32], outputs: &mut [f32]) -> anyhow::Result<()> {
        let (i, o) = (self.network.input_dim(), self.network.output_dim());
        in_row_tasks(inputs, i, outputs, o, ROWS, |x, out| {
            self.forward_rows(x, out)
        })
    }

    /// One input row (the batch-1 call).
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> anyhow::Result<()> {
        self.forward_batch(input, output)
    }

    /// The rows of one task, layer by layer: each tensor as unsigned bytes
    /// `q + 128`, rows padded to whole groups of four.
    fn forward_rows(&self, inputs: &[f32], outputs: &mut [f32]) {
        let rows = inputs.len() / self.network.input_dim();
        let first = &self.layers[0];
        let params = self.network.input_params();
        let mut u = vec![0u8; rows * 4 * first.groups];
        for (row, x) in u
            .chunks_exact_mut(4 * first.groups)
            .zip(inputs.chunks_exact(first.data.inputs))
        {
            for (u, &v) in row.iter_mut().zip(x) {
                *u = unsigned(params.quantize(v));
            }
        }
        let (mut sums, mut q, mut next) = (Vec::new(), Vec::new(), Vec::new());
        for (l, layer) in self.layers.iter().enumerate() {
            let width = layer.blocks * WIDTH;
            sums.clear();
            sums.resize(rows * width, 0);
            q.clear();
            q.resize(rows * width, 0i8);
            let data = &layer.data;
            if self.vnni {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512 VNNI (`has_vnni`).
                unsafe {
                    vnni::layer_sums(layer, &u, rows, &mut sums)
                };
            } else {
                layer_sums(layer, &u, rows, &mut sums);
            }
            // The runtime's requantization, or with AVX-512 its vector copy.
            let vector = self.vnni && !layer.multiplier.is_empty();
            for (acc, out) in sums.chunks_exact(width).zip(q.chunks_exact_mut(width)) {
                if vector {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX-512 (`has_vnni`).
                    unsafe {
                        vnni::requantize(layer, acc, out)
                    };
                } else {
                    for (o, (q, &acc)) in out.iter_mut().zip(acc).take(data.outputs).enumerate() {
                        *q = data.requant.output(o, acc);
                    }
                }
            }
            let table = |q: i8| data.table.map_or(q, |t| t[usize::from(q as u8)]);
            let q = q.chunks_exact(width).map(|q| &q[..data.outputs]);
            if let Some(after) = self.layers.get(l + 1) {
                next.clear();
                next.resize(rows * 4 * after.groups, 0);
                for (row, q) in next.chunks_exact_mut(4 * after.groups).zip(q) {
                    for (u, &q) in row.iter_mut().zip(q) {
                        *u = unsigned(table(q));
                    }
                }
                std::mem::swap(&mut u, &mut next);
            } else {
                let mut y = vec![0i8; data.outputs];
                for (out, q) in outputs.chunks_exact_mut(data.outputs).zip(q) {
                    for (y, &q) in y.iter_mut().zip(q) {
                        *y = table(q);
                    }
                    self.network.finish(&y, out);
                }
            }
        }
    }
}

/// `q + 128` as an unsigned byte.
fn unsigned(q: i8) -> u8 {
    q as u8 ^ 0x80
}

/// The sums of `rows` rows of `u` (each `4 * groups` bytes) for every
/// block, from each output's start, in plain Rust.
fn layer_sums(layer: &FastQLayer<'_>, u: &[u8], rows: usize, sums: &mut [i32]) {
    let stride = 4 * layer.groups;
    for (x, out) in u
        .chunks_exact(stride)
        .zip(sums.chunks_exact_mut(layer.blocks * WIDTH))
        .take(rows)
    {
        for (b, acc) in out.chunks_exact_mut(WIDTH).enumerate() {
            acc.copy_from_slice(&layer.start[b * WIDTH..(b + 1) * WIDTH]);
            let blocks = &layer.weights[b * layer.groups..(b + 1) * layer.groups];
            for (w, x) in blocks.iter().zip(x.chunks_exact(4)) {
                for (acc, w) in acc.iter_mut().zip(w.chunks_exact(4)) {
                    let dot: i32 = w
                        .iter()
                        .zip(x)
                        .map(|(&w, &x)| i32::from(w) * i32::from(x))
                        .sum();
                    *acc = acc.wrapping_add(dot);
                }
            }
        }
    }
}

/// Whether the CPU runs AVX-512 VNNI: where the fast path is fast. Without
/// it the plain-Rust kernel is about 4x slower than the runtime's own
/// (AVX2) loop, so callers run the runtime instead.
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The AVX-512 VNNI kernel.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::{
        __m512i, _mm256_loadu_si256, _mm512_add_epi64, _mm512_cvtepi32_epi64, _mm512_cvtepi64_epi8,
        _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_max_epi64, _mm512_min_epi64,
        _mm512_mul_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_sllv_epi64,
        _mm512_srav_epi64, _mm512_storeu_si512, _mm512_sub_epi64,
    };

    use super::{Block, FastQLayer, ROWS, WIDTH};

    /// [`super::layer_sums`] with `VPDPBUSD`: tiles of [`ROWS`] rows by
    /// three blocks, the rows left one at a time by eight blocks (one row
    /// streams the weights: eight sums hide `VPDPBUSD`'s latency).
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn layer_sums(layer: &FastQLayer<'_>, u: &[u8], rows: usize, sums: &mut [i32]) {
        let mut row = 0;
        while row + ROWS <= rows {
            blocks::<ROWS, 3>(layer, u, row, sums);
            row += ROWS;
        }
        while row < rows {
            blocks::<1, 8>(layer, u, row, sums);
            row += 1;
        }
    }

    /// Single-rounding requantization of one row's sums (`acc`, every
    /// block), into `out`: per lane, as `Requant::output` computes it,
    /// `clamp((acc · multiplier + 2^(s - 1)) >> s + zero point, act_min,
    /// act_max)` with `s = 31 - shift`, in `i64` (where the runtime
    /// saturates to `i32` first, the clamp to an int8 range gives the same).
    #[target_feature(enable = "avx512f")]
    pub(super) fn requantize(layer: &FastQLayer<'_>, acc: &[i32], out: &mut [i8]) {
        let requant = &layer.data.requant;
        let zero_point = _mm512_set1_epi64(i64::from(requant.output_zero_point));
        let low = _mm512_set1_epi64(i64::from(requant.act_min));
        let high = _mm512_set1_epi64(i64::from(requant.act_max));
        let one = _mm512_set1_epi64(1);
        let eight = |v: &[i32]| {
            let v: &[i32; 8] = v.try_into().expect("eight lanes");
            // SAFETY: 32 bytes (unaligned load).
            _mm512_cvtepi32_epi64(unsafe { _mm256_loadu_si256(v.as_ptr().cast()) })
        };
        let lanes = acc
            .chunks_exact(8)
            .zip(layer.multiplier.chunks_exact(8))
            .zip(layer.right_shift.chunks_exact(8))
            .zip(out.chunks_exact_mut(8));
        for (((acc, multiplier), shift), out) in lanes {
            let (acc, multiplier, shift) = (eight(acc), eight(multiplier), eight(shift));
            let round = _mm512_sllv_epi64(one, _mm512_sub_epi64(shift, one));
            let product = _mm512_add_epi64(_mm512_mul_epi32(acc, multiplier), round);
            let scaled = _mm512_add_epi64(_mm512_srav_epi64(product, shift), zero_point);
            let clamped = _mm512_min_epi64(_mm512_max_epi64(scaled, low), high);
            let bytes: [i8; 16] = bytemuck::cast(_mm512_cvtepi64_epi8(clamped));
            out.copy_from_slice(&bytes[..8]);
        }
    }

    /// Rows `row..row + R`, every block, `B` blocks a tile.
    #[target_feature(enable = "avx512f,avx512vnni")]
    fn blocks<const R: usize, const B: usize>(
        layer: &FastQLayer<'_>,
        u: &[u8],
        row: usize,
        sums: &mut [i32],
    ) {
        let mut b = 0;
        while b + B <= layer.blocks {
            tile::<R, B>(layer, u, row, b, sums);
            b += B;
        }
        while b < layer.blocks {
            tile::<R, 1>(layer, u, row, b, sums);
            b += 1;
        }
    }

    /// Rows `row..row + R` by blocks `block..block + B`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    fn tile<const R: usize, const B: usize>(
        layer: &FastQLayer<'_>,
        u: &[u8],
        row: usize,
        block: usize,
        sums: &mut [i32],
    ) {
        let (groups, width) = (layer.groups, layer.blocks * WIDTH);
        let load = |v: &[i32]| {
            let v: &[i32; WIDTH] = v.try_into().expect("a block of sums");
            // SAFETY: 64 bytes (unaligned load).
            unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
        };
        let start: [__m512i; B] = std::array::from_fn(|k| {
            let o = (block + k) * WIDTH;
            load(&layer.start[o..o + WIDTH])
        });
        let mut acc: [[__m512i; B]; R] = [start; R];
        // Each row's groups of four inputs, each block's groups of weights.
        let x: [&[[u8; 4]]; R] = std::array::from_fn(|r| {
            let start = (row + r) * 4 * groups;
            u[start..start + 4 * groups].as_chunks::<4>().0
        });
        let w: [&[Block]; B] = std::array::from_fn(|k| {
            let start = (block + k) * groups;
            &layer.weights[start..start + groups]
        });
        for g in 0..groups {
            let w: [__m512i; B] = std::array::from_fn(|k| {
                // SAFETY: 64 bytes (unaligned load).
                unsafe { _mm512_loadu_si512(w[k][g].as_ptr().cast()) }
            });
            for (acc, x) in acc.iter_mut().zip(&x) {
                let x = _mm512_set1_epi32(i32::from_le_bytes(x[g]));
                for (acc, &w) in acc.iter_mut().zip(&w) {
                    *acc = _mm512_dpbusd_epi32(*acc, x, w);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (k, &acc) in acc.iter().enumerate() {
                let o = (row + r) * width + (block + k) * WIDTH;
                let out: &mut [i32; WIDTH] = (&mut sums[o..o + WIDTH]).try_into().expect("a block");
                // SAFETY: 64 bytes (unaligned store).
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), acc) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use tinygen_runtime::network::{PriorParams, Role};
    use tinygen_runtime::{Activation, QScratch};

    use super::*;
    use crate::host::AlignedBytes;
    use crate::nn::export::DenseLayer;
    use crate::nn::quantize::{QuantOptions, quantize_with};

    /// A random int8 network with the given widths and activations, as
    /// the quantizer writes it with `options`; then, with `extreme`, some
    /// weights set to -128 (where a lane holds them) and the biases spread
    /// over the whole `i32` range, so that sums wrap and requantization
    /// saturates.
    fn network(
        widths: &[usize],
        activations: &[Activation],
        options: QuantOptions,
        extreme: bool,
        seed: u64,
    ) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let layers: Vec<DenseLayer> = widths
            .windows(2)
            .zip(activations)
            .map(|(io, &activation)| {
                let scale = 2.0 / (io[0] as f32).sqrt();
                DenseLayer {
                    inputs: io[0],
                    outputs: io[1],
                    weight: (0..io[0] * io[1])
                        .map(|_| rng.random_range(-scale..scale))
                        .collect(),
                    bias: (0..io[1]).map(|_| rng.random_range(-0.5..0.5)).collect(),
                    activation,
                }
            })
            .collect();
        let calibration: Vec<f32> = (0..64 * widths[0])
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let mut quantized = quantize_with(&layers, &calibration, options).unwrap();
        if extreme {
            for layer in &mut quantized.layers {
                let inputs = layer.inputs;
                for (k, w) in layer.weight.iter_mut().enumerate() {
                    // Rows 4b and 4b + 2 are a lane's low bytes.
                    if (k / inputs) % 2 == 0 && rng.random_range(0..4) == 0 {
                        *w = -128;
                    }
                }
                for b in &mut layer.bias {
                    *b = rng.random();
                }
            }
        }
        quantized
            .params(Role::Decoder, PriorParams::None)
            .encode()
            .unwrap()
    }

    fn runtime_rows(net: &QNetwork<'_>, inputs: &[f32]) -> Vec<f32> {
        let mut scratch = Box::new(QScratch::<256>::new());
        let o = net.output_dim();
        let mut out = vec![0f32; inputs.len() / net.input_dim() * o];
        for (x, y) in inputs.chunks(net.input_dim()).zip(out.chunks_mut(o)) {
            net.forward(x, y, &mut scratch).unwrap();
        }
        out
    }

    #[test]
    fn the_fast_path_is_bit_identical_to_the_runtime() {
        use Activation::{Identity, Relu, Sigmoid, Tanh};
        let cases: [(&[usize], &[Activation]); 4] = [
            (&[16, 128, 100], &[Relu, Sigmoid]),
            (&[5, 37, 3], &[Tanh, Identity]),
            (&[1, 17, 33, 2], &[Sigmoid, Relu, Tanh]),
            (&[64, 16], &[Identity]),
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut compared = 0;
        for (seed, (widths, activations)) in cases.iter().enumerate() {
            for (per_tensor, f32_output, extreme) in [
                (false, false, false),
                (true, false, false),
                (false, true, true),
                (true, true, true),
            ] {
                let saturating = matches!(activations.last(), Some(Sigmoid | Tanh));
                if f32_output && !saturating {
                    continue;
                }
                let options = QuantOptions::from_flags(per_tensor, f32_output);
                let file = network(widths, activations, options, extreme, seed as u64);
                let bytes = AlignedBytes::new(&file);
                let net = QNetwork::from_bytes(bytes.as_bytes()).unwrap();
                let mut fast = FastQNetwork::new(&net).unwrap();
                for rows in [1, 3, 4, 5, 37, 100] {
                    let inputs: Vec<f32> = (0..rows * widths[0])
                        .map(|_| rng.random_range(-4.0..4.0))
                        .collect();
                    let want = runtime_rows(&net, &inputs);
                    for vnni in [false, has_vnni()] {
                        fast.vnni = vnni;
                        let mut got = vec![0f32; want.len()];
                        fast.forward_batch(&inputs, &mut got).unwrap();
                        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert_eq!(
                                g.to_bits(),
                                w.to_bits(),
                                "{widths:?} {activations:?} per-tensor {per_tensor} f32 output \
                                 {f32_output} extreme {extreme}, {rows} rows, VNNI {vnni}, value {k}"
                            );
                        }
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared >= 60, "{compared}");
        if !has_vnni() {
            eprintln!("no AVX-512 VNNI on this CPU: only the portable kernel was compared");
        }
    }

    /// The vector requantization against the runtime's on sums,
    /// multipliers and shifts over their whole valid ranges.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_requantization_is_the_runtimes() {
        use tinygen_runtime::quant::Requant;
        if !has_vnni() {
            eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for trial in 0..2000 {
            let multiplier: Vec<i32> = (0..WIDTH)
                .map(|_| match rng.random_range(0..4) {
                    0 => i32::MAX,
                    1 => rng.random_range(0..=i32::MAX),
                    _ => rng.random_range(1 << 30..=i32::MAX),
                })
                .collect();
            let shift: Vec<i32> = (0..WIDTH).map(|_| rng.random_range(-31..=30)).collect();
            let acc: Vec<i32> = (0..WIDTH)
                .map(|_| match rng.random_range(0..3) {
                    0 => rng.random(),
                    1 => rng.random_range(-1 << 16..1 << 16),
                    _ => [i32::MIN, i32::MAX, 0, -1][rng.random_range(0..4)],
                })
                .collect();
            let (act_min, act_max) = if trial % 2 == 0 {
                (-128, 127)
            } else {
                (rng.random_range(-128..0), 127)
            };
            let per_tensor = trial % 3 == 0;
            let (m, sh) = if per_tensor {
                (&multiplier[..1], &shift[..1])
            } else {
                (&multiplier[..], &shift[..])
            };
            let requant = Requant {
                multiplier: m,
                shift: sh,
                output_zero_point: rng.random_range(-128..=127),
                act_min,
                act_max,
                rounding: Rounding::Single,
            };
            let data = QLayerData {
                inputs: 1,
                outputs: WIDTH,
                input_zero_point: 0,
                weights: &[],
                bias: &[],
                requant,
                table: None,
            };
            let layer = FastQLayer {
                data,
                groups: 1,
                blocks: 1,
                weights: Vec::new(),
                start: Vec::new(),
                multiplier: (0..WIDTH).map(|o| requant.scale(o).0).collect(),
                right_shift: (0..WIDTH).map(|o| 31 - requant.scale(o).1).collect(),
            };
            let mut got = [0i8; WIDTH];
            // SAFETY: the CPU has AVX-512 VNNI.
            unsafe { vnni::requantize(&layer, &acc, &mut got) };
            for (o, (&g, &a)) in got.iter().zip(&acc).enumerate() {
                assert_eq!(g, requant.output(o, a), "trial {trial}, lane {o}: {a}");
            }
        }
    }

    #[test]
    fn bad_rows_are_errors() {
        let options = QuantOptions::default();
        let file = network(&[3, 8, 2], &[Relu, Identity], options, false, 1);
        let bytes = AlignedBytes::new(&file);
        let net = QNetwork::from_bytes(bytes.as_bytes()).unwrap();
        let fast = FastQNetwork::new(&net).unwrap();
        let mut out = [0f32; 4];
        assert!(fast.forward_batch(&[0.0; 5], &mut out).is_err());
        assert!(fast.forward_batch(&[0.0; 6], &mut out[..3]).is_err());
        let err = fast
            .forward_batch(&[0.0, f32::NAN, 0.0, 1.0, 2.0, 3.0], &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
    }

    use Activation::{Identity, Relu};
}
