//! The runtime's one error type.

use core::fmt;

use crate::format::ModelKind;

/// Everything that can go wrong when parsing a model file or scoring with it.
///
/// Every malformed input maps to one of these variants; the runtime never
/// panics. New variants may be added (`#[non_exhaustive]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed header plus the CRC.
    TooShort,
    /// The file does not start with the tinygen magic bytes.
    BadMagic,
    /// The file was written by an incompatible format version.
    UnsupportedVersion(u16),
    /// The header names a model kind this runtime does not know.
    UnknownKind(u16),
    /// The file holds a different kind of model than the caller asked for.
    WrongKind {
        /// The kind the caller asked for.
        expected: ModelKind,
        /// The kind found in the file.
        found: ModelKind,
    },
    /// The body was written with a different schema for this kind.
    SchemaMismatch,
    /// The header's body length disagrees with the buffer length.
    LengthMismatch,
    /// The CRC32 stored in the file does not match its contents.
    CrcMismatch {
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the header and body.
        computed: u32,
    },
    /// The postcard body could not be decoded, or has trailing bytes.
    Malformed,
    /// The weights are not 4-byte aligned in memory (see [`crate::Aligned`]).
    Misaligned,
    /// Dimensions or counts in the file are zero, too large, or inconsistent
    /// with the amount of weight data; the [`Shape`] says which check failed.
    InvalidShape(Shape),
    /// A stored parameter is NaN or infinite.
    NonFiniteParameter,
    /// An input value is NaN or infinite.
    NonFiniteInput,
    /// An input or output slice has the wrong length.
    DimensionMismatch {
        /// The length the model needs.
        expected: usize,
        /// The length that was given.
        found: usize,
    },
    /// The parameters given to an encoder are inconsistent, or a call's
    /// settings are out of range (a diffusion sampler's steps or eta, a
    /// timestep).
    InvalidParameters,
    /// A network needs wider activation buffers than the caller provides
    /// (see [`crate::network::Scratch`]).
    TooWide {
        /// The widest vector the model keeps in a scratch buffer.
        width: usize,
        /// The buffer width the caller fixed at compile time.
        max: usize,
    },
    /// A network has more layers than this runtime supports
    /// ([`crate::network::MAX_LAYERS`]).
    TooManyLayers {
        /// The number of layers in the file.
        layers: usize,
        /// The largest number this runtime accepts.
        max: usize,
    },
    /// A stored parameter is finite but outside its allowed range (a
    /// mixture weight that is not positive, a negative noise level, a
    /// non-zero entry above a Cholesky factor's diagonal).
    ParameterOutOfRange,
    /// The model stores no latent prior, so it cannot sample.
    NoPrior,
    /// A caller's buffer is shorter than the call needs (a model file
    /// being written, a learner's state or scores).
    BufferTooSmall {
        /// The elements the call needs.
        needed: usize,
        /// The elements the buffer holds.
        found: usize,
    },
    /// A learned covariance is not positive definite (collinear features
    /// with no regularisation; see [`crate::learn`]).
    NotPositiveDefinite,
    /// The on-device learner has not yet seen the inputs it needs.
    StillLearning {
        /// Inputs still to come (learning and calibration).
        remaining: usize,
    },
    /// A computed value overflowed to infinity or NaN from finite inputs
    /// (a diffusion model whose steps diverge).
    NonFiniteOutput,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort => write!(f, "model file too short"),
            Error::BadMagic => write!(f, "not a tinygen model file (bad magic)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported model format version {v}"),
            Error::UnknownKind(k) => write!(f, "unknown model kind {k}"),
            Error::WrongKind { expected, found } => {
                write!(f, "wrong model kind: expected {expected}, found {found}")
            }
            Error::SchemaMismatch => write!(f, "model body schema does not match this runtime"),
            Error::LengthMismatch => write!(f, "model body length does not match the file size"),
            Error::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: file says {stored:#010x}, contents give {computed:#010x} (corrupted file)"
            ),
            Error::Malformed => write!(f, "malformed model body"),
            Error::Misaligned => write!(f, "model bytes are not 4-byte aligned in memory"),
            Error::InvalidShape(shape) => write!(f, "invalid model file: {shape}"),
            Error::NonFiniteParameter => {
                write!(f, "model file contains NaN or infinite parameters")
            }
            Error::NonFiniteInput => write!(f, "input contains NaN or infinite values"),
            Error::DimensionMismatch { expected, found } => {
                write!(
                    f,
                    "dimension mismatch: expected {expected} values, got {found}"
                )
            }
            Error::InvalidParameters => write!(f, "inconsistent model parameters or call settings"),
            Error::TooWide { width, max } => write!(
                f,
                "network too wide: it needs activation buffers of {width} values, the caller provides {max}"
            ),
            Error::TooManyLayers { layers, max } => {
                write!(
                    f,
                    "network has {layers} layers, this runtime supports {max}"
                )
            }
            Error::ParameterOutOfRange => write!(f, "model parameter out of its allowed range"),
            Error::NoPrior => write!(f, "model has no latent prior to sample from"),
            Error::BufferTooSmall { needed, found } => {
                write!(
                    f,
                    "buffer too small: {needed} elements needed, {found} given"
                )
            }
            Error::NotPositiveDefinite => write!(
                f,
                "the learned covariance is not positive definite (collinear features: raise the regularisation)"
            ),
            Error::StillLearning { remaining } => {
                write!(
                    f,
                    "the detector is still learning: {remaining} inputs to go"
                )
            }
            Error::NonFiniteOutput => write!(
                f,
                "a computed value is not finite (the model's steps diverge)"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Which shape check of a model file failed (see [`Error::InvalidShape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Shape {
    /// A dimension, a count or a layer width is zero, or a network has no layers.
    Empty,
    /// The spec's counts overflow, or call for a different number of
    /// stored values than the file holds.
    DataLength,
    /// The weight data is not a whole number of `f32` values.
    PartialValue,
    /// A part has the wrong kind: a detector's density that is not a
    /// mixture or KDE, a network that is neither decoder nor encoder.
    PartKind,
    /// A network's first or last layer does not match its latent and data
    /// dimensions.
    NetworkEnds,
    /// Two consecutive layers' widths differ.
    LayerWidths,
    /// A circle or ring prior over a latent that is not two-dimensional.
    PriorDimension,
    /// A detector's window does not match its density's dimension (or
    /// asks for more than [`crate::detector::MAX_FEATURES`] features).
    Window,
    /// A detector's neural part does not match its density (dimensions,
    /// latent code, a standardized latent mixture).
    NeuralPart,
    /// A detector's second density does not match its first (dimension),
    /// or comes with a neural part.
    SecondDensity,
    /// A length the parser already checked failed again while evaluating:
    /// a bug in the runtime, never expected.
    Internal,
    /// A learning recipe's counts do not fit together (see
    /// [`crate::learn::RecipeSpec`]).
    Recipe,
    /// A diffusion model's parts do not fit together (an odd embedding, a
    /// predictor not from `D + E` to `D` or with a prior, a schedule not
    /// strictly decreasing in (0, 1)).
    Diffusion,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Empty => "a dimension, count or layer width is zero",
            Shape::DataLength => "the spec's counts do not match the stored values",
            Shape::PartialValue => "the weight data is not a whole number of f32 values",
            Shape::PartKind => "a part of the model has the wrong kind",
            Shape::NetworkEnds => {
                "the network's first or last layer does not match its latent and data dimensions"
            }
            Shape::LayerWidths => "consecutive layer widths differ",
            Shape::PriorDimension => "circle and ring priors need a 2-D latent",
            Shape::Window => "the window does not match the density's dimension",
            Shape::NeuralPart => "the neural part does not match the density",
            Shape::SecondDensity => {
                "the second density does not match the first, or comes with a neural part"
            }
            Shape::Internal => "an internal length check failed (a runtime bug)",
            Shape::Recipe => "the learning recipe's counts do not fit together",
            Shape::Diffusion => "the diffusion model's parts do not fit together",
        })
    }
}
