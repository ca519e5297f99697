//! Anomaly detectors: (window features ->) standardization -> score ->
//! threshold, in one model file.
//!
//! The body's spec names the embedded density (a Gaussian mixture or KDE,
//! whose standardization is folded into its weights), the alarm threshold on
//! the anomaly score, and optionally a window summary: the input is then a
//! window of `length` samples of `channels` values, summarised by
//! [`crate::features::window_stats`] before scoring.
//!
//! Without a neural part the score is the density's negative
//! log-likelihood `-ln p(f)` of the features `f`. With one ([`NeuralSpec`]:
//! an autoencoder trained on the standardized normal features `u`, and a
//! Gaussian mixture over its latent codes) the score combines three terms,
//! each centred and scaled by its median and interquartile range over the
//! normal training data (robust z-scores, so no term dominates by its
//! units), with equal weights:
//!
//! ```text
//! t1 = -ln p(f)                         the density (as without a neural part)
//! t2 = sum_j (u_j - decode(encode(u))_j)^2   reconstruction error, u = (f - mean) * inv_scale
//! t3 = -ln q(encode(u))                 latent negative log-likelihood
//! score = sum_i (t_i - center_i) / scale_i
//! ```
//!
//! With a second density instead ([`SecondDensitySpec`]: another mixture
//! or KDE over the same features, say one regularised differently) the
//! score is the sum of the two densities' robust z-scores, centred and
//! scaled in the same way:
//!
//! ```text
//! score = (-ln p(f) - center_0) / scale_0 + (-ln q(f) - center_1) / scale_1
//! ```
//!
//! A detector has a neural part or a second density, not both.
//!
//! The encoder and the decoder are either f32 networks ([`crate::network`])
//! or int8 networks ([`crate::qnetwork`], TensorFlow Lite's int8 scheme),
//! as [`AutoencoderSpec`] says. An int8 pair runs exactly as standalone
//! int8 files do: `encode(u)` quantizes the f32 `u` with the encoder's
//! input params and dequantizes the code to f32 (the latent mixture reads
//! f32), `decode(z)` quantizes that code with the decoder's input params
//! and dequantizes the reconstruction; the rest of the score is f32 as
//! above. The writer measures `center` and `scale` on the detector it
//! writes, int8 networks included (the trainer does), so the calibrated
//! score is the one the device computes.
//!
//! The file's data: the density's values, then for a neural part the
//! feature mean (D), inverse scale (D), the encoder's and the decoder's
//! data (f32 weights in the network module's layout, or int8 words in the
//! int8 network's, without a prior) and the latent mixture's values; for a
//! second density, its values.
//!
//! # Versions
//!
//! This is `detector/6` ([`SCHEMA_KEY`]): `detector/5`'s spec and a second
//! density. `detector/5` ([`SCHEMA_KEY_V5`]) files, whose int8 networks are
//! also `mlp-int8/4`'s (packed weights, sigmoid and tanh tables, the final
//! activation's choice), are still read. `detector/4` ([`SCHEMA_KEY_V4`])
//! and `detector/3` ([`SCHEMA_KEY_V3`]) are `detector/5`'s spec over
//! `mlp-int8/3` and `mlp-int8/2` networks: their files without an int8 part
//! (the same bytes as `detector/5`'s) are still read, those with one are
//! rejected with `SchemaMismatch`. `detector/2`
//! ([`SCHEMA_KEY_V2`]) had f32 networks only and no [`AutoencoderSpec`]
//! variant; such files are still read (as [`AutoencoderSpec::F32`]).
//! Neither is written any more.

use serde::{Deserialize, Serialize};

use crate::features::{STATS, window_stats};
use crate::format::{self, Header, ModelKind};
use crate::gmm::{Gmm, GmmSpec};
use crate::network::{Network, NetworkSpec, Scratch};
use crate::qnetwork::{QNetwork, QNetworkSpec};
use crate::{Error, Shape};
use old_versions::read_old;

#[cfg(feature = "alloc")]
mod encode;
mod old_versions;
#[cfg(all(test, feature = "alloc"))]
mod tests;

const DATA_LENGTH: Error = Error::InvalidShape(Shape::DataLength);
const INTERNAL: Error = Error::InvalidShape(Shape::Internal);

/// Largest number of window features (4 per channel) a detector may use.
pub const MAX_FEATURES: usize = 64;

/// Widest neural part (features, latent code, hidden layers) that
/// [`Detector::score`] runs with its own stack buffers (about
/// `5 * 4 * NEURAL_WIDTH` bytes); wider ones need [`Detector::score_in`].
pub const NEURAL_WIDTH: usize = 64;

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

/// The alarm threshold that `alarm_rate` of `scores` (normal inputs held
/// out from fitting) reach: with `k = floor(rate * n)`, the k-th largest
/// score (so about that fraction of them raise an alarm), or the next
/// float above the largest when k = 0. Sorts `scores` in place.
/// `ParameterOutOfRange` for a rate outside [0, 1), `InvalidShape(Empty)`
/// for no scores, `NonFiniteInput` for a NaN score.
pub fn threshold_at_rate(scores: &mut [f32], alarm_rate: f64) -> Result<f32, Error> {
    if !(0.0..1.0).contains(&alarm_rate) {
        return Err(Error::ParameterOutOfRange);
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(Error::NonFiniteInput);
    }
    heapsort(scores);
    let n = scores.len();
    let largest = *scores.last().ok_or(Error::InvalidShape(Shape::Empty))?;
    let k = (alarm_rate * n as f64) as usize;
    match k {
        0 => Ok(largest.next_up()),
        k => scores.get(n - k.min(n)).copied().ok_or(INTERNAL),
    }
}

/// The centre and scale that make `terms` (one term of a combined score
/// over normal inputs) a robust z-score: the median and the interquartile
/// range / 1.349 (linear-interpolation quantiles, in f64). A term that
/// barely varies (IQR at most 1e-12) is scaled by its population standard
/// deviation if that is above 1e-12, else by 1. Sorts `terms` in place.
/// `InvalidShape(Empty)` for no terms, `NonFiniteInput` for a term that
/// is not finite. The trainer measures its detectors' constants with it,
/// and the on-device learner its own.
pub fn robust_z_constants(terms: &mut [f32]) -> Result<(f32, f32), Error> {
    if terms.iter().any(|t| !t.is_finite()) {
        return Err(Error::NonFiniteInput);
    }
    heapsort(terms);
    let last = terms
        .len()
        .checked_sub(1)
        .ok_or(Error::InvalidShape(Shape::Empty))?;
    let at = |i: usize| terms.get(i).map_or(f64::NAN, |&t| f64::from(t));
    let quantile = |p: f64| {
        let pos = p * last as f64;
        let (lo, hi) = (libm::floor(pos) as usize, libm::ceil(pos) as usize);
        at(lo) + (at(hi) - at(lo)) * (pos - lo as f64)
    };
    let center = quantile(0.5) as f32;
    let iqr = (quantile(0.75) - quantile(0.25)) / 1.349;
    if iqr > 1e-12 {
        return Ok((center, iqr as f32));
    }
    let n = terms.len() as f64;
    let mean = terms.iter().map(|&t| f64::from(t)).sum::<f64>() / n;
    let var = terms
        .iter()
        .map(|&t| (f64::from(t) - mean) * (f64::from(t) - mean))
        .sum::<f64>()
        / n;
    let sd = libm::sqrt(var);
    Ok((center, if sd > 1e-12 { sd as f32 } else { 1.0 }))
}

/// `sum_i (terms_i - center_i) / scale_i`, in order from 0: a combined
/// score.
pub(crate) fn robust_sum<const N: usize>(
    terms: &[f32; N],
    center: &[f32; N],
    scale: &[f32; N],
) -> f32 {
    terms
        .iter()
        .zip(center.iter().zip(scale))
        .fold(0.0f32, |acc, (&t, (&c, &s))| acc + (t - c) / s)
}

/// Sorts ascending by [`f32::total_cmp`] in place, in O(n log n) with no
/// allocation: a heapsort with checked indices, since core's sorts keep a
/// panic path (they check that the comparison is a total order).
fn heapsort(v: &mut [f32]) {
    let greater = |v: &[f32], a: usize, b: usize| match (v.get(a), v.get(b)) {
        (Some(x), Some(y)) => x.total_cmp(y).is_gt(),
        _ => false,
    };
    // Moves v[root] down the max-heap of v[..end].
    let sift_down = |v: &mut [f32], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && greater(v, child + 1, child) {
            child += 1;
        }
        if !greater(v, child, root) || child >= v.len() || root >= child {
            return;
        }
        v.swap(root, child);
        root = child;
    };
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift_down(v, root, n);
    }
    for end in (1..n).rev() {
        if end < v.len() {
            v.swap(0, end);
        }
        sift_down(v, 0, end);
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
    /// The density's own spec (its weights come first in the file's data).
    pub density: GmmSpec,
    /// The autoencoder scores, if any.
    pub neural: Option<NeuralSpec>,
    /// A second density, if any (not with a neural part).
    pub second: Option<SecondDensitySpec>,
}

/// A detector's second density (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SecondDensitySpec {
    /// Whether it is a mixture or a KDE.
    pub kind: ModelKind,
    /// Its spec: the same dimension as the first density's.
    pub density: GmmSpec,
    /// Subtracted from the terms (first density, second density).
    pub center: [f32; 2],
    /// Divides the centred terms (positive).
    pub scale: [f32; 2],
}

/// Metadata of a detector's neural part (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NeuralSpec {
    /// The encoder and the decoder, f32 or int8.
    pub autoencoder: AutoencoderSpec,
    /// Density of the latent codes (not standardized).
    pub latent: GmmSpec,
    /// Subtracted from the terms (density, reconstruction, latent).
    pub center: [f32; 3],
    /// Divides the centred terms (positive).
    pub scale: [f32; 3],
}

/// The encoder (standardized features -> latent code) and the decoder
/// (latent code -> reconstructed standardized features) of a neural part,
/// neither with a prior: f32 or int8 networks.
// No heap to box the larger variant into: both stay inline (an int8 spec
// carries its layers' quantization params, a few hundred bytes more).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AutoencoderSpec {
    /// f32 networks ([`crate::network`]).
    F32 {
        /// Standardized features -> latent code.
        encoder: NetworkSpec,
        /// Latent code -> reconstructed standardized features.
        decoder: NetworkSpec,
    },
    /// Int8 networks ([`crate::qnetwork`]).
    Int8 {
        /// Standardized features -> latent code.
        encoder: QNetworkSpec,
        /// Latent code -> reconstructed standardized features.
        decoder: QNetworkSpec,
    },
}

impl AutoencoderSpec {
    /// Whether the networks are int8.
    pub fn is_int8(&self) -> bool {
        matches!(self, AutoencoderSpec::Int8 { .. })
    }
}

/// Schema key of the detector body.
pub const SCHEMA_KEY: u32 = format::schema_key(
    "detector/6 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} threshold:f32 \
     density_kind:{gmm,kde} density:gmm/1 spec \
     neural:option{autoencoder:{f32{encoder:mlp/1 spec decoder:mlp/1 spec}, \
     int8{encoder:mlp-int8/4 spec decoder:mlp-int8/4 spec}} latent:gmm/1 spec \
     center:[f32;3] scale:[f32;3]} \
     second:option{kind:{gmm,kde} density:gmm/1 spec center:[f32;2] scale:[f32;2]}} \
     data: the density's data; if neural: mean D, inv_scale D, encoder data, decoder data \
     (f32 values or int8 words as in their own kinds, no prior), latent data; \
     if second: its data",
);

/// Schema key of `detector/5` files (no second density), still read.
pub const SCHEMA_KEY_V5: u32 = format::schema_key(
    "detector/5 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} threshold:f32 \
     density_kind:{gmm,kde} density:gmm/1 spec \
     neural:option{autoencoder:{f32{encoder:mlp/1 spec decoder:mlp/1 spec}, \
     int8{encoder:mlp-int8/4 spec decoder:mlp-int8/4 spec}} latent:gmm/1 spec \
     center:[f32;3] scale:[f32;3]}} \
     data: the density's data; if neural: mean D, inv_scale D, encoder data, decoder data \
     (f32 values or int8 words as in their own kinds, no prior), latent data",
);

/// Schema key of `detector/4` files (int8 networks in `mlp-int8/3`'s
/// layout), still read when they hold no int8 network.
pub const SCHEMA_KEY_V4: u32 = format::schema_key(
    "detector/4 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} threshold:f32 \
     density_kind:{gmm,kde} density:gmm/1 spec \
     neural:option{autoencoder:{f32{encoder:mlp/1 spec decoder:mlp/1 spec}, \
     int8{encoder:mlp-int8/3 spec decoder:mlp-int8/3 spec}} latent:gmm/1 spec \
     center:[f32;3] scale:[f32;3]}} \
     data: the density's data; if neural: mean D, inv_scale D, encoder data, decoder data \
     (f32 values or int8 words as in their own kinds, no prior), latent data",
);

/// Schema key of `detector/3` files (int8 networks in `mlp-int8/2`'s
/// layout), still read when they hold no int8 network.
pub const SCHEMA_KEY_V3: u32 = format::schema_key(
    "detector/3 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} threshold:f32 \
     density_kind:{gmm,kde} density:gmm/1 spec \
     neural:option{autoencoder:{f32{encoder:mlp/1 spec decoder:mlp/1 spec}, \
     int8{encoder:mlp-int8/2 spec decoder:mlp-int8/2 spec}} latent:gmm/1 spec \
     center:[f32;3] scale:[f32;3]}} \
     data: the density's data; if neural: mean D, inv_scale D, encoder data, decoder data \
     (f32 values or int8 words as in their own kinds, no prior), latent data",
);

/// Schema key of `detector/2` files (f32 neural parts only), still read.
pub const SCHEMA_KEY_V2: u32 = format::schema_key(
    "detector/2 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} threshold:f32 \
     density_kind:{gmm,kde} density:gmm/1 spec \
     neural:option{encoder:mlp/1 spec decoder:mlp/1 spec latent:gmm/1 spec \
     center:[f32;3] scale:[f32;3]}} \
     data: the density's data; if neural: mean D, inv_scale D, encoder, decoder, latent data",
);

/// The fields every detector spec starts with.
struct SpecHead {
    features: Features,
    threshold: f32,
    density_kind: ModelKind,
    density: GmmSpec,
}

impl SpecHead {
    /// The first density, validated with the features and threshold, and
    /// the data after the density's.
    fn density<'a>(&self, header: Header, data: &'a [f32]) -> Result<(Gmm<'a>, &'a [f32]), Error> {
        let density_len = self.density.stored_values().ok_or(DATA_LENGTH)?;
        let (density_data, rest) = data.split_at_checked(density_len).ok_or(DATA_LENGTH)?;
        let density = Gmm::from_parts(header, self.density_kind, self.density, density_data)?;
        if !self.threshold.is_finite() {
            return Err(Error::NonFiniteParameter);
        }
        match self.features {
            Features::Identity => {}
            Features::WindowStats { channels, length } => {
                let features = (channels as usize).checked_mul(STATS.len());
                let input = (channels as usize).checked_mul(length as usize);
                if length == 0
                    || input.is_none()
                    || features != Some(density.dim())
                    || density.dim() > MAX_FEATURES
                {
                    return Err(Error::InvalidShape(Shape::Window));
                }
            }
            Features::RawWindow { channels, length } => {
                if (channels as usize).checked_mul(length as usize) != Some(density.dim()) {
                    return Err(Error::InvalidShape(Shape::Window));
                }
            }
        }
        Ok((density, rest))
    }
}

/// A detector's second density, validated.
#[derive(Debug, Clone, Copy)]
struct Second<'a> {
    density: Gmm<'a>,
    center: [f32; 2],
    scale: [f32; 2],
}

impl<'a> Second<'a> {
    /// Validates a second density over `dim` features; `data` is the rest
    /// of the detector's data after the first density's.
    fn from_parts(
        header: Header,
        spec: SecondDensitySpec,
        dim: usize,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        let density = Gmm::from_parts(header, spec.kind, spec.density, data)?;
        if density.dim() != dim {
            return Err(Error::InvalidShape(Shape::SecondDensity));
        }
        if spec.center.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteParameter);
        }
        if spec.scale.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
            return Err(Error::ParameterOutOfRange);
        }
        Ok(Self {
            density,
            center: spec.center,
            scale: spec.scale,
        })
    }

    /// The spec it was read from.
    fn spec(&self) -> SecondDensitySpec {
        SecondDensitySpec {
            kind: self.density.kind(),
            density: self.density.spec(),
            center: self.center,
            scale: self.scale,
        }
    }

    /// `(terms_0 - center_0) / scale_0 + (terms_1 - center_1) / scale_1`.
    fn combine(&self, terms: [f32; 2]) -> f32 {
        robust_sum(&terms, &self.center, &self.scale)
    }
}

/// A detector's neural part, validated.
#[derive(Debug, Clone, Copy)]
struct Neural<'a> {
    mean: &'a [f32],
    inv_scale: &'a [f32],
    autoencoder: Autoencoder<'a>,
    latent: Gmm<'a>,
    center: [f32; 3],
    scale: [f32; 3],
    /// Widest buffer the scoring needs: features, latent, hidden layers.
    width: usize,
}

/// A validated encoder and decoder.
#[allow(clippy::large_enum_variant)] // no heap: as for AutoencoderSpec
#[derive(Debug, Clone, Copy)]
enum Autoencoder<'a> {
    F32 {
        encoder: Network<'a>,
        decoder: Network<'a>,
    },
    Int8 {
        encoder: QNetwork<'a>,
        decoder: QNetwork<'a>,
    },
}

impl Autoencoder<'_> {
    /// Input and output widths: the encoder's, then the decoder's.
    fn ends(&self) -> [usize; 4] {
        match self {
            Autoencoder::F32 { encoder, decoder } => [
                encoder.input_dim(),
                encoder.output_dim(),
                decoder.input_dim(),
                decoder.output_dim(),
            ],
            Autoencoder::Int8 { encoder, decoder } => [
                encoder.input_dim(),
                encoder.output_dim(),
                decoder.input_dim(),
                decoder.output_dim(),
            ],
        }
    }

    /// The widest buffer either network needs.
    fn hidden_width(&self) -> usize {
        match self {
            Autoencoder::F32 { encoder, decoder } => {
                encoder.hidden_width().max(decoder.hidden_width())
            }
            Autoencoder::Int8 { encoder, decoder } => {
                encoder.hidden_width().max(decoder.hidden_width())
            }
        }
    }

    /// 4-byte values (f32 weights or int8 words) both networks store.
    fn stored_values(&self) -> usize {
        match self {
            Autoencoder::F32 { encoder, decoder } => {
                encoder.stored_values() + decoder.stored_values()
            }
            Autoencoder::Int8 { encoder, decoder } => {
                encoder.stored_words() + decoder.stored_words()
            }
        }
    }

    /// Multiply-accumulates of both networks.
    fn macs(&self) -> usize {
        match self {
            Autoencoder::F32 { encoder, decoder } => encoder.macs() + decoder.macs(),
            Autoencoder::Int8 { encoder, decoder } => encoder.macs() + decoder.macs(),
        }
    }

    /// `z = encode(u)`, `r = decode(z)`; int8 networks run in the f32
    /// buffers' memory.
    fn run<const N: usize>(
        &self,
        u: &[f32],
        z: &mut [f32],
        r: &mut [f32],
        scratch: &mut Scratch<N>,
    ) -> Result<(), Error> {
        match self {
            Autoencoder::F32 { encoder, decoder } => {
                encoder.forward(u, z, scratch)?;
                decoder.forward(z, r, scratch)
            }
            Autoencoder::Int8 { encoder, decoder } => {
                let (a, b) = scratch.as_int8();
                encoder.forward_in(u, z, a, b)?;
                decoder.forward_in(z, r, a, b)
            }
        }
    }
}

/// Buffers for scoring a detector with a neural part whose widths are at
/// most `N` (see [`Detector::score_in`]): `20 N` bytes (int8 networks run
/// in the same memory).
#[derive(Debug, Clone)]
pub struct DetectorScratch<const N: usize> {
    network: Scratch<N>,
    features: [f32; N],
    latent: [f32; N],
    reconstruction: [f32; N],
}

impl<const N: usize> DetectorScratch<N> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Self {
            network: Scratch::new(),
            features: [0.0; N],
            latent: [0.0; N],
            reconstruction: [0.0; N],
        }
    }
}

impl<const N: usize> Default for DetectorScratch<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A detector read in place from a model file.
#[derive(Debug, Clone, Copy)]
pub struct Detector<'a> {
    // Not the whole spec: its networks' tables live in the networks, and a
    // second copy would double what opening a detector moves on the stack.
    features: Features,
    threshold: f32,
    density: Gmm<'a>,
    neural: Option<Neural<'a>>,
    second: Option<Second<'a>>,
}

impl<'a> Detector<'a> {
    /// Parses and validates a detector file (4-byte aligned, as every model).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_file(format::open(bytes)?)
    }

    /// Parses a checked file (see [`format::File`]). Today's spec is read
    /// field by field: a neural part's spec (hundreds of bytes of layer
    /// tables) is decoded out of line, only when the file has one, so that
    /// opening any other detector takes little stack.
    pub(crate) fn from_file(file: format::File<'a>) -> Result<Self, Error> {
        let key = file.header().schema;
        if matches!(
            key,
            SCHEMA_KEY_V2 | SCHEMA_KEY_V3 | SCHEMA_KEY_V4 | SCHEMA_KEY_V5
        ) {
            return Self::from_old(file, key);
        }
        let mut spec = file.spec_reader(&[ModelKind::Detector], SCHEMA_KEY)?;
        let head = SpecHead {
            features: spec.field()?,
            threshold: spec.field()?,
            density_kind: spec.field()?,
            density: spec.field()?,
        };
        if spec.is_some()? {
            return Self::with_neural(head, spec);
        }
        let second = spec.field()?;
        let header = spec.header();
        Self::with_second(header, head, second, spec.weights()?)
    }

    /// The rest of a `detector/6` file with a neural part.
    #[inline(never)]
    fn with_neural(head: SpecHead, mut spec: format::SpecReader<'a>) -> Result<Self, Error> {
        let neural: NeuralSpec = spec.field()?;
        if spec.field::<Option<SecondDensitySpec>>()?.is_some() {
            return Err(Error::InvalidShape(Shape::SecondDensity));
        }
        let header = spec.header();
        Self::with_neural_spec(header, head, &neural, spec.weights()?)
    }

    /// A `detector/2` to `/5` file.
    #[inline(never)]
    fn from_old(file: format::File<'a>, key: u32) -> Result<Self, Error> {
        let (header, spec, data) = read_old(file, key)?;
        let head = SpecHead {
            features: spec.features,
            threshold: spec.threshold,
            density_kind: spec.density_kind,
            density: spec.density,
        };
        match &spec.neural {
            Some(neural) => Self::with_neural_spec(header, head, neural, data),
            None => Self::with_second(header, head, None, data),
        }
    }

    /// A detector with a neural part, from its spec and data.
    #[inline(never)]
    fn with_neural_spec(
        header: Header,
        head: SpecHead,
        neural: &NeuralSpec,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        let (density, rest) = head.density(header, data)?;
        let neural = Neural::from_parts(header, neural, density.dim(), rest)?;
        Ok(Self {
            features: head.features,
            threshold: head.threshold,
            density,
            neural: Some(neural),
            second: None,
        })
    }

    /// A detector with at most a second density, from its spec and data.
    fn with_second(
        header: Header,
        head: SpecHead,
        second: Option<SecondDensitySpec>,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        let (density, rest) = head.density(header, data)?;
        let second = match second {
            None if rest.is_empty() => None,
            None => return Err(DATA_LENGTH),
            Some(s) => Some(Second::from_parts(header, s, density.dim(), rest)?),
        };
        // Built in place of the result: no copy of a whole detector.
        Ok(Self {
            features: head.features,
            threshold: head.threshold,
            density,
            neural: None,
            second,
        })
    }

    /// The detector's metadata (as the file stores it).
    pub fn spec(&self) -> DetectorSpec {
        DetectorSpec {
            features: self.features,
            threshold: self.threshold,
            density_kind: self.density.kind(),
            density: self.density.spec(),
            neural: self.neural.as_ref().map(Neural::spec),
            second: self.second.as_ref().map(Second::spec),
        }
    }

    /// Scores at or above this are anomalies.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The input transformation.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The embedded density.
    pub fn density(&self) -> &Gmm<'a> {
        &self.density
    }

    /// Number of input values per call (a point, or a whole window).
    pub fn input_len(&self) -> usize {
        match self.features.window() {
            None => self.density.dim(),
            Some((channels, length)) => channels * length,
        }
    }

    /// Number of 4-byte values in the file's data (density and neural
    /// part; an int8 network's words count as values).
    pub fn stored_values(&self) -> usize {
        self.density.stored_values()
            + self.neural.as_ref().map_or(0, |n| {
                n.mean.len()
                    + n.inv_scale.len()
                    + n.autoencoder.stored_values()
                    + n.latent.stored_values()
            })
            + self
                .second
                .as_ref()
                .map_or(0, |s| s.density.stored_values())
    }

    /// Multiply-accumulates of one [`Self::score`] call: the density's
    /// [`Gmm::macs`], plus for a neural part both networks' and the latent
    /// mixture's (int8 ones count one each), and `2 D` for standardizing
    /// the features and summing the reconstruction error, or the second
    /// density's. Window statistics add `O(input_len)` and a square root
    /// per channel.
    pub fn macs(&self) -> usize {
        self.density.macs()
            + self.neural.as_ref().map_or(0, |n| {
                n.autoencoder.macs() + n.latent.macs() + 2 * self.density.dim()
            })
            + self.second.as_ref().map_or(0, |s| s.density.macs())
    }

    /// Whether the detector has a second density.
    pub fn has_second_density(&self) -> bool {
        self.second.is_some()
    }

    /// Whether the detector has a neural part.
    pub fn has_neural(&self) -> bool {
        self.neural.is_some()
    }

    /// Whether the detector has a neural part with int8 networks.
    pub fn has_int8_neural(&self) -> bool {
        matches!(
            self.neural,
            Some(Neural {
                autoencoder: Autoencoder::Int8 { .. },
                ..
            })
        )
    }

    /// The width [`DetectorScratch`] must hold for [`Self::score_in`]: the
    /// features, the latent code and the hidden layers of the neural part
    /// (0 without one).
    pub fn neural_width(&self) -> usize {
        self.neural.as_ref().map_or(0, |n| n.width)
    }

    /// Anomaly score, higher is more anomalous: `-ln p(features(x))`, or
    /// the combined score of the module docs with a second density or a
    /// neural part, whose widths must then be at most [`NEURAL_WIDTH`]
    /// (`TooWide` otherwise; use [`Self::score_in`]).
    pub fn score(&self, x: &[f32]) -> Result<f32, Error> {
        match (&self.neural, &self.second) {
            (None, None) => self.score_density(x),
            (None, Some(second)) => Ok(second.combine(self.second_terms(second, x)?)),
            (Some(_), _) => self.score_on_stack(x),
        }
    }

    /// Kept out of line so that only neural detectors pay for the buffers.
    #[inline(never)]
    fn score_on_stack(&self, x: &[f32]) -> Result<f32, Error> {
        self.score_in(x, &mut DetectorScratch::<NEURAL_WIDTH>::new())
    }

    /// [`Self::score`] with the caller's buffers, for neural parts up to
    /// `N` wide (`TooWide` otherwise); any `N` for a detector without one.
    pub fn score_in<const N: usize>(
        &self,
        x: &[f32],
        scratch: &mut DetectorScratch<N>,
    ) -> Result<f32, Error> {
        match &self.neural {
            None => self.score(x),
            Some(neural) => Ok(neural.combine(self.neural_terms(neural, x, scratch)?)),
        }
    }

    /// The two densities' `-ln p` at the features of `x` (the terms of the
    /// combined score before centring and scaling); `None` for a detector
    /// without a second density.
    pub fn density_terms(&self, x: &[f32]) -> Result<Option<[f32; 2]>, Error> {
        self.second
            .as_ref()
            .map(|second| self.second_terms(second, x))
            .transpose()
    }

    /// Kept out of line so that only detectors with a second density pay
    /// for the features' buffer.
    #[inline(never)]
    fn second_terms(&self, second: &Second<'a>, x: &[f32]) -> Result<[f32; 2], Error> {
        self.check_input(x)?;
        let mut buffer = [0.0f32; MAX_FEATURES];
        let features = match self.features {
            Features::Identity | Features::RawWindow { .. } => x,
            Features::WindowStats { channels, .. } => {
                let features = buffer.get_mut(..self.density.dim()).ok_or(INTERNAL)?;
                window_stats(x, channels as usize, features)?;
                features
            }
        };
        Ok([
            -self.density.log_density(features)?,
            -second.density.log_density(features)?,
        ])
    }

    /// The three terms of the combined score (density, reconstruction,
    /// latent; see the module docs) before centring and scaling; `None` for
    /// a detector without a neural part. Buffers as for [`Self::score_in`].
    pub fn terms_in<const N: usize>(
        &self,
        x: &[f32],
        scratch: &mut DetectorScratch<N>,
    ) -> Result<Option<[f32; 3]>, Error> {
        self.neural
            .as_ref()
            .map(|neural| self.neural_terms(neural, x, scratch))
            .transpose()
    }

    fn neural_terms<const N: usize>(
        &self,
        neural: &Neural<'a>,
        x: &[f32],
        scratch: &mut DetectorScratch<N>,
    ) -> Result<[f32; 3], Error> {
        self.check_input(x)?;
        if neural.width > N {
            return Err(Error::TooWide {
                width: neural.width,
                max: N,
            });
        }
        let d = self.density.dim();
        let features = scratch.features.get_mut(..d).ok_or(INTERNAL)?;
        match self.features {
            Features::Identity | Features::RawWindow { .. } => {
                features.iter_mut().zip(x).for_each(|(f, &v)| *f = v);
            }
            Features::WindowStats { channels, .. } => window_stats(x, channels as usize, features)?,
        }
        let nll = -self.density.log_density(features)?;
        neural.terms(
            nll,
            features,
            &mut scratch.latent,
            &mut scratch.reconstruction,
            &mut scratch.network,
        )
    }

    fn check_input(&self, x: &[f32]) -> Result<(), Error> {
        if x.len() == self.input_len() {
            Ok(())
        } else {
            Err(Error::DimensionMismatch {
                expected: self.input_len(),
                found: x.len(),
            })
        }
    }

    /// `-ln p(features(x))`.
    fn score_density(&self, x: &[f32]) -> Result<f32, Error> {
        Ok(-self.log_density(x)?)
    }

    /// `ln p(features(x))`: the embedded density's log-density at the
    /// features of `x` (the point itself, or a window's statistics). The
    /// score of a detector without a neural part is its negation; a neural
    /// detector's first term is too.
    pub fn log_density(&self, x: &[f32]) -> Result<f32, Error> {
        self.check_input(x)?;
        match self.features {
            Features::Identity | Features::RawWindow { .. } => self.density.log_density(x),
            Features::WindowStats { channels, .. } => self.window_log_density(x, channels as usize),
        }
    }

    /// Kept out of line so that only windowed detectors pay for the buffer.
    #[inline(never)]
    fn window_log_density(&self, x: &[f32], channels: usize) -> Result<f32, Error> {
        let mut buffer = [0.0f32; MAX_FEATURES];
        let features = buffer.get_mut(..self.density.dim()).ok_or(INTERNAL)?;
        window_stats(x, channels, features)?;
        self.density.log_density(features)
    }

    /// Whether `x` scores at or above the threshold.
    pub fn is_anomaly(&self, x: &[f32]) -> Result<bool, Error> {
        Ok(self.alarm(self.score(x)?))
    }

    /// Whether a score raises the alarm (is at or above the threshold).
    pub fn alarm(&self, score: f32) -> bool {
        score >= self.threshold
    }
}

impl<'a> Neural<'a> {
    /// Validates a neural part over `dim` features; `data` is the rest of
    /// the detector's data after the density's.
    fn from_parts(
        header: Header,
        spec: &NeuralSpec,
        dim: usize,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        let (mean, rest) = data.split_at_checked(dim).ok_or(DATA_LENGTH)?;
        let (inv_scale, rest) = rest.split_at_checked(dim).ok_or(DATA_LENGTH)?;
        let (autoencoder, latent) = match &spec.autoencoder {
            AutoencoderSpec::F32 { encoder, decoder } => {
                let encoder_len = encoder.stored_values().ok_or(DATA_LENGTH)?;
                let decoder_len = decoder.stored_values().ok_or(DATA_LENGTH)?;
                let (e, rest) = rest.split_at_checked(encoder_len).ok_or(DATA_LENGTH)?;
                let (d, latent) = rest.split_at_checked(decoder_len).ok_or(DATA_LENGTH)?;
                let encoder = Network::from_parts(header, ModelKind::Encoder, *encoder, e)?;
                let decoder = Network::from_parts(header, ModelKind::Decoder, *decoder, d)?;
                (Autoencoder::F32 { encoder, decoder }, latent)
            }
            AutoencoderSpec::Int8 { encoder, decoder } => {
                let encoder_len = int8_words(encoder)?;
                let decoder_len = int8_words(decoder)?;
                let (e, rest) = rest.split_at_checked(encoder_len).ok_or(DATA_LENGTH)?;
                let (d, latent) = rest.split_at_checked(decoder_len).ok_or(DATA_LENGTH)?;
                let encoder = QNetwork::from_parts(header, ModelKind::EncoderInt8, *encoder, e)?;
                let decoder = QNetwork::from_parts(header, ModelKind::DecoderInt8, *decoder, d)?;
                (Autoencoder::Int8 { encoder, decoder }, latent)
            }
        };
        let latent = Gmm::from_parts(header, ModelKind::Gmm, spec.latent, latent)?;
        let z = latent.dim();
        let consistent = autoencoder.ends() == [dim, z, z, dim] && latent.standardizer().is_none();
        if !consistent {
            return Err(Error::InvalidShape(Shape::NeuralPart));
        }
        if mean.iter().chain(inv_scale).any(|v| !v.is_finite())
            || spec.center.iter().any(|v| !v.is_finite())
        {
            return Err(Error::NonFiniteParameter);
        }
        if spec.scale.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
            return Err(Error::ParameterOutOfRange);
        }
        let width = dim.max(z).max(autoencoder.hidden_width());
        Ok(Self {
            mean,
            inv_scale,
            autoencoder,
            latent,
            center: spec.center,
            scale: spec.scale,
            width,
        })
    }

    /// The spec it was read from.
    fn spec(&self) -> NeuralSpec {
        NeuralSpec {
            autoencoder: match &self.autoencoder {
                Autoencoder::F32 { encoder, decoder } => AutoencoderSpec::F32 {
                    encoder: encoder.spec(),
                    decoder: decoder.spec(),
                },
                Autoencoder::Int8 { encoder, decoder } => AutoencoderSpec::Int8 {
                    encoder: encoder.spec(),
                    decoder: decoder.spec(),
                },
            },
            latent: self.latent.spec(),
            center: self.center,
            scale: self.scale,
        }
    }

    /// The terms for features `f` (standardized in place into `u`) whose
    /// density term is `nll`; buffers at least `self.width` long.
    fn terms<const N: usize>(
        &self,
        nll: f32,
        u: &mut [f32],
        latent: &mut [f32],
        reconstruction: &mut [f32],
        scratch: &mut Scratch<N>,
    ) -> Result<[f32; 3], Error> {
        for ((v, &m), &s) in u.iter_mut().zip(self.mean).zip(self.inv_scale) {
            *v = (*v - m) * s;
        }
        let z = latent.get_mut(..self.latent.dim()).ok_or(INTERNAL)?;
        let r = reconstruction.get_mut(..u.len()).ok_or(INTERNAL)?;
        self.autoencoder.run(u, z, r, scratch)?;
        let error = u
            .iter()
            .zip(r.iter())
            .fold(0.0f32, |acc, (&a, &b)| acc + (a - b) * (a - b));
        Ok([nll, error, -self.latent.log_density(z)?])
    }

    /// `sum_i (terms_i - center_i) / scale_i`, summed in order.
    fn combine(&self, terms: [f32; 3]) -> f32 {
        robust_sum(&terms, &self.center, &self.scale)
    }
}

/// Words an int8 network's spec claims (layers and prior), with checked
/// arithmetic, before any is read.
fn int8_words(spec: &QNetworkSpec) -> Result<usize, Error> {
    let layers = spec.layer_words();
    let prior = spec.prior.stored_values(usize::from(spec.latent));
    layers
        .zip(prior)
        .and_then(|(l, p)| l.checked_add(p))
        .ok_or(DATA_LENGTH)
}

#[cfg(feature = "alloc")]
pub use encode::{AutoencoderParams, NeuralParams, SecondDensityParams};
