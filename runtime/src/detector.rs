//! Anomaly detectors: (window features ->) standardization -> density ->
//! threshold, in one model file.
//!
//! The body's spec names the embedded density (a Gaussian mixture or KDE,
//! whose standardization is folded into its weights), the alarm threshold on
//! the anomaly score `-ln p(x)`, and optionally a window summary: the input
//! is then a window of `length` samples of `channels` values, summarised by
//! [`crate::features::window_stats`] before scoring. The weights are the
//! embedded density's, in its own layout.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::features::{STATS, window_stats};
use crate::format::{self, Header, ModelKind};
use crate::gmm::{Gmm, GmmSpec};

/// Largest number of window features (4 per channel) a detector may use.
pub const MAX_FEATURES: usize = 64;

/// How raw input becomes the density's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Features {
    /// The input point is scored as it is.
    Identity,
    /// The input is a window of `length` samples of `channels` values
    /// (time-major), summarised per channel by mean, std, min and max.
    WindowStats {
        /// Values per sample.
        channels: u32,
        /// Samples per window.
        length: u32,
    },
    /// The input is a window of `length` samples of `channels` values
    /// (time-major), scored as it is: the density has `channels * length`
    /// dimensions.
    RawWindow {
        /// Values per sample.
        channels: u32,
        /// Samples per window.
        length: u32,
    },
}

impl Features {
    /// Values per input: a point, or a whole window (`None` for a point).
    pub fn window(self) -> Option<(usize, usize)> {
        match self {
            Features::Identity => None,
            Features::WindowStats { channels, length }
            | Features::RawWindow { channels, length } => {
                Some((channels as usize, length as usize))
            }
        }
    }
}

/// Metadata of a detector file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DetectorSpec {
    /// Input transformation.
    pub features: Features,
    /// Scores at or above this are anomalies.
    pub threshold: f32,
    /// Whether the density is a mixture or a KDE.
    pub density_kind: ModelKind,
    /// The density's own spec (its weights are the file's data).
    pub density: GmmSpec,
}

/// Schema key of the detector body.
pub const SCHEMA_KEY: u32 = format::schema_key(
    "detector/1 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} threshold:f32 \
     density_kind:{gmm,kde} density:gmm/1 spec} data: the density's data",
);

/// A detector read in place from a model file.
#[derive(Debug, Clone, Copy)]
pub struct Detector<'a> {
    spec: DetectorSpec,
    density: Gmm<'a>,
}

impl<'a> Detector<'a> {
    /// Parses and validates a detector file (4-byte aligned, as every model).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let (header, spec, data): (Header, DetectorSpec, _) =
            format::read_body(bytes, &[ModelKind::Detector])?;
        let density = Gmm::from_parts(header, spec.density_kind, spec.density, data)?;
        if !spec.threshold.is_finite() {
            return Err(Error::NonFiniteParameter);
        }
        match spec.features {
            Features::Identity => {}
            Features::WindowStats { channels, length } => {
                let features = (channels as usize).checked_mul(STATS.len());
                let input = (channels as usize).checked_mul(length as usize);
                if length == 0
                    || input.is_none()
                    || features != Some(density.dim())
                    || density.dim() > MAX_FEATURES
                {
                    return Err(Error::InvalidShape);
                }
            }
            Features::RawWindow { channels, length } => {
                if (channels as usize).checked_mul(length as usize) != Some(density.dim()) {
                    return Err(Error::InvalidShape);
                }
            }
        }
        Ok(Self { spec, density })
    }

    /// The detector's metadata.
    pub fn spec(&self) -> DetectorSpec {
        self.spec
    }

    /// The embedded density.
    pub fn density(&self) -> &Gmm<'a> {
        &self.density
    }

    /// Number of input values per call (a point, or a whole window).
    pub fn input_len(&self) -> usize {
        match self.spec.features.window() {
            None => self.density.dim(),
            Some((channels, length)) => channels * length,
        }
    }

    /// Anomaly score `-ln p(features(x))`: higher is more anomalous.
    pub fn score(&self, x: &[f32]) -> Result<f32, Error> {
        if x.len() != self.input_len() {
            return Err(Error::DimensionMismatch {
                expected: self.input_len(),
                found: x.len(),
            });
        }
        match self.spec.features {
            Features::Identity | Features::RawWindow { .. } => Ok(-self.density.log_density(x)?),
            Features::WindowStats { channels, .. } => self.score_window(x, channels as usize),
        }
    }

    /// Kept out of line so that only windowed detectors pay for the buffer.
    #[inline(never)]
    fn score_window(&self, x: &[f32], channels: usize) -> Result<f32, Error> {
        let mut buffer = [0.0f32; MAX_FEATURES];
        let features = buffer
            .get_mut(..self.density.dim())
            .ok_or(Error::InvalidShape)?;
        window_stats(x, channels, features)?;
        Ok(-self.density.log_density(features)?)
    }

    /// Whether `x` scores at or above the threshold.
    pub fn is_anomaly(&self, x: &[f32]) -> Result<bool, Error> {
        Ok(self.alarm(self.score(x)?))
    }

    /// Whether a score raises the alarm (is at or above the threshold).
    pub fn alarm(&self, score: f32) -> bool {
        score >= self.spec.threshold
    }
}

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::{DetectorSpec, Features};
    use crate::Error;
    use crate::format::{self, ModelKind};
    use crate::gmm::GmmParams;

    impl GmmParams<'_> {
        /// Encodes a detector file around this density (`density_kind` gmm
        /// or kde): its input features and its alarm threshold.
        pub fn encode_detector(
            &self,
            density_kind: ModelKind,
            features: Features,
            threshold: f32,
        ) -> Result<Vec<u8>, Error> {
            if !matches!(density_kind, ModelKind::Gmm | ModelKind::Kde) || !threshold.is_finite() {
                return Err(Error::InvalidParameters);
            }
            let (density, data) = self.stored()?;
            let spec = DetectorSpec {
                features,
                threshold,
                density_kind,
                density,
            };
            format::write(ModelKind::Detector, &spec, &data)
        }
    }
}
