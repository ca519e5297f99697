//! tinygen's runtime: parses model files in place and scores or samples with
//! them, with no heap, no copies of the weights and no panics.
//!
//! * [`format`]: the `.tgm` model file (header, postcard body, CRC32).
//! * [`gmm`]: Gaussian mixture (and KDE) log-density and responsibilities.
//! * [`detector`]: anomaly score and alarm (window features, density, threshold).
//! * [`features`]: window statistics shared by the trainer and the device.
//! * [`math`]: exp/ln (libm, or micromath with the `micromath` feature) and
//!   a stable log-sum-exp.
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

pub mod detector;
mod error;
pub mod features;
pub mod format;
pub mod gmm;
pub mod math;

pub use detector::Detector;
pub use error::Error;
pub use format::{Aligned, ModelKind};
pub use gmm::Gmm;
