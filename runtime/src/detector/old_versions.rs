//! Reading `detector/2` to `detector/5` bodies as today's spec.

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;

use super::{AutoencoderSpec, DetectorSpec, Features, NeuralSpec, SCHEMA_KEY_V2, SCHEMA_KEY_V5};
use crate::Error;
use crate::format::{self, Header, ModelKind};
use crate::gmm::GmmSpec;
use crate::network::NetworkSpec;

/// The fields of a `detector/3` or `detector/4` spec up to its
/// autoencoder's tag (their int8 networks' specs differ from today's).
#[derive(Deserialize)]
struct OldSpecPrefix {
    _features: Features,
    _threshold: f32,
    _density_kind: ModelKind,
    _density: GmmSpec,
    neural: Option<AutoencoderTag>,
}

/// [`AutoencoderSpec`]'s variant, without its content.
#[derive(Deserialize, PartialEq)]
enum AutoencoderTag {
    F32,
    Int8,
}

/// The spec of a `detector/3`, `detector/4` or `detector/5` file: today's
/// without a second density.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) struct DetectorSpecV5 {
    pub(super) features: Features,
    pub(super) threshold: f32,
    pub(super) density_kind: ModelKind,
    pub(super) density: GmmSpec,
    pub(super) neural: Option<NeuralSpec>,
}

impl From<DetectorSpecV5> for DetectorSpec {
    fn from(v5: DetectorSpecV5) -> Self {
        DetectorSpec {
            features: v5.features,
            threshold: v5.threshold,
            density_kind: v5.density_kind,
            density: v5.density,
            neural: v5.neural,
            second: None,
        }
    }
}

/// The spec of a `detector/2` file, as it was.
#[derive(Deserialize)]
struct DetectorSpecV2 {
    features: Features,
    threshold: f32,
    density_kind: ModelKind,
    density: GmmSpec,
    neural: Option<NeuralSpecV2>,
}

/// The neural part of a `detector/2` file: f32 networks.
#[derive(Deserialize)]
struct NeuralSpecV2 {
    encoder: NetworkSpec,
    decoder: NetworkSpec,
    latent: GmmSpec,
    center: [f32; 3],
    scale: [f32; 3],
}

impl From<DetectorSpecV2> for DetectorSpec {
    fn from(v2: DetectorSpecV2) -> Self {
        DetectorSpec {
            features: v2.features,
            threshold: v2.threshold,
            density_kind: v2.density_kind,
            density: v2.density,
            neural: v2.neural.map(|n| NeuralSpec {
                autoencoder: AutoencoderSpec::F32 {
                    encoder: n.encoder,
                    decoder: n.decoder,
                },
                latent: n.latent,
                center: n.center,
                scale: n.scale,
            }),
            second: None,
        }
    }
}

/// Reads a body of `detector/2` to `detector/5` as today's spec, out of
/// line: their specs' frames stay off the path of today's files.
#[inline(never)]
pub(super) fn read_old(
    file: format::File<'_>,
    key: u32,
) -> Result<(Header, DetectorSpec, &[f32]), Error> {
    if key == SCHEMA_KEY_V2 {
        let (header, spec, data) =
            file.read_body::<DetectorSpecV2>(&[ModelKind::Detector], SCHEMA_KEY_V2)?;
        return Ok((header, spec.into(), data));
    }
    // A `detector/3` or `/4` file with an int8 network holds another int8
    // spec: told by the autoencoder's tag, before reading it.
    if key != SCHEMA_KEY_V5 && file.header().kind == ModelKind::Detector {
        let prefix: OldSpecPrefix = file.spec_prefix()?;
        if prefix.neural == Some(AutoencoderTag::Int8) {
            return Err(Error::SchemaMismatch);
        }
    }
    let (header, spec, data) = file.read_body::<DetectorSpecV5>(&[ModelKind::Detector], key)?;
    Ok((header, spec.into(), data))
}
