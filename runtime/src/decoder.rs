//! Fixed-size MLP decoders (latent code -> data point) and encoders (data
//! point -> latent code), read in place from a model file, with the latent
//! prior a decoder samples codes from.
//!
//! One body serves two kinds: [`ModelKind::Decoder`] and
//! [`ModelKind::Encoder`] (for a VAE, its mean head only), so that a device
//! can generate, and also compute reconstruction errors
//! `|x - decode(encode(x))|`. The spec ([`NetworkSpec`], postcard):
//!
//! ```text
//! latent  u16        dimension of a latent code
//! data    u16        dimension of a data point
//! layers  seq        count (varint), then per layer:
//!                      inputs u16, outputs u16,
//!                      activation applied after it: identity | relu |
//!                      leaky_relu (slope 0.01) | tanh | sigmoid
//! prior   enum       none | gaussian | uniform | circle | ring { noise: f32 }
//!                    | mixture { components: u16 }   (see crate::prior)
//! ```
//!
//! A decoder's first layer takes `latent` inputs and its last gives `data`
//! outputs; an encoder's go from `data` to `latent`. Consecutive widths
//! must match, every width is at least one, and there are at most
//! [`MAX_LAYERS`] layers. The weights (`f32`, read in place):
//!
//! ```text
//! per layer, in order:  weight  outputs x inputs, row-major (PyTorch's
//!                               nn.Linear layout: y = W x + b)
//!                       bias    outputs
//! then the prior:       mixture only: weights K, means K x latent,
//!                       Cholesky factors K x latent x latent
//! ```
//!
//! # Numerics
//!
//! Each output of a layer is `act(b_o + W[o][0] x[0] + W[o][1] x[1] + ...)`,
//! accumulated in `f32` in ascending input index starting from the bias,
//! one rounding per multiply and per add (no fused multiply-add). The
//! activations: `relu(x) = x if x > 0 else 0`, `leaky_relu(x) = x if x > 0
//! else 0.01 x`, `tanh` from libm, `sigmoid` computed stably
//! ([`crate::math::sigmoid`]); with the `micromath` feature tanh and
//! sigmoid use micromath's approximate exp.
//!
//! # Memory
//!
//! No heap and no copies of the weights: a forward pass ping-pongs between
//! two buffers of `MAX_WIDTH` values ([`Scratch`]), which the caller places
//! on the stack or in a static. The input and the output are the caller's
//! slices, so only the hidden activations (and, to sample, the latent code)
//! need to fit: the width the buffers must hold is [`Decoder::max_width`],
//! and parsing rejects a model that needs more with [`Error::TooWide`].
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use tinygen_runtime::decoder::{Activation, DecoderParams, LayerParams, PriorParams, Role, Scratch};
//! use tinygen_runtime::rand_core::SeedableRng;
//! use tinygen_runtime::{Aligned, Decoder, Xoshiro128PlusPlus};
//!
//! // 2 -> 3 (relu) -> 1 (sigmoid), encoded on the host...
//! let bytes = DecoderParams {
//!     role: Role::Decoder,
//!     latent: 2,
//!     layers: vec![
//!         LayerParams { inputs: 2, outputs: 3, activation: Activation::Relu,
//!                       weight: &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], bias: &[0.0, 0.0, -1.0] },
//!         LayerParams { inputs: 3, outputs: 1, activation: Activation::Sigmoid,
//!                       weight: &[1.0, -1.0, 0.5], bias: &[0.0] },
//!     ],
//!     prior: PriorParams::Gaussian,
//! }
//! .encode()
//! .unwrap();
//! // ...read in place on the device (4-byte aligned, like every model).
//! let mut flash = Aligned([0u8; 256]);
//! flash.0[..bytes.len()].copy_from_slice(&bytes);
//! let decoder = Decoder::<8>::from_bytes(&flash.0[..bytes.len()]).unwrap();
//! let mut scratch = Scratch::new();
//! let mut out = [0.0f32];
//! decoder.decode(&[2.0, 1.0], &mut out, &mut scratch).unwrap();
//! // hidden = relu([2, 1, 2]) = [2, 1, 2]; output = sigmoid(2 - 1 + 1) = sigmoid(2)
//! // (micromath's approximate exp makes it about 1e-3 off)
//! let tolerance = if cfg!(feature = "micromath") { 2e-3 } else { 1e-6 };
//! assert!((out[0] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < tolerance);
//!
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(42);
//! decoder.sample(&mut rng, &mut out, &mut scratch).unwrap();
//! # }
//! ```

use core::fmt;

use rand_core::RngCore;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::format::{self, Header, ModelKind};
use crate::math;
use crate::prior::{LatentPrior, Prior};

/// Largest number of layers a network file may have.
pub const MAX_LAYERS: usize = 16;

/// Schema key of the network body, shared by decoders and encoders.
pub const SCHEMA_KEY: u32 = format::schema_key(
    "mlp/1 spec{latent:u16 data:u16 layers:seq{inputs:u16 outputs:u16 \
     activation:{identity,relu,leaky_relu(0.01),tanh,sigmoid}} \
     prior:{none,gaussian,uniform,circle,ring{noise:f32},mixture{components:u16}}} \
     data:f32[per layer: weight outputs*inputs row-major, bias outputs; \
     if mixture: weights K, means K*latent, cholesky K*latent*latent lower row-major]",
);

/// The activation applied after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// `x`.
    Identity,
    /// `x if x > 0 else 0`.
    Relu,
    /// `x if x > 0 else 0.01 x` (slope [`Activation::LEAKY_RELU_SLOPE`]).
    LeakyRelu,
    /// Hyperbolic tangent ([`crate::math::tanh`]).
    Tanh,
    /// Logistic sigmoid, computed stably ([`crate::math::sigmoid`]).
    Sigmoid,
}

impl Activation {
    /// Slope of [`Activation::LeakyRelu`] for negative inputs (PyTorch's default).
    pub const LEAKY_RELU_SLOPE: f32 = 0.01;

    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    Self::LEAKY_RELU_SLOPE * x
                }
            }
            Activation::Tanh => math::tanh(x),
            Activation::Sigmoid => math::sigmoid(x),
        }
    }

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// One fully connected layer: `y = act(W x + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layer {
    /// Width of the layer's input.
    pub inputs: u16,
    /// Width of the layer's output.
    pub outputs: u16,
    /// Activation applied to the output.
    pub activation: Activation,
}

impl Layer {
    const EMPTY: Layer = Layer {
        inputs: 0,
        outputs: 0,
        activation: Activation::Identity,
    };

    /// Multiply-accumulates of one pass: `inputs * outputs`.
    pub fn macs(&self) -> usize {
        usize::from(self.inputs) * usize::from(self.outputs)
    }

    /// Stored values: the weight matrix and the bias.
    pub fn parameters(&self) -> usize {
        self.macs() + usize::from(self.outputs)
    }
}

/// The layers of a network: up to [`MAX_LAYERS`], kept inline (no heap).
///
/// Encoded as a postcard sequence (a varint count, then each [`Layer`]). A
/// decoded list may say it has more than [`MAX_LAYERS`] layers (then only
/// the first ones are kept and parsing rejects the file with
/// [`Error::TooManyLayers`]).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layers {
    layers: [Layer; MAX_LAYERS],
    /// Number of layers in the file, possibly more than `MAX_LAYERS`.
    count: usize,
}

impl Layers {
    /// The layers, or `TooManyLayers` if there are more than [`MAX_LAYERS`].
    pub fn new(layers: &[Layer]) -> Result<Self, Error> {
        let mut out = Layers {
            layers: [Layer::EMPTY; MAX_LAYERS],
            count: layers.len(),
        };
        if layers.len() > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                layers: layers.len(),
                max: MAX_LAYERS,
            });
        }
        for (slot, layer) in out.layers.iter_mut().zip(layers) {
            *slot = *layer;
        }
        Ok(out)
    }

    /// The layers kept (all of them when there are at most [`MAX_LAYERS`]).
    pub fn as_slice(&self) -> &[Layer] {
        self.layers.get(..self.count).unwrap_or(&self.layers)
    }

    /// Number of layers the list declared.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Serialize for Layers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let layers = self.as_slice();
        let mut seq = serializer.serialize_seq(Some(layers.len()))?;
        for layer in layers {
            seq.serialize_element(layer)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Layers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LayersVisitor;

        impl<'de> Visitor<'de> for LayersVisitor {
            type Value = Layers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of layers")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Layers, A::Error> {
                let mut layers = Layers {
                    layers: [Layer::EMPTY; MAX_LAYERS],
                    count: 0,
                };
                // Read every element (so the rest of the body stays in
                // step), keep the first MAX_LAYERS, count them all.
                while let Some(layer) = seq.next_element::<Layer>()? {
                    if let Some(slot) = layers.layers.get_mut(layers.count) {
                        *slot = layer;
                    }
                    layers.count = layers.count.saturating_add(1);
                }
                Ok(layers)
            }
        }

        deserializer.deserialize_seq(LayersVisitor)
    }
}

/// Metadata of a network file (decoder or encoder).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NetworkSpec {
    /// Dimension of a latent code.
    pub latent: u16,
    /// Dimension of a data point.
    pub data: u16,
    /// The layers, input to output.
    pub layers: Layers,
    /// The prior over latent codes.
    pub prior: Prior,
}

impl NetworkSpec {
    /// Number of f32 values a file stores for this network (weights, biases
    /// and the prior's parameters); `None` if it overflows or the prior is
    /// invalid for the latent dimension.
    pub fn stored_values(&self) -> Option<usize> {
        let layers = self
            .layers
            .as_slice()
            .iter()
            .try_fold(0usize, |n, l| n.checked_add(l.parameters()))?;
        layers.checked_add(self.prior.stored_values(usize::from(self.latent))?)
    }
}

/// Two activation buffers of `N` values each, for a forward pass.
///
/// `N` is the largest width the caller supports, fixed at compile time;
/// the buffers take `8 N` bytes, on the stack or in a static.
#[derive(Debug, Clone)]
pub struct Scratch<const N: usize> {
    a: [f32; N],
    b: [f32; N],
}

impl<const N: usize> Scratch<N> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Self {
            a: [0.0; N],
            b: [0.0; N],
        }
    }

    /// Bytes the two buffers take.
    pub const BYTES: usize = 2 * N * core::mem::size_of::<f32>();
}

impl<const N: usize> Default for Scratch<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A decoder or encoder network borrowed from a model file, with no bound
/// on its width: [`Network::forward`] checks the caller's buffers at each
/// call. [`Decoder`] and [`Encoder`] check them once, at parse time.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    header: Header,
    spec: NetworkSpec,
    /// The layers' weights and biases, in file order.
    weights: &'a [f32],
    prior: LatentPrior<'a>,
    /// Widest hidden activation (0 for a single layer).
    hidden_width: usize,
}

impl<'a> Network<'a> {
    /// Parses and validates a decoder or encoder file without copying its
    /// weights (4-byte aligned, see [`crate::Aligned`]).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse(bytes, &[ModelKind::Decoder, ModelKind::Encoder])
    }

    fn parse(bytes: &'a [u8], kinds: &[ModelKind]) -> Result<Self, Error> {
        let (header, spec, data) = format::read_body::<NetworkSpec>(bytes, kinds)?;
        Self::from_parts(header, header.kind, spec, data)
    }

    /// Validates a network (`kind` decoder or encoder) whose spec and
    /// weights were read from a file (its own, or a detector's).
    pub(crate) fn from_parts(
        header: Header,
        kind: ModelKind,
        spec: NetworkSpec,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        let (weights, prior, hidden_width) = validate(kind, &spec, data)?;
        Ok(Self {
            header,
            spec,
            weights,
            prior,
            hidden_width,
        })
    }

    /// Decoder or encoder.
    pub fn kind(&self) -> ModelKind {
        self.header.kind
    }

    /// The checked file header (including its CRC).
    pub fn header(&self) -> Header {
        self.header
    }

    /// The network's metadata.
    pub fn spec(&self) -> NetworkSpec {
        self.spec
    }

    /// The layers, input to output.
    pub fn layers(&self) -> &[Layer] {
        self.spec.layers.as_slice()
    }

    /// The latent prior (possibly [`Prior::None`]).
    pub fn prior(&self) -> &LatentPrior<'a> {
        &self.prior
    }

    /// Width of the first layer's input.
    pub fn input_dim(&self) -> usize {
        self.layers().first().map_or(0, |l| usize::from(l.inputs))
    }

    /// Width of the last layer's output.
    pub fn output_dim(&self) -> usize {
        self.layers().last().map_or(0, |l| usize::from(l.outputs))
    }

    /// Dimension of a latent code.
    pub fn latent_dim(&self) -> usize {
        usize::from(self.spec.latent)
    }

    /// Widest hidden activation (every layer's output but the last), the
    /// width [`Network::forward`]'s buffers must hold; 0 for one layer.
    pub fn hidden_width(&self) -> usize {
        self.hidden_width
    }

    /// Number of weights and biases (the prior's parameters excluded).
    pub fn parameters(&self) -> usize {
        self.weights.len()
    }

    /// Number of `f32` values in the file: [`Self::parameters`] plus the prior's.
    pub fn stored_values(&self) -> usize {
        self.weights.len()
            + self
                .prior
                .prior()
                .stored_values(self.latent_dim())
                .unwrap_or(0)
    }

    /// Multiply-accumulates of one forward pass.
    pub fn macs(&self) -> usize {
        self.layers().iter().map(Layer::macs).sum()
    }

    /// Computes `output = network(input)` with the numerics of the module
    /// docs, using `scratch` for the hidden activations.
    ///
    /// Errors: `DimensionMismatch` for a wrong `input` or `output` length,
    /// `NonFiniteInput`, `TooWide` if the hidden layers do not fit in `N`.
    pub fn forward<const N: usize>(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut Scratch<N>,
    ) -> Result<(), Error> {
        check_len(self.input_dim(), input.len())?;
        check_len(self.output_dim(), output.len())?;
        if input.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        if self.hidden_width > N {
            return Err(Error::TooWide {
                width: self.hidden_width,
                max: N,
            });
        }
        self.run(Some(input), output, &mut scratch.a, &mut scratch.b)
    }

    /// The forward pass proper: the input is `input`, or when `None`, the
    /// first values of `b`. Lengths are checked by the callers.
    fn run(
        &self,
        input: Option<&[f32]>,
        output: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
    ) -> Result<(), Error> {
        // The current activation lives in `src`; the next goes to `dst`.
        let (mut src, mut dst) = (b, a);
        let mut weights = self.weights;
        let layers = self.layers();
        for (i, layer) in layers.iter().enumerate() {
            let (n_in, n_out) = (usize::from(layer.inputs), usize::from(layer.outputs));
            // Lengths were validated at parse time: the errors are unreachable.
            let (w, rest) = weights
                .split_at_checked(layer.macs())
                .ok_or(Error::InvalidShape)?;
            let (bias, rest) = rest.split_at_checked(n_out).ok_or(Error::InvalidShape)?;
            weights = rest;
            let x: &[f32] = match (i, input) {
                (0, Some(input)) => input,
                _ => src.get(..n_in).ok_or(Error::InvalidShape)?,
            };
            if i + 1 == layers.len() {
                let y = output.get_mut(..n_out).ok_or(Error::InvalidShape)?;
                dense(w, bias, x, y, layer.activation);
            } else {
                let y = dst.get_mut(..n_out).ok_or(Error::TooWide {
                    width: n_out,
                    max: src.len(),
                })?;
                dense(w, bias, x, y, layer.activation);
                core::mem::swap(&mut src, &mut dst);
            }
        }
        Ok(())
    }
}

/// `y[o] = act(b[o] + Σ_i w[o][i] x[i])`, summed in ascending `i` from the bias.
///
/// Four outputs are computed per pass over `x` (each input value is loaded
/// once for four rows, and the four sums are independent), each still
/// accumulated in ascending `i`: the same additions in the same order as one
/// row at a time, so the results are identical.
#[inline]
fn dense(w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], activation: Activation) {
    let n = x.len().max(1);
    let mut blocks = w.chunks_exact(4 * n);
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
            a0 += w0 * xi;
            a1 += w1 * xi;
            a2 += w2 * xi;
            a3 += w3 * xi;
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
            acc += wi * xi;
        }
        *slot = activation.apply(acc);
    }
}

fn check_len(expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::DimensionMismatch { expected, found })
    }
}

/// Checks a spec against its data; returns the layers' weights, the prior
/// and the widest hidden activation.
fn validate<'a>(
    kind: ModelKind,
    spec: &NetworkSpec,
    data: &'a [f32],
) -> Result<(&'a [f32], LatentPrior<'a>, usize), Error> {
    let count = spec.layers.count();
    if count > MAX_LAYERS {
        return Err(Error::TooManyLayers {
            layers: count,
            max: MAX_LAYERS,
        });
    }
    let layers = spec.layers.as_slice();
    let (first, last) = match (layers.first(), layers.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(Error::InvalidShape),
    };
    let (input, output) = match kind {
        ModelKind::Decoder => (spec.latent, spec.data),
        ModelKind::Encoder => (spec.data, spec.latent),
        _ => return Err(Error::InvalidShape),
    };
    if first.inputs != input || last.outputs != output {
        return Err(Error::InvalidShape);
    }
    let mut parameters = 0usize;
    let mut hidden_width = 0usize;
    for (i, layer) in layers.iter().enumerate() {
        if layer.inputs == 0 || layer.outputs == 0 {
            return Err(Error::InvalidShape);
        }
        if let Some(next) = layers.get(i + 1) {
            if next.inputs != layer.outputs {
                return Err(Error::InvalidShape);
            }
            hidden_width = hidden_width.max(usize::from(layer.outputs));
        }
        parameters = parameters
            .checked_add(layer.parameters())
            .ok_or(Error::InvalidShape)?;
    }
    let latent = usize::from(spec.latent);
    let prior_values = spec
        .prior
        .stored_values(latent)
        .ok_or(Error::InvalidShape)?;
    if parameters.checked_add(prior_values) != Some(data.len()) {
        return Err(Error::InvalidShape);
    }
    let (weights, prior_params) = data
        .split_at_checked(parameters)
        .ok_or(Error::InvalidShape)?;
    if weights.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFiniteParameter);
    }
    let prior = LatentPrior::from_parts(spec.prior, latent, prior_params)?;
    Ok((weights, prior, hidden_width))
}

/// A decoder (latent code -> data point) whose activations fit in buffers
/// of `MAX_WIDTH` values, checked once at parse time.
///
/// `MAX_WIDTH` must hold the latent code (to sample) and every hidden
/// activation; the output goes straight into the caller's slice. For an
/// MNIST VAE 20 -> 400 -> 784, `Decoder<'_, 400>` with a 3.2 KB [`Scratch`].
#[derive(Debug, Clone, Copy)]
pub struct Decoder<'a, const MAX_WIDTH: usize> {
    network: Network<'a>,
}

impl<'a, const MAX_WIDTH: usize> Decoder<'a, MAX_WIDTH> {
    /// Parses and validates a decoder file without copying its weights
    /// (4-byte aligned, see [`crate::Aligned`]); `TooWide` if
    /// [`Self::max_width`] exceeds `MAX_WIDTH`, `WrongKind` for an encoder.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let network = Network::parse(bytes, &[ModelKind::Decoder])?;
        let width = network.hidden_width.max(network.latent_dim());
        if width > MAX_WIDTH {
            return Err(Error::TooWide {
                width,
                max: MAX_WIDTH,
            });
        }
        Ok(Self { network })
    }

    /// The underlying network.
    pub fn network(&self) -> &Network<'a> {
        &self.network
    }

    /// Dimension of a latent code (the input of [`Self::decode`]).
    pub fn latent_dim(&self) -> usize {
        self.network.latent_dim()
    }

    /// Dimension of a generated data point.
    pub fn output_dim(&self) -> usize {
        self.network.output_dim()
    }

    /// The width the scratch buffers must hold: the latent dimension and
    /// every hidden layer's width, whichever is largest.
    pub fn max_width(&self) -> usize {
        self.network.hidden_width.max(self.latent_dim())
    }

    /// The layers, latent to output.
    pub fn layers(&self) -> &[Layer] {
        self.network.layers()
    }

    /// Number of weights and biases (the prior's parameters excluded).
    pub fn parameters(&self) -> usize {
        self.network.parameters()
    }

    /// Multiply-accumulates of one decode.
    pub fn macs(&self) -> usize {
        self.network.macs()
    }

    /// The latent prior.
    pub fn prior(&self) -> &LatentPrior<'a> {
        self.network.prior()
    }

    /// Decodes the latent code `z` (length [`Self::latent_dim`]) into `out`
    /// (length [`Self::output_dim`]).
    ///
    /// Errors: `DimensionMismatch` for a wrong length, `NonFiniteInput`.
    pub fn decode(
        &self,
        z: &[f32],
        out: &mut [f32],
        scratch: &mut Scratch<MAX_WIDTH>,
    ) -> Result<(), Error> {
        self.network.forward(z, out, scratch)
    }

    /// Draws a latent code from the prior and decodes it into `out`: the
    /// same as `prior().sample(rng, z)` then `decode(z, out)`.
    ///
    /// Errors: `DimensionMismatch` for a wrong `out` length, `NoPrior`;
    /// nothing is drawn from `rng` then.
    pub fn sample<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f32],
        scratch: &mut Scratch<MAX_WIDTH>,
    ) -> Result<(), Error> {
        check_len(self.output_dim(), out.len())?;
        let latent = self.latent_dim();
        let z = scratch.b.get_mut(..latent).ok_or(Error::TooWide {
            width: latent,
            max: MAX_WIDTH,
        })?;
        self.network.prior.sample(rng, z)?;
        self.network.run(None, out, &mut scratch.a, &mut scratch.b)
    }
}

/// An encoder (data point -> latent code) whose hidden activations fit in
/// buffers of `MAX_WIDTH` values, checked once at parse time.
#[derive(Debug, Clone, Copy)]
pub struct Encoder<'a, const MAX_WIDTH: usize> {
    network: Network<'a>,
}

impl<'a, const MAX_WIDTH: usize> Encoder<'a, MAX_WIDTH> {
    /// Parses and validates an encoder file without copying its weights
    /// (4-byte aligned, see [`crate::Aligned`]); `TooWide` if
    /// [`Self::max_width`] exceeds `MAX_WIDTH`, `WrongKind` for a decoder.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let network = Network::parse(bytes, &[ModelKind::Encoder])?;
        if network.hidden_width > MAX_WIDTH {
            return Err(Error::TooWide {
                width: network.hidden_width,
                max: MAX_WIDTH,
            });
        }
        Ok(Self { network })
    }

    /// The underlying network.
    pub fn network(&self) -> &Network<'a> {
        &self.network
    }

    /// Dimension of a data point (the input of [`Self::encode`]).
    pub fn input_dim(&self) -> usize {
        self.network.input_dim()
    }

    /// Dimension of a latent code.
    pub fn latent_dim(&self) -> usize {
        self.network.latent_dim()
    }

    /// The width the scratch buffers must hold: the widest hidden layer.
    pub fn max_width(&self) -> usize {
        self.network.hidden_width
    }

    /// The layers, input to latent.
    pub fn layers(&self) -> &[Layer] {
        self.network.layers()
    }

    /// Number of weights and biases (the prior's parameters excluded).
    pub fn parameters(&self) -> usize {
        self.network.parameters()
    }

    /// Multiply-accumulates of one encode.
    pub fn macs(&self) -> usize {
        self.network.macs()
    }

    /// The latent prior stored with the encoder (often [`Prior::None`]).
    pub fn prior(&self) -> &LatentPrior<'a> {
        self.network.prior()
    }

    /// Encodes `x` (length [`Self::input_dim`]) into its latent code `z`
    /// (length [`Self::latent_dim`]).
    ///
    /// Errors: `DimensionMismatch` for a wrong length, `NonFiniteInput`.
    pub fn encode(
        &self,
        x: &[f32],
        z: &mut [f32],
        scratch: &mut Scratch<MAX_WIDTH>,
    ) -> Result<(), Error> {
        self.network.forward(x, z, scratch)
    }
}

#[cfg(feature = "alloc")]
pub use encode::{DecoderParams, LayerParams, PriorParams, Role};

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::{Activation, Layer, Layers, NetworkSpec, validate};
    use crate::Error;
    use crate::format::{self, ModelKind};
    use crate::prior::Prior;

    /// Which way a network maps.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Role {
        /// Latent code -> data point; written as [`ModelKind::Decoder`].
        Decoder,
        /// Data point -> latent code; written as [`ModelKind::Encoder`].
        Encoder,
    }

    /// One trained `nn.Linear` layer and the activation after it.
    #[derive(Debug, Clone, Copy)]
    pub struct LayerParams<'p> {
        /// Input width.
        pub inputs: usize,
        /// Output width.
        pub outputs: usize,
        /// Activation applied to the output.
        pub activation: Activation,
        /// Weight matrix, `outputs x inputs` row-major (PyTorch and candle's layout).
        pub weight: &'p [f32],
        /// Bias (length `outputs`).
        pub bias: &'p [f32],
    }

    /// A latent prior and its parameters.
    #[derive(Debug, Clone, Copy)]
    pub enum PriorParams<'p> {
        /// No prior (the network cannot sample).
        None,
        /// Standard normal.
        Gaussian,
        /// Uniform on (-1, 1]^d.
        Uniform,
        /// Filled unit disc (latent dimension 2).
        Circle,
        /// Noisy unit circle (latent dimension 2).
        Ring {
            /// Noise standard deviation per coordinate (finite, >= 0).
            noise: f32,
        },
        /// Gaussian mixture with full covariances.
        Mixture {
            /// Weights (K, positive; normalised to sum to one when written).
            weights: &'p [f64],
            /// Means, K x d row-major.
            means: &'p [f64],
            /// Lower-triangular Cholesky factors of the covariances,
            /// K x d x d row-major (zeros above the diagonal).
            cholesky: &'p [f64],
        },
    }

    /// A trained decoder or encoder, ready to encode as a model file.
    #[derive(Debug, Clone)]
    pub struct DecoderParams<'p> {
        /// Decoder or encoder.
        pub role: Role,
        /// Dimension of a latent code: the first layer's input for a
        /// decoder, the last layer's output for an encoder.
        pub latent: usize,
        /// The layers, input to output.
        pub layers: Vec<LayerParams<'p>>,
        /// The prior over latent codes.
        pub prior: PriorParams<'p>,
    }

    impl DecoderParams<'_> {
        /// Encodes the network as a complete `.tgm` file (header, body,
        /// CRC) of kind `decoder` or `encoder`.
        ///
        /// `InvalidParameters` unless the shapes are consistent (widths
        /// from 1 to 65535, consecutive widths equal, `latent` at the right
        /// end, weight and bias lengths, at most
        /// [`super::MAX_LAYERS`] layers, a 2-D latent for circle and ring
        /// priors, mixture lengths), every value is finite, mixture weights
        /// are positive, Cholesky factors are lower triangular and noise is
        /// not negative.
        pub fn encode(&self) -> Result<Vec<u8>, Error> {
            let (kind, spec, data) = self.stored()?;
            format::write(kind, &spec, &data)
        }

        /// The kind, spec and f32 values a file stores for this network.
        pub(crate) fn stored(&self) -> Result<(ModelKind, NetworkSpec, Vec<f32>), Error> {
            let bad = |_| Error::InvalidParameters;
            let width = |n: usize| u16::try_from(n).map_err(bad);
            let (first, last) = match (self.layers.first(), self.layers.last()) {
                (Some(first), Some(last)) => (first, last),
                _ => return Err(Error::InvalidParameters),
            };
            let (kind, data_dim) = match self.role {
                Role::Decoder => (ModelKind::Decoder, last.outputs),
                Role::Encoder => (ModelKind::Encoder, first.inputs),
            };
            let mut layers = Vec::with_capacity(self.layers.len());
            let mut data = Vec::new();
            for (i, layer) in self.layers.iter().enumerate() {
                let consistent = layer.inputs > 0
                    && layer.outputs > 0
                    && Some(layer.weight.len()) == layer.inputs.checked_mul(layer.outputs)
                    && layer.bias.len() == layer.outputs
                    && self
                        .layers
                        .get(i + 1)
                        .is_none_or(|next| next.inputs == layer.outputs);
                if !consistent {
                    return Err(Error::InvalidParameters);
                }
                layers.push(Layer {
                    inputs: width(layer.inputs)?,
                    outputs: width(layer.outputs)?,
                    activation: layer.activation,
                });
                data.extend_from_slice(layer.weight);
                data.extend_from_slice(layer.bias);
            }
            let prior = match self.prior {
                PriorParams::None => Prior::None,
                PriorParams::Gaussian => Prior::Gaussian,
                PriorParams::Uniform => Prior::Uniform,
                PriorParams::Circle => Prior::Circle,
                PriorParams::Ring { noise } => Prior::Ring { noise },
                PriorParams::Mixture {
                    weights,
                    means,
                    cholesky,
                } => {
                    let d = self.latent;
                    let k = weights.len();
                    if means.len() != k * d
                        || cholesky.len() != k * d * d
                        || weights.iter().any(|&w| !(w > 0.0 && w.is_finite()))
                    {
                        return Err(Error::InvalidParameters);
                    }
                    let total: f64 = weights.iter().sum();
                    data.extend(weights.iter().map(|&w| (w / total) as f32));
                    data.extend(means.iter().map(|&v| v as f32));
                    data.extend(cholesky.iter().map(|&v| v as f32));
                    Prior::Mixture {
                        components: u16::try_from(k).map_err(bad)?,
                    }
                }
            };
            let spec = NetworkSpec {
                latent: width(self.latent)?,
                data: width(data_dim)?,
                layers: Layers::new(&layers).map_err(|_| Error::InvalidParameters)?,
                prior,
            };
            // Exactly the runtime's checks, on exactly the values written.
            validate(kind, &spec, &data).map_err(|_| Error::InvalidParameters)?;
            Ok((kind, spec, data))
        }
    }
}

#[cfg(test)]
mod tests;
