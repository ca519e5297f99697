//! tinygen's runtime: parses model files in place and scores or samples with
//! them, with no heap, no copies of the weights and no panics.
//!
//! * [`format`]: the `.tgm` model file (header, postcard body, CRC32),
//!   specified in `runtime/FORMAT.md`.
//! * [`model`]: [`AnyModel`], one dispatch over every kind of file.
//! * [`gmm`]: Gaussian mixture (and KDE) log-density and responsibilities.
//! * [`detector`]: anomaly score and alarm (window features, density, threshold).
//! * [`network`]: MLP networks (spec, validation, forward pass), with the
//!   [`activation`]s applied after each layer.
//! * [`decoder`]: decoders (latent code -> data point) and encoders, with
//!   buffers sized at compile time; sampling from the prior.
//! * [`prior`]: latent priors (Gaussian, uniform, disc, ring, Gaussian
//!   mixture) and the exact sampling recipe, on any `rand_core` generator.
//! * [`features`]: window statistics shared by the trainer and the device.
//! * [`math`]: exp/ln/tanh (libm, or micromath with the `micromath`
//!   feature), a stable sigmoid and a stable log-sum-exp.
//!
//! Features: `alloc` (model encoding, for the trainer), `micromath` (fast
//! approximate exp/ln), `defmt` (`defmt::Format` on public types).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_endian = "little"))]
compile_error!(
    "tinygen-runtime reads little-endian weights in place and needs a little-endian target"
);

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod activation;
pub mod decoder;
mod dense;
pub mod detector;
mod error;
pub mod features;
pub mod format;
pub mod gmm;
pub mod math;
pub mod model;
pub mod network;
pub mod prior;

pub use activation::Activation;
pub use decoder::{Decoder, Encoder};
pub use detector::Detector;
pub use error::Error;
pub use format::{Aligned, ModelKind};
pub use gmm::Gmm;
pub use model::AnyModel;
pub use network::{Network, Scratch};
/// The random-number traits sampling takes (`rand_core` 0.9).
pub use rand_core;
/// The recommended generator for sampling: xoshiro128++ from `rand_xoshiro`
/// (seed it with [`rand_core::SeedableRng::seed_from_u64`]).
pub use rand_xoshiro::Xoshiro128PlusPlus;
