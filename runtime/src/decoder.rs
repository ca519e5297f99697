//! Decoders (latent code -> data point) and encoders (data point -> latent
//! code): a [`Network`] of the matching kind whose activations fit in
//! buffers of `MAX_WIDTH` values, checked once at parse time, so decoding
//! and sampling need no further width checks. Both dereference to their
//! [`Network`] for its dimensions, layers, prior and costs.
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
//! use tinygen_runtime::rand_core::SeedableRng;
//! use tinygen_runtime::{Activation, Aligned, Decoder, Scratch, Xoshiro128PlusPlus};
//!
//! // 2 -> 3 (relu) -> 1 (sigmoid), encoded on the host...
//! let bytes = DecoderParams {
//!     role: Role::Decoder,
//!     latent: 2,
//!     layers: vec![
//!         LayerParams { inputs: 2, outputs: 3, activation: Activation::Relu,
//!                       weight: &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], bias: &[0.0, 0.0, -1.0] },
//!         LayerParams { inputs: 3, outputs: 1, activation: Activation::Sigmoid,
//!                       weight: &[1.0, -1.0, 0.5], bias: &[0.0] },
//!     ],
//!     prior: PriorParams::Gaussian,
//! }
//! .encode()
//! .unwrap();
//! // ...read in place on the device (4-byte aligned, like every model).
//! let mut flash = Aligned([0u8; 256]);
//! flash.0[..bytes.len()].copy_from_slice(&bytes);
//! let decoder = Decoder::<8>::from_bytes(&flash.0[..bytes.len()]).unwrap();
//! let mut scratch = Scratch::new();
//! let mut out = [0.0f32];
//! decoder.decode(&[2.0, 1.0], &mut out, &mut scratch).unwrap();
//! // hidden = relu([2, 1, 2]) = [2, 1, 2]; output = sigmoid(2 - 1 + 1) = sigmoid(2)
//! // (micromath's approximate exp makes it about 1e-3 off)
//! let tolerance = if cfg!(feature = "micromath") { 2e-3 } else { 1e-6 };
//! assert!((out[0] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < tolerance);
//!
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(42);
//! decoder.sample(&mut rng, &mut out, &mut scratch).unwrap();
//! # }
//! ```

use core::ops::Deref;

use rand_core::RngCore;

use crate::Error;
use crate::format::ModelKind;
use crate::network::{Network, Scratch};

/// A decoder (latent code -> data point) whose activations fit in buffers
/// of `MAX_WIDTH` values, checked once at parse time.
///
/// `MAX_WIDTH` must hold the latent code (to sample) and every hidden
/// activation; the output goes straight into the caller's slice. For an
/// MNIST VAE 20 -> 400 -> 784, `Decoder<'_, 400>` with a 3.2 KB [`Scratch`].
#[derive(Debug, Clone, Copy)]
pub struct Decoder<'a, const MAX_WIDTH: usize> {
    network: Network<'a>,
}

impl<'a, const MAX_WIDTH: usize> Decoder<'a, MAX_WIDTH> {
    /// Parses and validates a decoder file without copying its weights
    /// (4-byte aligned, see [`crate::Aligned`]); `TooWide` if
    /// [`Self::max_width`] exceeds `MAX_WIDTH`, `WrongKind` for an encoder.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let network = Network::parse(bytes, &[ModelKind::Decoder])?;
        let width = network.sample_width();
        if width > MAX_WIDTH {
            return Err(Error::TooWide {
                width,
                max: MAX_WIDTH,
            });
        }
        Ok(Self { network })
    }

    /// The underlying network.
    pub fn network(&self) -> &Network<'a> {
        &self.network
    }

    /// The width the scratch buffers must hold: the latent dimension and
    /// every hidden layer's width, whichever is largest.
    pub fn max_width(&self) -> usize {
        self.network.sample_width()
    }

    /// Decodes the latent code `z` (length [`Network::latent_dim`]) into `out`
    /// (length [`Network::output_dim`]).
    ///
    /// Errors: `DimensionMismatch` for a wrong length, `NonFiniteInput`.
    pub fn decode(
        &self,
        z: &[f32],
        out: &mut [f32],
        scratch: &mut Scratch<MAX_WIDTH>,
    ) -> Result<(), Error> {
        self.network.forward(z, out, scratch)
    }

    /// Draws a latent code from the prior and decodes it into `out`: the
    /// same as `prior().sample(rng, z)` then `decode(z, out)`.
    ///
    /// Errors: `DimensionMismatch` for a wrong `out` length, `NoPrior`;
    /// nothing is drawn from `rng` then.
    pub fn sample<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f32],
        scratch: &mut Scratch<MAX_WIDTH>,
    ) -> Result<(), Error> {
        self.network
            .sample_in(rng, out, &mut scratch.a, &mut scratch.b)
    }
}

impl<'a, const MAX_WIDTH: usize> Deref for Decoder<'a, MAX_WIDTH> {
    type Target = Network<'a>;

    fn deref(&self) -> &Network<'a> {
        &self.network
    }
}

/// An encoder (data point -> latent code) whose hidden activations fit in
/// buffers of `MAX_WIDTH` values, checked once at parse time.
#[derive(Debug, Clone, Copy)]
pub struct Encoder<'a, const MAX_WIDTH: usize> {
    network: Network<'a>,
}

impl<'a, const MAX_WIDTH: usize> Encoder<'a, MAX_WIDTH> {
    /// Parses and validates an encoder file without copying its weights
    /// (4-byte aligned, see [`crate::Aligned`]); `TooWide` if
    /// [`Self::max_width`] exceeds `MAX_WIDTH`, `WrongKind` for a decoder.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let network = Network::parse(bytes, &[ModelKind::Encoder])?;
        if network.hidden_width() > MAX_WIDTH {
            return Err(Error::TooWide {
                width: network.hidden_width(),
                max: MAX_WIDTH,
            });
        }
        Ok(Self { network })
    }

    /// The underlying network.
    pub fn network(&self) -> &Network<'a> {
        &self.network
    }

    /// The width the scratch buffers must hold: the widest hidden layer.
    pub fn max_width(&self) -> usize {
        self.network.hidden_width()
    }

    /// Encodes `x` (length [`Network::input_dim`]) into its latent code `z`
    /// (length [`Network::latent_dim`]).
    ///
    /// Errors: `DimensionMismatch` for a wrong length, `NonFiniteInput`.
    pub fn encode(
        &self,
        x: &[f32],
        z: &mut [f32],
        scratch: &mut Scratch<MAX_WIDTH>,
    ) -> Result<(), Error> {
        self.network.forward(x, z, scratch)
    }
}

impl<'a, const MAX_WIDTH: usize> Deref for Encoder<'a, MAX_WIDTH> {
    type Target = Network<'a>;

    fn deref(&self) -> &Network<'a> {
        &self.network
    }
}

#[cfg(test)]
mod tests;
