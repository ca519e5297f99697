//! The host's fast path for int8 networks, bit-identical to the runtime.
//!
//! An int8 layer's outputs are fixed by exact integer arithmetic: each
//! output's sum `bias + Σ_j w[o][j] (x[j] - z)` in wrapping `i32`, which is
//! the same in any order, then the runtime's requantization
//! ([`Requant::output`]) and table. So only the schedule of the sums is the
//! host's: [`FastQNetwork`] copies each layer's weights (unpacked from the
//! file's layout) into blocks of [`WIDTH`] outputs by four inputs, 64 bytes
//! whose sixteen 4-byte groups are one output's weights for four adjacent
//! inputs. The inputs go in as unsigned bytes `u = x + 128`, and each output
//! starts from `bias - (128 + z) Σ_j w[o][j]`, which makes `Σ w u` into the
//! runtime's sum modulo 2^32. A [`Kernel`] then adds the products a tile of
//! rows by blocks at a time: with AVX-512 VNNI one `VPDPBUSD` adds a whole
//! block's 64 products of unsigned by signed bytes into sixteen sums; with
//! AVX-VNNI the same instruction on each half of a block; with AVX2,
//! `VPMADDWD` on the weights widened to 16 bits (two sums per output, added
//! at the end); on Arm with the dot-product extension, `SDOT` on each
//! quarter of a block, which adds four outputs' products with the same
//! four inputs (on signed inputs, so its layers start from `bias - z Σ w`);
//! plain Rust elsewhere (for the tests on any CPU; no faster than the
//! runtime there, see [`runs_fast`]).
//! Every output is then requantized as the runtime's `Requant::output`
//! does; with AVX2, AVX-512 or NEON, single rounding runs four, eight or
//! two outputs a register in `i64` lanes (`avx2::requantize`,
//! `avx512::requantize`, `neon::requantize`, each tested against
//! `Requant::output` over the whole range of sums, multipliers and
//! shifts). What the runtime does to a requantized byte
//! after that (the activation's clamp, the sigmoid or tanh table, and the
//! next layer's offset or, for the last layer, `QNetwork::finish`) depends
//! on the byte alone, so it is one 256-entry `Lookup` computed from the
//! runtime's own functions, looked up 64 bytes at a time with AVX-512
//! VBMI or 16 at a time with NEON's `TBL`. A task's rows go through each
//! layer a tile of rows at a time, so that the tile's sums stay in cache.
//! Batches run in parallel over rows.

use anyhow::{bail, ensure};
use tinygen_runtime::QNetwork;
use tinygen_runtime::qnetwork::{QLayerData, QuantParams};
use tinygen_runtime::quant::kernel::unpack;
use tinygen_runtime::quant::{Requant, Rounding};

use crate::fast_network::{Line, in_row_tasks, lines};

/// Outputs per block: the `i32` lanes of one AVX-512 register.
pub const WIDTH: usize = 16;
/// Input rows that share one pass over the weights (at most; a batch's
/// rows are split between threads in multiples of it).
pub const ROWS: usize = 4;
/// The AVX2 kernel's rows a pass (its sixteen registers hold three rows'
/// sums).
#[cfg(target_arch = "x86_64")]
const AVX2_ROWS: usize = 3;

/// Four inputs' weights for [`WIDTH`] outputs: byte `4 o + k` is output
/// `o`'s weight for input `k`.
type Block = [i8; 4 * WIDTH];

/// The loop that adds a layer's products (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, on any CPU.
    Portable,
    /// `VPMADDWD` on 16-bit weights.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// `VPDPBUSD` on 256-bit halves of a block.
    #[cfg(target_arch = "x86_64")]
    AvxVnni,
    /// `VPDPBUSD` on whole blocks; vector requantization.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// `SDOT` on quarters of a block (Arm's dot-product extension).
    #[cfg(target_arch = "aarch64")]
    NeonDot,
}

impl Kernel {
    /// The kernels this CPU runs, slowest first.
    pub fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            // Every SIMD kernel needs AVX2 (the input quantization's).
            if has!("avx2") {
                kernels.push(Kernel::Avx2);
                if has!("avxvnni") {
                    kernels.push(Kernel::AvxVnni);
                }
                if has!("avx512f") && has!("avx512vnni") {
                    kernels.push(Kernel::Avx512Vnni);
                }
            }
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            kernels.push(Kernel::NeonDot);
        }
        kernels
    }

    /// The fastest kernel this CPU runs.
    pub fn best() -> Kernel {
        Self::available().pop().unwrap_or(Kernel::Portable)
    }

    /// The kernel's name, as benchmarks print it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "AVX2",
            #[cfg(target_arch = "x86_64")]
            Kernel::AvxVnni => "AVX-VNNI",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => "AVX-512 VNNI",
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDot => "NEON SDOT",
        }
    }

    /// Each row's sums of `rows` rows of `u` (each `4 * groups` bytes) for
    /// every block of `layer`, from each output's start, in tiles of rows
    /// by blocks (shapes chosen on random networks of the bench decoders'
    /// widths).
    fn layer_sums(self, layer: &FastQLayer<'_>, u: &[u8], rows: usize, sums: &mut [i32]) {
        // SAFETY (every arm): `FastQNetwork` holds only kernels that
        // `available` lists, so the CPU has their instructions.
        match self {
            Kernel::Portable => unsafe { tiles::<Portable, ROWS, 3, 8>(layer, u, rows, sums) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { tiles::<avx2::Madd, AVX2_ROWS, 1, 3>(layer, u, rows, sums) },
            #[cfg(target_arch = "x86_64")]
            Kernel::AvxVnni => unsafe { tiles::<avx2::Vnni, ROWS, 1, 4>(layer, u, rows, sums) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe {
                tiles::<avx512::Vnni, ROWS, 3, 8>(layer, u, rows, sums)
            },
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDot => unsafe { tiles::<neon::Dot, ROWS, 1, 2>(layer, u, rows, sums) },
        }
    }

    /// Whether the kernel multiplies the inputs as signed bytes `x = u -
    /// 128` rather than as the unsigned `u` (see the module docs): its
    /// layers start from `bias - z Σ w`, the others' from `bias - (128 +
    /// z) Σ w`.
    fn signed_inputs(self) -> bool {
        #[cfg(target_arch = "aarch64")]
        if self == Kernel::NeonDot {
            return true;
        }
        false
    }

    /// The rows of one tile of [`Self::layer_sums`].
    fn tile_rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => AVX2_ROWS,
            _ => ROWS,
        }
    }

    /// One row's sums (`acc`, every block) into `out`: the runtime's
    /// requantization, or with single rounding and AVX2 or AVX-512 its
    /// vector copy, which may leave the clamp to the activation's range to
    /// the layer's [`Lookup`] (as [`clamp`]).
    fn requantize(self, layer: &FastQLayer<'_>, acc: &[i32], out: &mut [i8]) {
        if !layer.scales.multiplier.is_empty() {
            // SAFETY (every arm): the CPU has the kernel's instructions,
            // AVX2, AVX-512F or NEON among them (as in `layer_sums`).
            match self {
                Kernel::Portable => {}
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 | Kernel::AvxVnni => {
                    return unsafe { avx2::requantize(layer, acc, out) };
                }
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512Vnni => return unsafe { avx512::requantize(layer, acc, out) },
                #[cfg(target_arch = "aarch64")]
                Kernel::NeonDot => return unsafe { neon::requantize(layer, acc, out) },
            }
        }
        let data = &layer.data;
        for (o, (q, &acc)) in out.iter_mut().zip(acc).take(data.outputs).enumerate() {
            *q = data.requant.output(o, acc);
        }
    }
}

/// Whether this CPU runs a SIMD kernel, where the fast path beats the
/// runtime's own loop (AVX2 alone 1.8-3x, `cargo xtask bench-decode`; on
/// aarch64 SDOT runs 5-8x fewer instructions, `cargo xtask bench-arm`);
/// on x86-64 the portable kernel is about 8x slower than it, so callers
/// run the runtime there.
pub fn runs_fast() -> bool {
    Kernel::best() != Kernel::Portable
}

/// One layer in blocks of [`WIDTH`] outputs.
struct FastQLayer<'a> {
    data: QLayerData<'a>,
    /// Groups of four inputs (the input zero-padded to a multiple of 4).
    groups: usize,
    /// Blocks of [`WIDTH`] outputs (zero rows past the last output).
    blocks: usize,
    /// Block `b`, group `g` at `b * groups + g` (a [`Block`] a line).
    weights: Vec<Line>,
    /// Each output's starting sum, `bias - (128 + z) Σ_j w[o][j]`
    /// (wrapping; `bias - z Σ_j w[o][j]` for a kernel with
    /// [`Kernel::signed_inputs`]), `blocks * WIDTH` of them.
    start: Vec<i32>,
    /// With single rounding, the vector requantization's constants;
    /// empty with double rounding.
    scales: Scales,
    /// What the layer's requantized bytes become.
    lookup: Lookup,
}

/// Each output's multiplier, rounding term `2^(s - 1)` and right shift `s
/// = 31 - shift` (the shift clamped as the runtime does), as `i64` lanes,
/// `blocks * WIDTH` of each.
#[derive(Default)]
struct Scales {
    multiplier: Vec<i64>,
    round: Vec<i64>,
    right_shift: Vec<i64>,
}

impl Scales {
    /// `requant`'s scales for `outputs` outputs with single rounding, none
    /// with double rounding.
    fn new(requant: &Requant<'_>, outputs: usize) -> Self {
        let mut scales = Scales::default();
        if requant.rounding == Rounding::Single {
            for o in 0..outputs {
                let (m, shift) = requant.scale(o);
                let s = 31 - i64::from(shift.clamp(-31, 30));
                scales.multiplier.push(i64::from(m));
                scales.round.push(1 << (s - 1));
                scales.right_shift.push(s);
            }
        }
        scales
    }
}

/// A layer's requantized bytes `q` through the rest of the runtime's
/// steps, as one 256-entry table indexed by `q as u8`: the clamp to the
/// activation's range, the sigmoid or tanh table, and then either the next
/// layer's unsigned input byte or the network's output value.
enum Lookup {
    /// A hidden layer: `table(clamp(q)) ^ 0x80`, the next layer's input
    /// rows being `next_row` bytes.
    Next {
        table: Box<[u8; 256]>,
        next_row: usize,
    },
    /// The last layer: `QNetwork::finish` of `table(clamp(q))`.
    Output(Values),
}

/// The last layer's output values by requantized byte, and the same
/// values' bytes as four tables (byte `k` of each value in table `k`) for
/// the vector lookups.
struct Values {
    table: Box<[f32; 256]>,
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    bytes: Box<[[u8; 256]; 4]>,
}

impl Values {
    fn new(table: [f32; 256]) -> Self {
        let bytes = std::array::from_fn(|k| std::array::from_fn(|q| table[q].to_le_bytes()[k]));
        Values {
            table: Box::new(table),
            bytes: Box::new(bytes),
        }
    }
}

/// The activation's clamp after requantization, as `Requant::requantize`
/// applies it.
fn clamp(requant: &Requant<'_>, q: i8) -> i8 {
    q.max(requant.act_min).min(requant.act_max)
}

/// The byte `q` (as `u8`) after `data`'s clamp and table.
fn activated(data: &QLayerData<'_>, q: u8) -> i8 {
    let q = clamp(&data.requant, q as i8);
    data.table.map_or(q, |table| table[usize::from(q as u8)])
}

/// An int8 network laid out for the host's SIMD units (see the module
/// docs), borrowing the parsed network.
pub struct FastQNetwork<'a> {
    network: &'a QNetwork<'a>,
    layers: Vec<FastQLayer<'a>>,
    kernel: Kernel,
    /// Whether the lookups run in vector registers (wherever the CPU can,
    /// with any kernel): 64 bytes at a time with AVX-512 VBMI's
    /// `VPERMI2B`, 16 with NEON's `TBL` and `TBX`.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    vector_lookups: bool,
}

impl<'a> FastQNetwork<'a> {
    /// Copies the network's layers into output blocks for the fastest
    /// kernel here. An error for a weight of 128 (a lane only a hand-made
    /// file holds), which a signed byte cannot hold: run such a file with
    /// the runtime.
    pub fn new(network: &'a QNetwork<'a>) -> anyhow::Result<Self> {
        Self::with_kernel(network, Kernel::best())
    }

    /// [`FastQNetwork::new`] where it beats the runtime ([`runs_fast`]),
    /// `None` elsewhere and for files it cannot lay out (a weight of 128):
    /// what the host's commands run int8 networks with, the runtime when
    /// `None`.
    pub fn where_fast(network: &'a QNetwork<'a>) -> Option<Self> {
        if runs_fast() {
            Self::new(network).ok()
        } else {
            None
        }
    }

    /// [`FastQNetwork::new`] with the given kernel; an error if this CPU
    /// does not run it.
    pub fn with_kernel(network: &'a QNetwork<'a>, kernel: Kernel) -> anyhow::Result<Self> {
        ensure!(
            Kernel::available().contains(&kernel),
            "this CPU does not run the {} kernel",
            kernel.name()
        );
        let layer_data = network
            .layer_data()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
        ensure!(!layer_data.is_empty(), "the network has no layers");
        let last = layer_data.len() - 1;
        let mut layers = Vec::new();
        for (l, data) in layer_data.into_iter().enumerate() {
            let (inputs, outputs) = (data.inputs, data.outputs);
            let w = unpack(data.weights, inputs, outputs).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (groups, blocks) = (inputs.div_ceil(4), outputs.div_ceil(WIDTH));
            let mut weights = lines(blocks * groups);
            let block: &mut [Block] = bytemuck::cast_slice_mut(&mut weights);
            let mut start = vec![0i32; blocks * WIDTH];
            // What the kernel multiplies, `u = x + 128` or `x`, less `x - z`.
            let flip = if kernel.signed_inputs() { 0 } else { 128 };
            let offset = flip + data.input_zero_point;
            for o in 0..outputs {
                let row = &w[o * inputs..(o + 1) * inputs];
                let mut sum = 0i32;
                for (j, &v) in row.iter().enumerate() {
                    let Ok(v) = i8::try_from(v) else {
                        bail!("a weight of {v} does not fit a signed byte");
                    };
                    block[(o / WIDTH) * groups + j / 4][4 * (o % WIDTH) + j % 4] = v;
                    sum += i32::from(v);
                }
                let bias = data.bias.get(o).copied().unwrap_or(0);
                start[o] = bias.wrapping_sub(offset.wrapping_mul(sum));
            }
            layers.push(FastQLayer {
                groups,
                blocks,
                weights,
                start,
                scales: Scales::new(&data.requant, blocks * WIDTH),
                lookup: if l < last {
                    Lookup::Next {
                        table: Box::new(std::array::from_fn(|q| {
                            unsigned(activated(&data, q as u8))
                        })),
                        // The next layer's inputs, in whole groups.
                        next_row: 4 * outputs.div_ceil(4),
                    }
                } else {
                    Lookup::Output(Values::new(std::array::from_fn(|q| {
                        let mut out = [0.0];
                        network.finish(&[activated(&data, q as u8)], &mut out);
                        out[0]
                    })))
                },
                data,
            });
        }
        Ok(Self {
            network,
            layers,
            kernel,
            vector_lookups: has_vector_lookups(),
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

    /// A hidden layer's [`Lookup`]: the requantized bytes `q` (whole
    /// registers) through `table` into `out`.
    fn look_up_bytes(&self, table: &[u8; 256], q: &[i8], out: &mut [u8]) {
        if self.vector_lookups {
            // SAFETY: `vector_lookups` is set only where the CPU has the
            // instructions (`has_vector_lookups`).
            #[cfg(target_arch = "x86_64")]
            return unsafe { avx512::look_up_bytes(table, q, out) };
            #[cfg(target_arch = "aarch64")]
            return unsafe { neon::look_up_bytes(table, q, out) };
        }
        look_up(table, q, out);
    }

    /// The last layer's [`Lookup`]: the requantized bytes `q` (whole
    /// registers) through `values` into `out`.
    fn look_up_values(&self, values: &Values, q: &[i8], out: &mut [f32]) {
        if self.vector_lookups {
            // SAFETY: as in `look_up_bytes`.
            #[cfg(target_arch = "x86_64")]
            return unsafe { avx512::look_up_values(&values.bytes, q, out) };
            #[cfg(target_arch = "aarch64")]
            return unsafe { neon::look_up_values(&values.bytes, q, out) };
        }
        look_up(&values.table, q, out);
    }

    /// One input row (the batch-1 call).
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> anyhow::Result<()> {
        self.forward_batch(input, output)
    }

    /// The rows of one task, layer by layer and in each layer a tile of
    /// rows at a time: each tensor as unsigned bytes `q + 128`, rows padded
    /// to whole groups of four.
    fn forward_rows(&self, inputs: &[f32], outputs: &mut [f32]) {
        let rows = inputs.len() / self.network.input_dim();
        if rows == 0 {
            return;
        }
        BUFFERS.with_borrow_mut(|buffers| self.forward_rows_in(inputs, outputs, rows, buffers));
    }

    /// [`Self::forward_rows`] with this thread's buffers.
    fn forward_rows_in(
        &self,
        inputs: &[f32],
        outputs: &mut [f32],
        rows: usize,
        Buffers { u, next, sums, q }: &mut Buffers,
    ) {
        let first = &self.layers[0];
        let params = self.network.input_params();
        u.clear();
        u.resize(rows * 4 * first.groups, 0);
        for (row, x) in u
            .chunks_exact_mut(4 * first.groups)
            .zip(inputs.chunks_exact(first.data.inputs))
        {
            quantize(self.kernel, params, x, &mut row[..x.len()]);
        }
        let tile = self.kernel.tile_rows().min(rows);
        for layer in &self.layers {
            let (width, outputs_per_row) = (layer.blocks * WIDTH, layer.data.outputs);
            sums.resize(tile * width, 0);
            // Whole registers for the vector lookups.
            q.resize(width.next_multiple_of(64), 0i8);
            if let Lookup::Next { next_row, .. } = layer.lookup {
                next.clear();
                next.resize(rows * next_row, 0);
            }
            let input_row = 4 * layer.groups;
            for (t, u) in u.chunks(tile * input_row).enumerate() {
                let n = u.len() / input_row;
                let sums = &mut sums[..n * width];
                self.kernel.layer_sums(layer, u, n, sums);
                for (r, acc) in sums.chunks_exact(width).enumerate() {
                    let row = t * tile + r;
                    self.kernel.requantize(layer, acc, q);
                    match &layer.lookup {
                        Lookup::Next { table, next_row } => {
                            let out = &mut next[row * next_row..][..outputs_per_row];
                            self.look_up_bytes(table, q, out);
                        }
                        Lookup::Output(values) => {
                            let out = &mut outputs[row * outputs_per_row..][..outputs_per_row];
                            self.look_up_values(values, q, out);
                        }
                    }
                }
            }
            std::mem::swap(u, next);
        }
    }
}

/// The buffers of a pass: each tensor's rows as unsigned bytes (the
/// layer's input `u`, its output `next`), a tile's sums and one row's
/// requantized bytes.
#[derive(Default)]
struct Buffers {
    u: Vec<u8>,
    next: Vec<u8>,
    sums: Vec<i32>,
    q: Vec<i8>,
}

thread_local! {
    /// Each thread's [`Buffers`], kept between calls (allocating them each
    /// call cost a tenth of a one-row decode).
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::default();
}

/// Each of the first `out.len()` bytes of `q` through `table` into `out`.
fn look_up<T: Copy>(table: &[T; 256], q: &[i8], out: &mut [T]) {
    for (y, &q) in out.iter_mut().zip(q) {
        *y = table[usize::from(q as u8)];
    }
}

/// Whether the CPU runs the lookups in vector registers: with AVX-512
/// VBMI (and BW) on x86-64, with NEON (in every core) on AArch64.
fn has_vector_lookups() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512f") && has!("avx512bw") && has!("avx512vbmi")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    false
}

/// `q + 128` as an unsigned byte.
fn unsigned(q: i8) -> u8 {
    q as u8 ^ 0x80
}

/// The runtime's `params.quantize` of each value of `x` (finite) into `out`
/// as unsigned bytes: vectorised with the SIMD kernels' AVX2, where the
/// runtime calls libm's `roundf` for each value.
fn quantize(kernel: Kernel, params: QuantParams, x: &[f32], out: &mut [u8]) {
    if kernel != Kernel::Portable {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn vectorised(params: QuantParams, x: &[f32], out: &mut [u8]) {
                quantize_loop(params, x, out);
            }
            // SAFETY: every kernel but the portable one needs AVX2.
            return unsafe { vectorised(params, x, out) };
        }
    }
    quantize_loop(params, x, out);
}

/// `quant::quantize`'s integer-zero-point branch, which every int8 zero
/// point takes: the division in `f32`, rounded half away from zero (std's
/// `round`, the rule of libm's `roundf`, and one correct result for every
/// input), clamped to ±384 (past which the sum saturates either way), plus
/// the zero point, saturated; for finite `x`, whose quotient is never NaN.
#[inline(always)]
fn quantize_loop(params: QuantParams, x: &[f32], out: &mut [u8]) {
    let zero_point = i32::from(params.zero_point);
    for (u, &v) in out.iter_mut().zip(x) {
        let centred = (v / params.scale).round().clamp(-384.0, 384.0) as i32;
        *u = unsigned((centred + zero_point).clamp(-128, 127) as i8);
    }
}

/// Where a tile starts: a layer, its input rows `u` (each `4 * groups`
/// bytes), the tile's first row and first block.
#[derive(Clone, Copy)]
struct At<'l> {
    layer: &'l FastQLayer<'l>,
    u: &'l [u8],
    row: usize,
    block: usize,
}

impl<'l> At<'l> {
    /// The tile's inputs and weights: each of its `R` rows' groups of four
    /// inputs, each of its `B` blocks' groups of weights.
    #[inline(always)]
    fn operands<const R: usize, const B: usize>(self) -> ([&'l [[u8; 4]]; R], [&'l [Block]; B]) {
        let groups = self.layer.groups;
        let weights: &'l [Block] = bytemuck::cast_slice(&self.layer.weights);
        let x = std::array::from_fn(|r| {
            let start = (self.row + r) * 4 * groups;
            self.u[start..start + 4 * groups].as_chunks::<4>().0
        });
        let w = std::array::from_fn(|k| {
            let start = (self.block + k) * groups;
            &weights[start..start + groups]
        });
        (x, w)
    }

    /// The starting sums of the tile's block `k`.
    #[inline(always)]
    fn start(self, k: usize) -> &'l [i32; WIDTH] {
        let o = (self.block + k) * WIDTH;
        self.layer.start[o..o + WIDTH].try_into().expect("a block")
    }

    /// The tile's row `r`, block `k` in `sums` (each row's `blocks *
    /// WIDTH`).
    #[inline(always)]
    fn sums(self, sums: &mut [i32], r: usize, k: usize) -> &mut [i32; WIDTH] {
        let o = ((self.row + r) * self.layer.blocks + self.block + k) * WIDTH;
        (&mut sums[o..o + WIDTH]).try_into().expect("a block")
    }
}

/// A kernel's tile: the sums of `R` rows by `B` blocks from `at`, from each
/// output's start, into `sums`.
trait Tile {
    /// # Safety
    /// The CPU has the kernel's instructions.
    unsafe fn tile<const R: usize, const B: usize>(at: At<'_>, sums: &mut [i32]);
}

/// Every row and block of a layer in tiles of `R` rows by `B` blocks (the
/// blocks left one a tile), the rows left one at a time by `B1` blocks.
///
/// # Safety
/// As [`Tile::tile`].
unsafe fn tiles<T: Tile, const R: usize, const B: usize, const B1: usize>(
    layer: &FastQLayer<'_>,
    u: &[u8],
    rows: usize,
    sums: &mut [i32],
) {
    let mut row = 0;
    while row < rows {
        let (r, b) = if row + R <= rows { (R, B) } else { (1, B1) };
        let mut block = 0;
        while block < layer.blocks {
            let at = At {
                layer,
                u,
                row,
                block,
            };
            // SAFETY: as this function's.
            unsafe {
                match (r == R, block + b <= layer.blocks) {
                    (true, true) => T::tile::<R, B>(at, sums),
                    (true, false) => T::tile::<R, 1>(at, sums),
                    (false, true) => T::tile::<1, B1>(at, sums),
                    (false, false) => T::tile::<1, 1>(at, sums),
                }
            }
            block += if block + b <= layer.blocks { b } else { 1 };
        }
        row += r;
    }
}

/// The vector requantizations' loop over one row (`acc`, every block, into
/// `out`): `eight` requantizes eight sums with their [`Scales`] into eight
/// bytes.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn requantize_eights(
    layer: &FastQLayer<'_>,
    acc: &[i32],
    out: &mut [i8],
    mut eight: impl FnMut(&[i32; 8], [&[i64; 8]; 3], &mut [i8; 8]),
) {
    let scales = &layer.scales;
    let lanes = acc
        .as_chunks::<8>()
        .0
        .iter()
        .zip(scales.multiplier.as_chunks::<8>().0)
        .zip(scales.round.as_chunks::<8>().0)
        .zip(scales.right_shift.as_chunks::<8>().0)
        .zip(out.as_chunks_mut::<8>().0);
    for ((((acc, multiplier), round), shift), out) in lanes {
        eight(acc, [multiplier, round, shift], out);
    }
}

/// The plain-Rust kernel.
struct Portable;

impl Tile for Portable {
    unsafe fn tile<const R: usize, const B: usize>(at: At<'_>, sums: &mut [i32]) {
        let (x, w) = at.operands::<R, B>();
        for (r, x) in x.iter().enumerate() {
            for (k, w) in w.iter().enumerate() {
                let out = at.sums(sums, r, k);
                *out = *at.start(k);
                for (w, x) in w.iter().zip(*x) {
                    for (acc, w) in out.iter_mut().zip(w.as_chunks::<4>().0) {
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
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

#[cfg(test)]
mod tests;
