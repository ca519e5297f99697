//! Neural generative models trained with candle: autoencoders (plain and
//! class-supervised), VAEs, sliced-Wasserstein autoencoders (also
//! semi-supervised) and GANs, plus PCA as their linear closed-form relative.
//!
//! A run lives in a folder (see [`run`]): its configuration, checkpoint,
//! metrics and plots; [`fit`] creates, trains and finishes it.

pub mod adam;
pub mod config;
pub mod diffusion;
pub mod export;
pub mod fit;
pub mod gan;
pub mod metrics;
pub mod network;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod pca;
pub mod plots;
pub mod prior;
pub mod quality;
pub mod quantize;
pub mod run;
pub mod train;
pub mod vae_step;
