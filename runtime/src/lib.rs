#![doc = include_str!("../README.md")]
#![no_std]
// No unsafe code, except the assembly kernels: the int8 DSP inner loop
// (`quant/dsp.rs`), and on Arm FPUs the f32 dense layer (`dense/vfp.rs`)
// and the full-covariance distance (`gmm/vfp.rs`).
#![deny(unsafe_code)]
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
pub mod diffusion;
mod error;
pub mod features;
pub mod format;
pub mod gmm;
pub mod learn;
pub mod math;
pub mod model;
pub mod network;
pub mod prior;
pub mod qnetwork;
pub mod quant;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use activation::Activation;
pub use decoder::{Decoder, Encoder};
pub use detector::Detector;
pub use diffusion::Diffusion;
pub use error::{Error, Shape};
pub use format::{Aligned, ModelKind};
pub use gmm::Gmm;
pub use model::AnyModel;
pub use network::{Network, Scratch};
pub use qnetwork::{QNetwork, QScratch};
/// The random-number traits sampling takes (`rand_core` 0.9).
pub use rand_core;
/// The recommended generator for sampling: xoshiro128++ from `rand_xoshiro`
/// (seed it with [`rand_core::SeedableRng::seed_from_u64`]).
pub use rand_xoshiro::Xoshiro128PlusPlus;
