//! Host-side writer of int8 network files.

use alloc::vec::Vec;

use super::{FinalActivation, QLayer, QLayers, QNetworkSpec, QuantParams, validate};
use crate::Error;
use crate::activation::Activation;
use crate::format::{self, ModelKind};
use crate::network::{PriorParams, Role};
use crate::quant::{Rounding, activation_table};

/// One int8 fully connected layer and the activation after it.
#[derive(Debug, Clone, Copy)]
pub struct QLayerParams<'p> {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Identity, Relu (fused as a clamp), Sigmoid or Tanh (the file stores
    /// the table [`activation_table`] computes from `output` to the fixed
    /// sigmoid or tanh params); LeakyRelu is rejected.
    pub activation: Activation,
    /// Int8 weights, `outputs x inputs` row-major, symmetric (zero point 0,
    /// TFLite's range `[-127, 127]`); the file stores them packed in
    /// [`crate::quant::kernel`]'s layout, which also holds `-128` except in
    /// an odd row beside a negative weight of the row above.
    pub weight: &'p [i8],
    /// Bias (length `outputs`), at scale `input_scale * weight_scale[o]`.
    pub bias: &'p [i32],
    /// Q0.31 multipliers from [`crate::quant::quantize_multiplier_single_rounding`]:
    /// 1 (per-tensor) or `outputs` (per-channel).
    pub multiplier: &'p [i32],
    /// Shifts, as many as `multiplier`.
    pub shift: &'p [i32],
    /// Params of the tensor the fully connected part writes.
    pub output: QuantParams,
}

/// A quantized decoder or encoder, ready to encode as a model file.
#[derive(Debug, Clone)]
pub struct QNetworkParams<'p> {
    /// Decoder ([`ModelKind::DecoderInt8`]) or encoder ([`ModelKind::EncoderInt8`]).
    pub role: Role,
    /// How the f32 input is quantized on entry.
    pub input: QuantParams,
    /// The layers, input to output.
    pub layers: Vec<QLayerParams<'p>>,
    /// The prior over latent codes (decoders; [`PriorParams::None`] for
    /// encoders), as for f32 networks.
    pub prior: PriorParams<'p>,
    /// How the last layer's sigmoid or tanh is computed ([`FinalActivation::F32`]
    /// only for a last layer with sigmoid or tanh: no table is stored).
    pub final_activation: FinalActivation,
}

impl QNetworkParams<'_> {
    /// Encodes the network as a complete `.tgm` file with
    /// [`Rounding::Single`] (what LiteRT computes).
    ///
    /// `InvalidParameters` unless the shapes are consistent (widths from 1
    /// to 65535, consecutive widths equal, weight, bias, multiplier and
    /// shift lengths, at most [`crate::network::MAX_LAYERS`] layers), no
    /// layer is LeakyRelu, and the file passes every check of the reader
    /// (scales finite and positive, multipliers non-negative, shifts in
    /// `-31..=30`, the prior's values); `ParameterOutOfRange` for weights
    /// the packed layout cannot hold ([`crate::quant::kernel::pack`]).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.encode_with(Rounding::Single)
    }

    /// [`Self::encode`] with the given multiplier rounding.
    pub fn encode_with(&self, rounding: Rounding) -> Result<Vec<u8>, Error> {
        let (kind, spec, data) = self.stored(rounding)?;
        format::write(kind, super::SCHEMA_KEY, &spec, &data)
    }

    /// The file's kind, spec and data words (as `f32` bit patterns), checked
    /// as [`Self::encode_with`] checks them: what a detector's int8 neural
    /// part embeds.
    pub(crate) fn stored(
        &self,
        rounding: Rounding,
    ) -> Result<(ModelKind, QNetworkSpec, Vec<f32>), Error> {
        let bad = |_| Error::InvalidParameters;
        let width = |n: usize| u16::try_from(n).map_err(bad);
        let (first, last) = match (self.layers.first(), self.layers.last()) {
            (Some(first), Some(last)) => (first, last),
            _ => return Err(Error::InvalidParameters),
        };
        let (kind, latent, data_dim) = match self.role {
            Role::Decoder => (ModelKind::DecoderInt8, first.inputs, last.outputs),
            Role::Encoder => (ModelKind::EncoderInt8, last.outputs, first.inputs),
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        let mut bytes: Vec<u8> = Vec::new();
        let f32_last = self.final_activation == FinalActivation::F32;
        if f32_last && !matches!(last.activation, Activation::Sigmoid | Activation::Tanh) {
            return Err(Error::InvalidParameters);
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let per_channel = layer.multiplier.len() != 1;
            let consistent = layer.inputs > 0
                && layer.outputs > 0
                && layer.activation != Activation::LeakyRelu
                && Some(layer.weight.len()) == layer.inputs.checked_mul(layer.outputs)
                && layer.bias.len() == layer.outputs
                && (!per_channel || layer.multiplier.len() == layer.outputs)
                && layer.shift.len() == layer.multiplier.len()
                && self
                    .layers
                    .get(i + 1)
                    .is_none_or(|next| next.inputs == layer.outputs);
            if !consistent {
                return Err(Error::InvalidParameters);
            }
            layers.push(QLayer {
                inputs: width(layer.inputs)?,
                outputs: width(layer.outputs)?,
                activation: layer.activation,
                per_channel,
                output: layer.output,
            });
            let weights = crate::quant::kernel::pack(layer.weight, layer.inputs)?;
            bytes.extend(weights.iter().flat_map(|w| w.to_le_bytes()));
            for values in [layer.bias, layer.multiplier, layer.shift] {
                bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            }
            let stored = layers.last().ok_or(Error::InvalidParameters)?;
            let table = stored.is_saturating() && !(f32_last && i + 1 == self.layers.len());
            if table {
                let table =
                    activation_table(layer.activation, layer.output, stored.activated(true))?;
                bytes.extend(table.iter().map(|&q| q.to_le_bytes()[0]));
            }
        }
        // The same bits as f32 words (to_le_bytes and from_le_bytes keep
        // every bit pattern, NaN payloads included).
        let mut data: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let prior = self.prior.store(latent, &mut data)?;
        let spec = QNetworkSpec {
            latent: width(latent)?,
            data: width(data_dim)?,
            input: self.input,
            rounding,
            layers: QLayers::new(&layers).map_err(|_| Error::InvalidParameters)?,
            prior,
            final_activation: self.final_activation,
        };
        // Exactly the runtime's checks, on exactly the values written.
        validate(kind, &spec, &data).map_err(|_| Error::InvalidParameters)?;
        Ok((kind, spec, data))
    }
}
