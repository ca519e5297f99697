use alloc::vec::Vec;

use super::{AutoencoderSpec, DetectorSpec, Features, NeuralSpec, SecondDensitySpec};
use crate::Error;
use crate::format::{self, ModelKind};
use crate::gmm::GmmParams;
use crate::network::{DecoderParams, PriorParams, Role};
use crate::qnetwork::{FinalActivation, QNetworkParams};
use crate::quant::Rounding;

/// A detector's encoder and decoder, ready to encode; their roles and
/// priors are ignored (written as encoder and decoder, no prior).
#[derive(Debug, Clone)]
pub enum AutoencoderParams<'p> {
    /// f32 networks.
    F32 {
        /// Standardized features -> latent code.
        encoder: DecoderParams<'p>,
        /// Latent code -> standardized features.
        decoder: DecoderParams<'p>,
    },
    /// Int8 networks, written with [`Rounding::Single`] (as
    /// [`QNetworkParams::encode`]).
    Int8 {
        /// Standardized features -> latent code.
        encoder: QNetworkParams<'p>,
        /// Latent code -> standardized features.
        decoder: QNetworkParams<'p>,
    },
}

impl AutoencoderParams<'_> {
    /// The spec and the data (encoder's, then decoder's).
    fn stored(&self) -> Result<(AutoencoderSpec, Vec<f32>), Error> {
        Ok(match self {
            AutoencoderParams::F32 { encoder, decoder } => {
                let network = |p: &DecoderParams<'_>, role: Role| {
                    let p = DecoderParams {
                        role,
                        prior: PriorParams::None,
                        ..p.clone()
                    };
                    p.stored().map(|(_, spec, data)| (spec, data))
                };
                let (encoder, mut data) = network(encoder, Role::Encoder)?;
                let (decoder, decoder_data) = network(decoder, Role::Decoder)?;
                data.extend(decoder_data);
                (AutoencoderSpec::F32 { encoder, decoder }, data)
            }
            AutoencoderParams::Int8 { encoder, decoder } => {
                let network = |p: &QNetworkParams<'_>, role: Role| {
                    let p = QNetworkParams {
                        role,
                        prior: PriorParams::None,
                        final_activation: FinalActivation::Int8,
                        ..p.clone()
                    };
                    p.stored(Rounding::Single)
                        .map(|(_, spec, data)| (spec, data))
                };
                let (encoder, mut data) = network(encoder, Role::Encoder)?;
                let (decoder, decoder_data) = network(decoder, Role::Decoder)?;
                data.extend(decoder_data);
                (AutoencoderSpec::Int8 { encoder, decoder }, data)
            }
        })
    }
}

/// A detector's neural part, ready to encode (see the module docs).
#[derive(Debug, Clone)]
pub struct NeuralParams<'p> {
    /// Feature means subtracted before the autoencoder (D).
    pub mean: &'p [f32],
    /// Multiplies the centred features (D).
    pub inv_scale: &'p [f32],
    /// The encoder and the decoder, f32 or int8.
    pub autoencoder: AutoencoderParams<'p>,
    /// Density of the latent codes (no standardizer).
    pub latent: GmmParams<'p>,
    /// Subtracted from the terms (density, reconstruction, latent).
    pub center: [f32; 3],
    /// Divides the centred terms (positive).
    pub scale: [f32; 3],
}

/// A detector's second density, ready to encode (see the module docs).
#[derive(Debug, Clone)]
pub struct SecondDensityParams<'p> {
    /// Gmm or Kde.
    pub kind: ModelKind,
    /// The density, over the same features as the first.
    pub density: GmmParams<'p>,
    /// Subtracted from the terms (first density, second density).
    pub center: [f32; 2],
    /// Divides the centred terms (positive).
    pub scale: [f32; 2],
}

/// The optional parts of a detector file.
enum Extra<'e, 'p> {
    None,
    Neural(&'e NeuralParams<'p>),
    Second(&'e SecondDensityParams<'p>),
}

impl GmmParams<'_> {
    /// Encodes a detector file around this density (`density_kind` gmm
    /// or kde): its input features and its alarm threshold.
    pub fn encode_detector(
        &self,
        density_kind: ModelKind,
        features: Features,
        threshold: f32,
    ) -> Result<Vec<u8>, Error> {
        self.encode_neural_detector(density_kind, features, threshold, None)
    }

    /// Encodes a detector file around this density with an optional
    /// neural part; `InvalidParameters` if the result would not parse.
    pub fn encode_neural_detector(
        &self,
        density_kind: ModelKind,
        features: Features,
        threshold: f32,
        neural: Option<&NeuralParams<'_>>,
    ) -> Result<Vec<u8>, Error> {
        let extra = neural.map_or(Extra::None, Extra::Neural);
        self.encode_with(density_kind, features, threshold, extra)
    }

    /// Encodes a detector file around this density and a second one;
    /// `InvalidParameters` if the result would not parse.
    pub fn encode_pair_detector(
        &self,
        density_kind: ModelKind,
        features: Features,
        threshold: f32,
        second: &SecondDensityParams<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.encode_with(density_kind, features, threshold, Extra::Second(second))
    }

    fn encode_with(
        &self,
        density_kind: ModelKind,
        features: Features,
        threshold: f32,
        extra: Extra<'_, '_>,
    ) -> Result<Vec<u8>, Error> {
        if !matches!(density_kind, ModelKind::Gmm | ModelKind::Kde) || !threshold.is_finite() {
            return Err(Error::InvalidParameters);
        }
        let (density, mut data) = self.stored()?;
        let (mut neural, mut second) = (None, None);
        match extra {
            Extra::None => {}
            Extra::Neural(n) => {
                let (autoencoder, networks) = n.autoencoder.stored()?;
                let (latent, latent_data) = n.latent.stored()?;
                data.extend_from_slice(n.mean);
                data.extend_from_slice(n.inv_scale);
                data.extend(networks);
                data.extend(latent_data);
                neural = Some(NeuralSpec {
                    autoencoder,
                    latent,
                    center: n.center,
                    scale: n.scale,
                });
            }
            Extra::Second(s) => {
                let (spec, values) = s.density.stored()?;
                data.extend(values);
                second = Some(SecondDensitySpec {
                    kind: s.kind,
                    density: spec,
                    center: s.center,
                    scale: s.scale,
                });
            }
        }
        let spec = DetectorSpec {
            features,
            threshold,
            density_kind,
            density,
            neural,
            second,
        };
        let bytes = format::write(ModelKind::Detector, super::SCHEMA_KEY, &spec, &data)?;
        // Exactly the runtime's checks, on exactly the bytes written.
        let mut aligned = alloc::vec![0u32; bytes.len().div_ceil(4)];
        let view: &mut [u8] = bytemuck::cast_slice_mut(&mut aligned);
        view[..bytes.len()].copy_from_slice(&bytes);
        super::Detector::from_bytes(&view[..bytes.len()]).map_err(|_| Error::InvalidParameters)?;
        Ok(bytes)
    }
}
