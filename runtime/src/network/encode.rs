//! Host-side writer of network files (the trainer uses it).

use alloc::vec::Vec;

use super::{Layer, Layers, NetworkSpec, validate};
use crate::Error;
use crate::activation::Activation;
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

impl PriorParams<'_> {
    /// Appends the prior's stored values (a mixture's, normalised weights
    /// first) to `data`; the prior as a spec stores it. `InvalidParameters`
    /// for mixture lengths that do not match `latent` or a weight that is
    /// not positive and finite.
    pub(crate) fn store(&self, latent: usize, data: &mut Vec<f32>) -> Result<Prior, Error> {
        let bad = |_| Error::InvalidParameters;
        Ok(match *self {
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
                let d = latent;
                let k = weights.len();
                if Some(means.len()) != k.checked_mul(d)
                    || Some(cholesky.len()) != k.checked_mul(d).and_then(|kd| kd.checked_mul(d))
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
        })
    }
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
        format::write(kind, super::SCHEMA_KEY, &spec, &data)
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
        let prior = self.prior.store(self.latent, &mut data)?;
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
