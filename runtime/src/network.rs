//! MLP networks read in place from a model file: the spec (layers and
//! latent prior), its validation against the weights, and the forward pass.
//! [`crate::decoder`] wraps a network as a [`Decoder`](crate::Decoder) or an
//! [`Encoder`](crate::Encoder) whose buffers are sized at compile time.
//!
//! One body serves two kinds, [`ModelKind::Decoder`] (latent code -> data
//! point, with the prior to sample codes from) and [`ModelKind::Encoder`]
//! (data point -> latent code; for a VAE, its mean head). The bytes are
//! specified in `runtime/FORMAT.md`: a spec ([`NetworkSpec`]: latent and
//! data dimensions, up to [`MAX_LAYERS`] layers, a [`Prior`]), then per
//! layer its weight (outputs x inputs, row-major: PyTorch's `nn.Linear`
//! layout, `y = W x + b`) and bias, then a mixture prior's parameters.
//!
//! # Numerics
//!
//! Each output of a layer is `act(b_o + W[o][0] x[0] + W[o][1] x[1] + ...)`,
//! accumulated in `f32` in ascending input index starting from the bias,
//! each step `acc = fma(W[o][i], x[i], acc)`, IEEE's fused multiply-add
//! with one rounding ([`crate::math::mul_add`]; the kernel is in
//! `dense.rs`). The activations ([`Activation`]): `relu(x) = x if x >
//! 0 else 0`, `leaky_relu(x) = x if x > 0 else 0.01 x`, `tanh` from libm,
//! `sigmoid` computed stably ([`crate::math::sigmoid`]); with the
//! `micromath` feature tanh and sigmoid use micromath's approximate exp.
//!
//! # Memory
//!
//! No heap and no copies of the weights: a forward pass ping-pongs between
//! two buffers of `N` values ([`Scratch`]), which the caller places on the
//! stack or in a static. The input and the output are the caller's slices,
//! so only the hidden activations need to fit: [`Network::forward`] checks
//! the width at each call, the wrappers once at parse time.

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::dense::dense;
use crate::format::{self, Header, ModelKind};
use crate::prior::{LatentPrior, Prior};
use crate::{Error, Shape};

pub use layers::{LayerList, ListedLayer};

const DATA_LENGTH: Error = Error::InvalidShape(Shape::DataLength);
const INTERNAL: Error = Error::InvalidShape(Shape::Internal);

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
pub type Layers = LayerList<Layer>;

impl ListedLayer for Layer {
    const EMPTY: Self = Layer::EMPTY;

    fn inputs(&self) -> u16 {
        self.inputs
    }

    fn outputs(&self) -> u16 {
        self.outputs
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
    pub(crate) a: [f32; N],
    pub(crate) b: [f32; N],
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

    /// The two buffers' memory as bytes (4N each), for an int8 network.
    pub(crate) fn as_int8(&mut self) -> (&mut [i8], &mut [i8]) {
        (
            bytemuck::cast_slice_mut(&mut self.a),
            bytemuck::cast_slice_mut(&mut self.b),
        )
    }
}

impl<const N: usize> Default for Scratch<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A decoder or encoder network borrowed from a model file, with no bound
/// on its width: [`Network::forward`] checks the caller's buffers at each
/// call. [`Decoder`](crate::Decoder) and [`Encoder`](crate::Encoder) check them once, at parse time.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// The file's header, its kind the network's role (see [`Self::header`]).
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

    /// Parses a file of one of `kinds`.
    pub(crate) fn parse(bytes: &'a [u8], kinds: &[ModelKind]) -> Result<Self, Error> {
        Self::from_file(format::open(bytes)?, kinds)
    }

    /// Parses a checked file of one of `kinds` (see [`format::File`]).
    pub(crate) fn from_file(file: format::File<'a>, kinds: &[ModelKind]) -> Result<Self, Error> {
        let (header, spec, data) = file.read_body::<NetworkSpec>(kinds, SCHEMA_KEY)?;
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
            header: Header { kind, ..header },
            spec,
            weights,
            prior,
            hidden_width,
        })
    }

    /// Decoder or encoder, also for a network inside a detector file.
    pub fn kind(&self) -> ModelKind {
        self.header.kind
    }

    /// The checked header of the file the network was read from (its CRC,
    /// version and schema), with `kind` the network's role: for a network
    /// inside a detector file, decoder or encoder rather than detector.
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

    /// Each layer with its weight (outputs x inputs, row-major) and its
    /// bias, as stored and as [`Self::forward`] reads them (for a host
    /// path that lays them out differently, e.g. `tinygen::fast_network`).
    pub fn layer_weights(&self) -> impl Iterator<Item = (Layer, &'a [f32], &'a [f32])> + '_ {
        let mut weights = self.weights;
        self.layers().iter().map_while(move |layer| {
            let (w, rest) = weights.split_at_checked(layer.macs())?;
            let (bias, rest) = rest.split_at_checked(usize::from(layer.outputs))?;
            weights = rest;
            Some((*layer, w, bias))
        })
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
        self.forward_in(input, output, &mut scratch.a, &mut scratch.b)
    }

    /// [`Self::forward`] in two caller buffers of at least
    /// [`Self::hidden_width`] values each (`TooWide` otherwise), for callers
    /// whose buffers are sized at run time (the C API).
    pub fn forward_in(
        &self,
        input: &[f32],
        output: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
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
        self.run(Some(input), output, a, b)
    }

    /// The width [`Self::sample_in`]'s buffers must hold: the latent code
    /// and every hidden layer's width, whichever is largest.
    pub fn sample_width(&self) -> usize {
        self.hidden_width.max(self.latent_dim())
    }

    /// Draws a latent code from the prior and decodes it into `out`, in two
    /// caller buffers of at least [`Self::sample_width`] values each: the
    /// same as `prior().sample(rng, z)` then `forward(z, out)`
    /// ([`crate::Decoder::sample`] runs this).
    ///
    /// Errors: `DimensionMismatch` for a wrong `out` length, `WrongKind`
    /// for an encoder, `TooWide` for short buffers, `NoPrior`; nothing is
    /// drawn from `rng` then.
    pub fn sample_in<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
    ) -> Result<(), Error> {
        check_len(self.output_dim(), out.len())?;
        if self.kind() != ModelKind::Decoder {
            return Err(Error::WrongKind {
                expected: ModelKind::Decoder,
                found: self.kind(),
            });
        }
        let width = self.sample_width();
        let room = a.len().min(b.len());
        if width > room {
            return Err(Error::TooWide { width, max: room });
        }
        let z = b.get_mut(..self.latent_dim()).ok_or(INTERNAL)?;
        self.prior.sample(rng, z)?;
        self.run(None, out, a, b)
    }

    /// The forward pass proper: the input is `input`, or when `None`, the
    /// first values of `b`. Lengths are checked by the callers.
    pub(crate) fn run(
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
            let (w, rest) = weights.split_at_checked(layer.macs()).ok_or(INTERNAL)?;
            let (bias, rest) = rest.split_at_checked(n_out).ok_or(INTERNAL)?;
            weights = rest;
            let x: &[f32] = match (i, input) {
                (0, Some(input)) => input,
                _ => src.get(..n_in).ok_or(INTERNAL)?,
            };
            if i + 1 == layers.len() {
                let y = output.get_mut(..n_out).ok_or(INTERNAL)?;
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

pub(crate) fn check_len(expected: usize, found: usize) -> Result<(), Error> {
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
    let (input, output) = match kind {
        ModelKind::Decoder => (spec.latent, spec.data),
        ModelKind::Encoder => (spec.data, spec.latent),
        _ => return Err(Error::InvalidShape(Shape::PartKind)),
    };
    let layers = spec.layers.between(input, output)?;
    let mut parameters = 0usize;
    let mut hidden_width = 0usize;
    for (i, layer) in layers.iter().enumerate() {
        if layer.inputs == 0 || layer.outputs == 0 {
            return Err(Error::InvalidShape(Shape::Empty));
        }
        if let Some(next) = layers.get(i + 1) {
            if next.inputs != layer.outputs {
                return Err(Error::InvalidShape(Shape::LayerWidths));
            }
            hidden_width = hidden_width.max(usize::from(layer.outputs));
        }
        parameters = parameters
            .checked_add(layer.parameters())
            .ok_or(DATA_LENGTH)?;
    }
    let latent = usize::from(spec.latent);
    let prior_values = spec.prior.stored_values(latent).ok_or(DATA_LENGTH)?;
    if parameters.checked_add(prior_values) != Some(data.len()) {
        return Err(DATA_LENGTH);
    }
    let (weights, prior_params) = data.split_at_checked(parameters).ok_or(DATA_LENGTH)?;
    if weights.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFiniteParameter);
    }
    let prior = LatentPrior::from_parts(spec.prior, latent, prior_params)?;
    Ok((weights, prior, hidden_width))
}

#[cfg(feature = "alloc")]
mod encode;
mod layers;
#[cfg(feature = "alloc")]
pub use encode::{DecoderParams, LayerParams, PriorParams, Role};
