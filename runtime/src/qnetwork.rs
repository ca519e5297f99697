//! Int8 networks read in place from a model file: decoders and encoders
//! whose layers run TensorFlow Lite's int8 fully connected arithmetic
//! ([`crate::quant::dense_i8`]) bit for bit, on the host and on the device.
//!
//! Two kinds share one body: [`ModelKind::DecoderInt8`] (latent code ->
//! data point, with the prior to sample codes from, as an f32
//! [`crate::network`] decoder) and [`ModelKind::EncoderInt8`] (data point
//! -> latent code). The bytes are specified in `runtime/FORMAT.md`.
//!
//! # Numerics
//!
//! A tensor of int8 values `q` with [`QuantParams`] `(scale, zero_point)`
//! stands for the reals `scale * (q - zero_point)`.
//!
//! - [`QNetwork::forward`] quantizes the f32 input with the file's input
//!   params ([`crate::quant::quantize`]), runs the layers, and dequantizes
//!   the last tensor with its params ([`crate::quant::dequantize`]).
//!   [`QNetwork::forward_i8`] takes and returns the int8 tensors themselves.
//! - Layer `i` reads the tensor of layer `i - 1` (the first, the quantized
//!   input) and computes [`crate::quant::dense_i8`] with `input_zero_point`
//!   that tensor's zero point, its int8 weights (symmetric, zero point 0),
//!   its `i32` bias, and [`Requant`] `{ multiplier, shift,
//!   output_zero_point: output.zero_point, act_min, act_max, rounding }`
//!   with the file's [`Rounding`] (one for the whole network; writers
//!   default to [`Rounding::Single`], what LiteRT computes). The
//!   multipliers and shifts are one (per-tensor) or one per output
//!   (per-channel).
//! - `identity`: `[act_min, act_max] = [-128, 127]`; `relu` is fused as
//!   TFLite fuses it, `act_min = max(-128, output.zero_point)`. The layer's
//!   output tensor has the layer's `output` params.
//! - `sigmoid` and `tanh`: the fully connected part writes the
//!   pre-activation with the layer's `output` params (range `[-128,
//!   127]`), then each value `q` becomes `table[q as u8]`, the layer's
//!   256-entry table stored in the file: TFLite's int8 `LOGISTIC` and
//!   `TANH`, which writers fill with `quant::activation_table` (feature
//!   `alloc`; LiteRT's reference kernels give the same on every value
//!   checked), from the layer's `output` params to TFLite's fixed int8
//!   output params: sigmoid `(1/256, -128)`, tanh `(1/128, 0)`. The next
//!   layer reads the tensor with those fixed params. A pass does no
//!   floating point between its input and its output.
//! - With [`FinalActivation::F32`] the last layer's sigmoid or tanh is not
//!   a table: its int8 pre-activation (the `output` params) is the pass's
//!   last tensor, and [`QNetwork::forward`] dequantizes it and applies the
//!   activation in f32 ([`Activation::apply`], as f32 networks do), what a
//!   TFLite graph `FULLY_CONNECTED -> DEQUANTIZE -> LOGISTIC` computes. It
//!   costs one f32 sigmoid or tanh per output and removes the int8 output
//!   grid (outputs of exactly 0 or at most 255/256), which an output scored
//!   by a log-likelihood pays for.
//! - `leaky_relu` is not supported in int8 files.
//!
//! # Memory
//!
//! No heap and no copies of the weights: a pass ping-pongs between two
//! int8 buffers of `N` values ([`QScratch`], `2 N` bytes). Every tensor of
//! the pass lives there, the (quantized) input and the last output
//! included, so `N` must be at least [`QNetwork::hidden_width`], checked at
//! each call; [`QNetwork::sample`] also keeps the f32 latent code in one
//! buffer and needs [`QNetwork::sample_width`].

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::format::{self, Header, ModelKind};
use crate::network::{LayerList, ListedLayer, check_len};
use crate::prior::{LatentPrior, Prior};
use crate::quant::{self, Requant, Rounding};
use crate::{Error, Shape};

const DATA_LENGTH: Error = Error::InvalidShape(Shape::DataLength);
const INTERNAL: Error = Error::InvalidShape(Shape::Internal);

/// Schema key of the int8 network body, shared by int8 decoders and encoders.
pub const SCHEMA_KEY: u32 = format::schema_key(
    "mlp-int8/4 spec{latent:u16 data:u16 input:{scale:f32 zero_point:i8} \
     rounding:{double,single} layers:seq{inputs:u16 outputs:u16 \
     activation:{identity,relu,leaky_relu(rejected),tanh,sigmoid} per_channel:bool \
     output:{scale:f32 zero_point:i8}} \
     prior:{none,gaussian,uniform,circle,ring{noise:f32},mixture{components:u16}} \
     final_activation:{int8,f32(last layer tanh or sigmoid, no table)}} \
     data:4-byte words[per layer: weight i8 outputs*inputs, rows and columns zero-padded \
     to multiples of 4, rows 2k (lo) and 2k+1 (hi) sharing i16 lanes 256*hi+lo, in blocks \
     of 4 rows (per block: per 4-column group 4 words of 2 lanes: pair 0 columns 0-1, \
     pair 0 columns 2-3, pair 1 columns 0-1, pair 1 columns 2-3), \
     bias i32 outputs, multiplier i32 m, shift i32 m \
     (m = outputs if per_channel else 1), if tanh or sigmoid (but the last layer with \
     final_activation f32): table i8 256 indexed by q as u8; \
     if mixture: f32 weights K, means K*latent, cholesky K*latent*latent lower row-major]",
);

/// 4-byte words of a sigmoid or tanh layer's table: 256 int8 values.
pub const TABLE_WORDS: usize = 64;

/// TFLite's fixed int8 output params of `LOGISTIC`: scale 1/256, zero point -128.
pub const SIGMOID_OUTPUT: QuantParams = QuantParams {
    scale: 1.0 / 256.0,
    zero_point: -128,
};

/// TFLite's fixed int8 output params of `TANH`: scale 1/128, zero point 0.
pub const TANH_OUTPUT: QuantParams = QuantParams {
    scale: 1.0 / 128.0,
    zero_point: 0,
};

/// How the last layer's sigmoid or tanh is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FinalActivation {
    /// In int8, by the layer's table (TFLite's int8 `LOGISTIC` and `TANH`):
    /// the output lies on the fixed 1/256 or 1/128 grid.
    #[default]
    Int8,
    /// In f32, on the dequantized int8 pre-activation: the layer stores no
    /// table. Only for a last layer with sigmoid or tanh.
    F32,
}

/// How an int8 tensor stands for reals: `real = scale * (q - zero_point)`;
/// `scale` finite and > 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuantParams {
    /// The real step between consecutive int8 values.
    pub scale: f32,
    /// The int8 value that stands for 0.
    pub zero_point: i8,
}

impl QuantParams {
    /// `Ok` if the scale is finite and positive: `NonFiniteParameter` for
    /// NaN or infinity, `ParameterOutOfRange` for zero or a negative scale.
    pub(crate) fn check(self) -> Result<(), Error> {
        if !self.scale.is_finite() {
            Err(Error::NonFiniteParameter)
        } else if self.scale > 0.0 {
            Ok(())
        } else {
            Err(Error::ParameterOutOfRange)
        }
    }

    /// `quant::quantize` with these params.
    #[inline]
    pub fn quantize(self, x: f32) -> i8 {
        quant::quantize(x, self.scale, i32::from(self.zero_point))
    }

    /// `quant::dequantize` with these params.
    #[inline]
    pub fn dequantize(self, q: i8) -> f32 {
        quant::dequantize(q, self.scale, i32::from(self.zero_point))
    }
}

/// One int8 fully connected layer as the spec stores it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QLayer {
    /// Width of the layer's input.
    pub inputs: u16,
    /// Width of the layer's output.
    pub outputs: u16,
    /// Activation applied to the output (not `LeakyRelu`).
    pub activation: Activation,
    /// One multiplier and shift per output (else one for the layer).
    pub per_channel: bool,
    /// Params of the tensor the fully connected part writes.
    pub output: QuantParams,
}

impl QLayer {
    const EMPTY: QLayer = QLayer {
        inputs: 0,
        outputs: 0,
        activation: Activation::Identity,
        per_channel: false,
        output: QuantParams {
            scale: 1.0,
            zero_point: 0,
        },
    };

    /// Multiply-accumulates of one pass: `inputs * outputs`.
    pub fn macs(&self) -> usize {
        usize::from(self.inputs) * usize::from(self.outputs)
    }

    /// Number of multipliers (and of shifts).
    pub fn multipliers(&self) -> usize {
        if self.per_channel {
            usize::from(self.outputs)
        } else {
            1
        }
    }

    /// 4-byte words of the packed weights ([`quant::kernel::packed_words`]).
    fn weight_words(&self) -> usize {
        // At most 65536^2 / 4 = 2^30: no overflow on 32 bits.
        quant::kernel::packed_words(usize::from(self.inputs), usize::from(self.outputs))
            .unwrap_or(usize::MAX)
    }

    /// Whether the activation is sigmoid or tanh (in int8, by a table).
    pub fn is_saturating(&self) -> bool {
        matches!(self.activation, Activation::Sigmoid | Activation::Tanh)
    }

    /// 4-byte words the layer stores: weights (packed), bias, multipliers,
    /// shifts, and with `table` its 256-entry table
    /// ([`QNetworkSpec::has_table`]).
    pub fn words(&self, table: bool) -> usize {
        // At most 2^30 + 3 * 65535 + 64 < 2^31: no overflow on 32 bits.
        let table = if table { TABLE_WORDS } else { 0 };
        self.weight_words() + usize::from(self.outputs) + 2 * self.multipliers() + table
    }

    /// Splits the layer's words (with a table if `table`) off the front of
    /// `words`; `None` if too few.
    fn split<'w>(&self, words: &'w [f32], table: bool) -> Option<(LayerWords<'w>, &'w [f32])> {
        let m = self.multipliers();
        let (weights, rest) = words.split_at_checked(self.weight_words())?;
        let (bias, rest) = rest.split_at_checked(usize::from(self.outputs))?;
        let (multiplier, rest) = rest.split_at_checked(m)?;
        let (shift, rest) = rest.split_at_checked(m)?;
        let (table, rest) = if table {
            let (table, rest) = rest.split_at_checked(TABLE_WORDS)?;
            let table: &[i8] = bytemuck::try_cast_slice(table).ok()?;
            (Some(<&[i8; 256]>::try_from(table).ok()?), rest)
        } else {
            (None, rest)
        };
        let as_i32 = |v: &'w [f32]| bytemuck::try_cast_slice::<f32, i32>(v).ok();
        let parts = LayerWords {
            weights,
            bias: as_i32(bias)?,
            multiplier: as_i32(multiplier)?,
            shift: as_i32(shift)?,
            table,
        };
        Some((parts, rest))
    }

    /// Params of the tensor the layer hands on: `output` for identity and
    /// relu (and without a `table`), the fixed ones for sigmoid and tanh.
    pub fn activated(&self, table: bool) -> QuantParams {
        match self.activation {
            Activation::Sigmoid if table => SIGMOID_OUTPUT,
            Activation::Tanh if table => TANH_OUTPUT,
            _ => self.output,
        }
    }

    /// The fully connected part's clamp range.
    fn act_range(&self) -> (i8, i8) {
        match self.activation {
            Activation::Relu => (self.output.zero_point, 127),
            _ => (-128, 127),
        }
    }
}

/// One layer's stored words, split.
struct LayerWords<'w> {
    /// The weights, padded to whole words.
    weights: &'w [f32],
    bias: &'w [i32],
    multiplier: &'w [i32],
    shift: &'w [i32],
    /// A sigmoid or tanh layer's table, indexed by `q as u8`.
    table: Option<&'w [i8; 256]>,
}

/// What [`QNetwork::layers`] reports for one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QLayerInfo {
    /// Width of the layer's input.
    pub inputs: usize,
    /// Width of the layer's output.
    pub outputs: usize,
    /// Activation applied to the output.
    pub activation: Activation,
    /// Params of the tensor the fully connected part writes (as stored).
    pub output: QuantParams,
    /// Params of the tensor the layer hands on (`output`, or the fixed
    /// sigmoid and tanh params of a layer with a table).
    pub activated: QuantParams,
    /// Whether the file stores the layer's sigmoid or tanh table (else
    /// the activation, if sigmoid or tanh, runs in f32 after the pass).
    pub table: bool,
    /// One multiplier per output (else one for the layer).
    pub per_channel: bool,
}

/// The layers of an int8 network: up to [`crate::network::MAX_LAYERS`], kept inline.
pub type QLayers = LayerList<QLayer>;

impl ListedLayer for QLayer {
    const EMPTY: Self = QLayer::EMPTY;

    fn inputs(&self) -> u16 {
        self.inputs
    }

    fn outputs(&self) -> u16 {
        self.outputs
    }
}

/// Metadata of an int8 network file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QNetworkSpec {
    /// Dimension of a latent code.
    pub latent: u16,
    /// Dimension of a data point.
    pub data: u16,
    /// How the f32 input is quantized on entry.
    pub input: QuantParams,
    /// Which `MultiplyByQuantizedMultiplier` every layer applies.
    pub rounding: Rounding,
    /// The layers, input to output.
    pub layers: QLayers,
    /// The prior over latent codes.
    pub prior: Prior,
    /// How the last layer's sigmoid or tanh is computed.
    pub final_activation: FinalActivation,
}

impl QNetworkSpec {
    /// Whether layer `index` stores an activation table: a sigmoid or tanh
    /// layer, but the last one under [`FinalActivation::F32`].
    pub fn has_table(&self, index: usize) -> bool {
        let layers = self.layers.as_slice();
        let f32_last = self.final_activation == FinalActivation::F32 && index + 1 == layers.len();
        layers.get(index).is_some_and(QLayer::is_saturating) && !f32_last
    }

    /// The layers with whether each stores a table.
    fn tabled(&self) -> impl Iterator<Item = (&QLayer, bool)> + '_ {
        let layers = self.layers.as_slice();
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l, self.has_table(i)))
    }

    /// 4-byte words of the layers (`None` past `usize`).
    pub fn layer_words(&self) -> Option<usize> {
        self.tabled()
            .try_fold(0usize, |acc, (l, table)| acc.checked_add(l.words(table)))
    }
}

/// Two int8 activation buffers of `N` values each (`2 N` bytes), 4-byte
/// aligned, for a pass of a [`QNetwork`].
#[derive(Debug, Clone)]
pub struct QScratch<const N: usize> {
    a: Buffer<N>,
    b: Buffer<N>,
}

#[derive(Debug, Clone)]
#[repr(C, align(4))]
struct Buffer<const N: usize>([i8; N]);

impl<const N: usize> QScratch<N> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Self {
            a: Buffer([0; N]),
            b: Buffer([0; N]),
        }
    }

    /// Bytes the two buffers hold.
    pub const BYTES: usize = 2 * N;
}

impl<const N: usize> Default for QScratch<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// An int8 decoder or encoder borrowed from a model file.
#[derive(Debug, Clone, Copy)]
pub struct QNetwork<'a> {
    header: Header,
    spec: QNetworkSpec,
    /// The layers' words (weights, biases, multipliers, shifts), in file order.
    words: &'a [f32],
    prior: LatentPrior<'a>,
    /// Widest tensor of a pass (input and every layer's output).
    hidden_width: usize,
}

impl<'a> QNetwork<'a> {
    /// Parses and validates an int8 decoder or encoder file without copying
    /// its weights (4-byte aligned, see [`crate::Aligned`]).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_file(format::open(bytes)?)
    }

    /// Parses a checked file (see [`format::File`]).
    pub(crate) fn from_file(file: format::File<'a>) -> Result<Self, Error> {
        let (header, spec, data) = file.read_body::<QNetworkSpec>(
            &[ModelKind::DecoderInt8, ModelKind::EncoderInt8],
            SCHEMA_KEY,
        )?;
        Self::from_parts(header, header.kind, spec, data)
    }

    /// Validates an int8 network (`kind` int8 decoder or int8 encoder)
    /// whose spec and words were read from a file (its own, or a
    /// detector's).
    pub(crate) fn from_parts(
        header: Header,
        kind: ModelKind,
        spec: QNetworkSpec,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        let (words, prior, hidden_width) = validate(kind, &spec, data)?;
        Ok(Self {
            header: Header { kind, ..header },
            spec,
            words,
            prior,
            hidden_width,
        })
    }

    /// The checked header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Int8 decoder or int8 encoder, also for a network inside a detector
    /// file.
    pub fn kind(&self) -> ModelKind {
        self.header.kind
    }

    /// The network's metadata.
    pub fn spec(&self) -> QNetworkSpec {
        self.spec
    }

    /// The stored layers.
    pub fn spec_layers(&self) -> &[QLayer] {
        self.spec.layers.as_slice()
    }

    /// The layers, input to output.
    pub fn layers(&self) -> impl Iterator<Item = QLayerInfo> + '_ {
        self.spec.tabled().map(|(l, table)| QLayerInfo {
            inputs: usize::from(l.inputs),
            outputs: usize::from(l.outputs),
            activation: l.activation,
            output: l.output,
            activated: l.activated(table),
            per_channel: l.per_channel,
            table,
        })
    }

    /// The activation table of layer `index` (input to output, from 0), as
    /// stored: `Some` for a sigmoid or tanh layer, `None` otherwise or past
    /// the last layer.
    pub fn activation_table(&self, index: usize) -> Option<&'a [i8; 256]> {
        let mut words = self.words;
        for (before, table) in self.spec.tabled().take(index) {
            words = before.split(words, table)?.1;
        }
        let layer = self.spec_layers().get(index)?;
        layer.split(words, self.spec.has_table(index))?.0.table
    }

    /// Width of the first layer's input.
    pub fn input_dim(&self) -> usize {
        self.spec_layers()
            .first()
            .map_or(0, |l| usize::from(l.inputs))
    }

    /// Width of the last layer's output.
    pub fn output_dim(&self) -> usize {
        self.spec_layers()
            .last()
            .map_or(0, |l| usize::from(l.outputs))
    }

    /// Dimension of a latent code.
    pub fn latent_dim(&self) -> usize {
        usize::from(self.spec.latent)
    }

    /// The widest tensor of a pass (the input and every layer's output),
    /// the width [`QScratch`] must hold.
    pub fn hidden_width(&self) -> usize {
        self.hidden_width
    }

    /// The width [`Self::sample`]'s [`QScratch`] must hold: also the f32
    /// latent code, 4 bytes a value.
    pub fn sample_width(&self) -> usize {
        self.hidden_width.max(self.latent_dim().saturating_mul(4))
    }

    /// Multiply-accumulates of one pass: Σ inputs × outputs.
    pub fn macs(&self) -> usize {
        self.spec_layers().iter().map(QLayer::macs).sum()
    }

    /// Bytes of the file's `data`: the layers' words and the prior's values.
    pub fn stored_bytes(&self) -> usize {
        self.stored_words().saturating_mul(4)
    }

    /// 4-byte words of the file's `data` (see [`Self::stored_bytes`]).
    pub fn stored_words(&self) -> usize {
        self.words.len()
            + self
                .prior
                .prior()
                .stored_values(self.latent_dim())
                .unwrap_or(0)
    }

    /// Params of the quantized input.
    pub fn input_params(&self) -> QuantParams {
        self.spec.input
    }

    /// Params of the last tensor (what [`Self::forward`] dequantizes).
    pub fn output_params(&self) -> QuantParams {
        let last = self.spec_layers().len().wrapping_sub(1);
        self.spec_layers()
            .last()
            .map_or(self.spec.input, |l| l.activated(self.spec.has_table(last)))
    }

    /// The activation [`Self::forward`] applies in f32 after dequantizing:
    /// the last layer's under [`FinalActivation::F32`], else identity.
    pub fn f32_activation(&self) -> Activation {
        match (self.spec.final_activation, self.spec_layers().last()) {
            (FinalActivation::F32, Some(last)) => last.activation,
            _ => Activation::Identity,
        }
    }

    /// How the last layer's sigmoid or tanh is computed.
    pub fn final_activation(&self) -> FinalActivation {
        self.spec.final_activation
    }

    /// `output = f32_activation(dequantize(q))` for the pass's last tensor
    /// `y` (the ends of [`Self::forward`], as [`Self::input_params`]'
    /// `quantize` is its start).
    pub fn finish(&self, y: &[i8], output: &mut [f32]) {
        let params = self.output_params();
        let pairs = output.iter_mut().zip(y);
        match self.f32_activation() {
            // The table's (and linear) outputs: a loop with no branch inside.
            Activation::Identity => pairs.for_each(|(o, &q)| *o = params.dequantize(q)),
            activation => pairs.for_each(|(o, &q)| *o = activation.apply(params.dequantize(q))),
        }
    }

    /// The multiplier rounding of every layer.
    pub fn rounding(&self) -> Rounding {
        self.spec.rounding
    }

    /// The latent prior (possibly [`Prior::None`]).
    pub fn prior(&self) -> &LatentPrior<'a> {
        &self.prior
    }

    fn check_width<const N: usize>(&self) -> Result<(), Error> {
        if self.hidden_width > N {
            return Err(Error::TooWide {
                width: self.hidden_width,
                max: N,
            });
        }
        Ok(())
    }

    /// `output = dequantize(network(quantize(input)))` with the numerics of
    /// the module docs.
    ///
    /// Errors: `DimensionMismatch` for a wrong `input` or `output` length,
    /// `NonFiniteInput`, `TooWide` if `N` is under [`Self::hidden_width`].
    pub fn forward<const N: usize>(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut QScratch<N>,
    ) -> Result<(), Error> {
        self.check_width::<N>()?;
        let QScratch { a, b } = scratch;
        self.forward_in(input, output, &mut a.0, &mut b.0)
    }

    /// [`Self::forward`] in two caller buffers of at least
    /// [`Self::hidden_width`] bytes each (`TooWide` otherwise): what
    /// [`crate::AnyModel::eval`] runs in an f32 [`crate::Scratch`]'s memory.
    pub fn forward_in(
        &self,
        input: &[f32],
        output: &mut [f32],
        a: &mut [i8],
        b: &mut [i8],
    ) -> Result<(), Error> {
        check_len(self.input_dim(), input.len())?;
        check_len(self.output_dim(), output.len())?;
        if input.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let room = a.len().min(b.len());
        if self.hidden_width > room {
            return Err(Error::TooWide {
                width: self.hidden_width,
                max: room,
            });
        }
        let x = b.get_mut(..input.len()).ok_or(INTERNAL)?;
        let params = self.spec.input;
        for (q, &v) in x.iter_mut().zip(input) {
            *q = params.quantize(v);
        }
        let y = self.run(b, a)?;
        self.finish(y, output);
        Ok(())
    }

    /// The int8 pass proper: `output = network(input)` on int8 tensors
    /// (`input` with [`Self::input_params`], `output` with
    /// [`Self::output_params`]).
    ///
    /// Errors: `DimensionMismatch` for a wrong length, `TooWide` if `N` is
    /// under [`Self::hidden_width`].
    pub fn forward_i8<const N: usize>(
        &self,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut QScratch<N>,
    ) -> Result<(), Error> {
        let QScratch { a, b } = scratch;
        self.forward_i8_in(input, output, &mut a.0, &mut b.0)
    }

    /// [`Self::forward_i8`] in two caller buffers of at least
    /// [`Self::hidden_width`] bytes each (`TooWide` otherwise), for callers
    /// whose buffers are sized at run time (the C API).
    pub fn forward_i8_in(
        &self,
        input: &[i8],
        output: &mut [i8],
        a: &mut [i8],
        b: &mut [i8],
    ) -> Result<(), Error> {
        check_len(self.input_dim(), input.len())?;
        check_len(self.output_dim(), output.len())?;
        let room = a.len().min(b.len());
        if self.hidden_width > room {
            return Err(Error::TooWide {
                width: self.hidden_width,
                max: room,
            });
        }
        b.get_mut(..input.len())
            .ok_or(INTERNAL)?
            .copy_from_slice(input);
        let y = self.run(b, a)?;
        if y.len() != output.len() {
            return Err(INTERNAL);
        }
        output.copy_from_slice(y);
        Ok(())
    }

    /// Draws a latent code from the prior exactly as an f32 decoder does
    /// (`prior().sample(rng, z)`, the same code and the same draws), then
    /// runs [`Self::forward`] on it into `out`.
    ///
    /// Errors: `DimensionMismatch` for a wrong `out` length, `WrongKind`
    /// for an encoder, `TooWide` if `N` is under [`Self::sample_width`],
    /// `NoPrior`; nothing is drawn from `rng` then.
    pub fn sample<R: RngCore + ?Sized, const N: usize>(
        &self,
        rng: &mut R,
        out: &mut [f32],
        scratch: &mut QScratch<N>,
    ) -> Result<(), Error> {
        let QScratch { a, b } = scratch;
        self.sample_in(rng, out, &mut a.0, &mut b.0)
    }

    /// [`Self::sample`] in two caller buffers of at least
    /// [`Self::sample_width`] bytes each (`TooWide` otherwise), the first
    /// 4-byte aligned (`Misaligned` otherwise: it holds the f32 latent
    /// code), for callers whose buffers are sized at run time (the C API).
    pub fn sample_in<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f32],
        a: &mut [i8],
        b: &mut [i8],
    ) -> Result<(), Error> {
        check_len(self.output_dim(), out.len())?;
        if self.kind() != ModelKind::DecoderInt8 {
            return Err(Error::WrongKind {
                expected: ModelKind::DecoderInt8,
                found: self.kind(),
            });
        }
        let width = self.sample_width();
        let room = a.len().min(b.len());
        if width > room {
            return Err(Error::TooWide { width, max: room });
        }
        let latent = self.latent_dim();
        let z_bytes = a.get_mut(..latent.saturating_mul(4)).ok_or(INTERNAL)?;
        let z: &mut [f32] = bytemuck::try_cast_slice_mut(z_bytes).map_err(|_| Error::Misaligned)?;
        self.prior.sample(rng, z)?;
        let x = b.get_mut(..latent).ok_or(INTERNAL)?;
        let params = self.spec.input;
        for (q, &v) in x.iter_mut().zip(z.iter()) {
            *q = params.quantize(v);
        }
        let y = self.run(b, a)?;
        self.finish(y, out);
        Ok(())
    }

    /// Runs every layer: the input is the first [`Self::input_dim`] values
    /// of `src`; returns the last tensor (in `src` or `dst`).
    fn run<'s>(&self, mut src: &'s mut [i8], mut dst: &'s mut [i8]) -> Result<&'s [i8], Error> {
        let mut width = self.input_dim();
        for layer in self.layer_data() {
            let layer = layer?;
            if width != layer.inputs {
                return Err(INTERNAL);
            }
            let x = src.get(..layer.inputs).ok_or(INTERNAL)?;
            let y = dst.get_mut(..layer.outputs).ok_or(INTERNAL)?;
            quant::dense_i8(
                x,
                layer.input_zero_point,
                layer.weights,
                Some(layer.bias),
                &layer.requant,
                y,
            )?;
            if let Some(table) = layer.table {
                for q in y.iter_mut() {
                    *q = table[usize::from(*q as u8)];
                }
            }
            width = layer.outputs;
            core::mem::swap(&mut src, &mut dst);
        }
        let src: &'s [i8] = src;
        src.get(..width).ok_or(INTERNAL)
    }

    /// Each layer's stored arrays and arithmetic, input to output, as the
    /// pass runs them: for hosts that compute the same integers in another
    /// schedule. (An error only where the parse-time checks were
    /// bypassed: unreachable.)
    pub fn layer_data(&self) -> impl Iterator<Item = Result<QLayerData<'a>, Error>> + '_ {
        let mut words = self.words;
        let mut params = self.spec.input;
        self.spec.tabled().map(move |(layer, table)| {
            let (parts, rest) = layer.split(words, table).ok_or(INTERNAL)?;
            words = rest;
            let (act_min, act_max) = layer.act_range();
            let data = QLayerData {
                inputs: usize::from(layer.inputs),
                outputs: usize::from(layer.outputs),
                input_zero_point: i32::from(params.zero_point),
                weights: bytemuck::try_cast_slice(parts.weights).map_err(|_| INTERNAL)?,
                bias: parts.bias,
                requant: Requant {
                    multiplier: parts.multiplier,
                    shift: parts.shift,
                    output_zero_point: i32::from(layer.output.zero_point),
                    act_min,
                    act_max,
                    rounding: self.spec.rounding,
                },
                table: parts.table,
            };
            params = layer.activated(table);
            Ok(data)
        })
    }
}

/// One layer of an int8 network as [`QNetwork::layer_data`] gives it: `y[o]
/// = table(requant.output(o, bias[o] + Σ_j w[o][j] (x[j] -
/// input_zero_point)))`, the sum in wrapping `i32`.
#[derive(Debug, Clone, Copy)]
pub struct QLayerData<'a> {
    /// Width of the input.
    pub inputs: usize,
    /// Width of the output.
    pub outputs: usize,
    /// The input tensor's zero point.
    pub input_zero_point: i32,
    /// The weights in the packed layout ([`quant::kernel`];
    /// `quant::kernel::unpack` gives them row-major).
    pub weights: &'a [u32],
    /// One `i32` per output.
    pub bias: &'a [i32],
    /// How a sum becomes an int8 output.
    pub requant: Requant<'a>,
    /// A sigmoid or tanh layer's table, indexed by `q as u8`.
    pub table: Option<&'a [i8; 256]>,
}

/// Checks a spec against its data; returns the layers' words, the prior and
/// the widest tensor.
fn validate<'a>(
    kind: ModelKind,
    spec: &QNetworkSpec,
    data: &'a [f32],
) -> Result<(&'a [f32], LatentPrior<'a>, usize), Error> {
    let (input, output) = match kind {
        ModelKind::DecoderInt8 => (spec.latent, spec.data),
        ModelKind::EncoderInt8 => (spec.data, spec.latent),
        _ => return Err(Error::InvalidShape(Shape::PartKind)),
    };
    let layers = spec.layers.between(input, output)?;
    let mut words = 0usize;
    let mut hidden_width = usize::from(input);
    for (i, layer) in layers.iter().enumerate() {
        if layer.inputs == 0 || layer.outputs == 0 {
            return Err(Error::InvalidShape(Shape::Empty));
        }
        if let Some(next) = layers.get(i + 1)
            && next.inputs != layer.outputs
        {
            return Err(Error::InvalidShape(Shape::LayerWidths));
        }
        hidden_width = hidden_width.max(usize::from(layer.outputs));
        let table = spec.has_table(i);
        words = words.checked_add(layer.words(table)).ok_or(DATA_LENGTH)?;
    }
    let latent = usize::from(spec.latent);
    let prior_values = spec.prior.stored_values(latent).ok_or(DATA_LENGTH)?;
    if words.checked_add(prior_values) != Some(data.len()) {
        return Err(DATA_LENGTH);
    }
    let (layer_words, prior_params) = data.split_at_checked(words).ok_or(DATA_LENGTH)?;
    // Every count matches the data: now the values, each read once.
    spec.input.check()?;
    if spec.final_activation == FinalActivation::F32
        && !layers.last().is_some_and(QLayer::is_saturating)
    {
        return Err(Error::ParameterOutOfRange);
    }
    let mut rest = layer_words;
    for (i, layer) in layers.iter().enumerate() {
        layer.output.check()?;
        if layer.activation == Activation::LeakyRelu {
            return Err(Error::ParameterOutOfRange);
        }
        // Every int8 value of a table is a valid output: nothing to check.
        let (parts, tail) = layer.split(rest, spec.has_table(i)).ok_or(DATA_LENGTH)?;
        rest = tail;
        if parts.multiplier.iter().any(|&v| v < 0)
            || parts.shift.iter().any(|&s| !(-31..=30).contains(&s))
        {
            return Err(Error::ParameterOutOfRange);
        }
    }
    let prior = LatentPrior::from_parts(spec.prior, latent, prior_params)?;
    Ok((layer_words, prior, hidden_width))
}

#[cfg(feature = "alloc")]
mod encode;
#[cfg(feature = "alloc")]
pub use encode::{QLayerParams, QNetworkParams};

#[cfg(test)]
mod tests;
