//! One dispatch over every kind of model file: [`AnyModel`] parses whatever
//! kind a file holds and evaluates one row with it, so that a program (the
//! firmware, a command line, a C binding) handles every kind the same way.
//! Each kind's own type keeps its full interface.
//!
//! Adding a kind: a code in [`ModelKind`] (`format.rs`), a module with its
//! spec, `SCHEMA_KEY` and parser, and one arm in each `match` below.

use crate::format::{self, Header, ModelKind};
use crate::network::{self, Network, Scratch};
use crate::qnetwork::{self, QNetwork};
use crate::{Detector, Diffusion, Error, Gmm, detector, diffusion, gmm, learn};

impl ModelKind {
    /// The schema key a body of this kind must carry (the kind module's
    /// `SCHEMA_KEY`).
    pub fn schema_key(self) -> u32 {
        match self {
            ModelKind::Gmm | ModelKind::Kde => gmm::SCHEMA_KEY,
            ModelKind::Detector => detector::SCHEMA_KEY,
            ModelKind::Decoder | ModelKind::Encoder => network::SCHEMA_KEY,
            ModelKind::DecoderInt8 | ModelKind::EncoderInt8 => qnetwork::SCHEMA_KEY,
            ModelKind::Recipe => learn::SCHEMA_KEY,
            ModelKind::Diffusion => diffusion::SCHEMA_KEY,
        }
    }
}

/// A parsed model of any kind.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)] // a detector holds two networks' layer tables inline
pub enum AnyModel<'a> {
    /// A mixture or a kernel density estimate: one row in, its
    /// log-density out.
    Density(Gmm<'a>),
    /// An anomaly detector: one point or window in, its anomaly score out.
    Detector(Detector<'a>),
    /// A decoder or an encoder: one input vector in, one output vector out.
    Network(Network<'a>),
    /// An int8 decoder or encoder: one f32 input vector in (quantized on
    /// entry), one f32 output vector out (dequantized).
    QNetwork(QNetwork<'a>),
    /// A diffusion model: a noisy point `x_t` (D values) followed by its
    /// timestep `t` (an integer from 1 to T, as f32) in, the noise
    /// predictor's estimate (D values) out. Sampling is
    /// [`Diffusion::sample`].
    Diffusion(Diffusion<'a>),
}

impl<'a> AnyModel<'a> {
    /// Parses and validates a model file of any kind (4-byte aligned, see
    /// [`crate::Aligned`]), as that kind's own `from_bytes` does.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let file = format::open(bytes)?;
        // One out-of-line parser per kind, each returning into the caller's
        // result: inline, the kinds' models would share (and sum) one frame.
        match file.header().kind {
            ModelKind::Gmm | ModelKind::Kde => Self::density(file),
            ModelKind::Detector => Self::detector(file),
            ModelKind::Decoder | ModelKind::Encoder => Self::network(file),
            ModelKind::DecoderInt8 | ModelKind::EncoderInt8 => Self::qnetwork(file),
            ModelKind::Diffusion => Self::diffusion(file),
            // A recipe evaluates nothing until a `learn::Learner` has
            // turned it into a detector.
            found @ ModelKind::Recipe => Err(Error::WrongKind {
                expected: ModelKind::Detector,
                found,
            }),
        }
    }

    #[inline(never)]
    fn density(file: format::File<'a>) -> Result<Self, Error> {
        Gmm::from_file(file).map(Self::Density)
    }

    #[inline(never)]
    fn detector(file: format::File<'a>) -> Result<Self, Error> {
        Detector::from_file(file).map(Self::Detector)
    }

    #[inline(never)]
    fn network(file: format::File<'a>) -> Result<Self, Error> {
        Network::from_file(file, &[file.header().kind]).map(Self::Network)
    }

    #[inline(never)]
    fn qnetwork(file: format::File<'a>) -> Result<Self, Error> {
        QNetwork::from_file(file).map(Self::QNetwork)
    }

    #[inline(never)]
    fn diffusion(file: format::File<'a>) -> Result<Self, Error> {
        Diffusion::from_file(file).map(Self::Diffusion)
    }

    /// The kind of the file.
    pub fn kind(&self) -> ModelKind {
        self.header().kind
    }

    /// The checked file header.
    pub fn header(&self) -> Header {
        match self {
            AnyModel::Density(g) => g.header(),
            AnyModel::Detector(d) => d.density().header(),
            AnyModel::Network(n) => n.header(),
            AnyModel::QNetwork(n) => n.header(),
            AnyModel::Diffusion(m) => m.header(),
        }
    }

    /// Values one [`Self::eval`] call reads: a point, a window or a code.
    pub fn input_len(&self) -> usize {
        match self {
            AnyModel::Density(g) => g.dim(),
            AnyModel::Detector(d) => d.input_len(),
            AnyModel::Network(n) => n.input_dim(),
            AnyModel::QNetwork(n) => n.input_dim(),
            AnyModel::Diffusion(m) => m.dim() + 1,
        }
    }

    /// Values one [`Self::eval`] call writes: 1 for a density or a detector.
    pub fn output_len(&self) -> usize {
        match self {
            AnyModel::Network(n) => n.output_dim(),
            AnyModel::QNetwork(n) => n.output_dim(),
            AnyModel::Diffusion(m) => m.dim(),
            _ => 1,
        }
    }

    /// The width [`Self::eval`]'s [`Scratch`] must hold: a network's widest
    /// hidden layer; for an int8 network its widest tensor (input and
    /// output included, [`QNetwork::hidden_width`]) in bytes over four, as
    /// it runs in the f32 buffers' memory; 0 for the other kinds (a
    /// detector's neural part uses its own buffers, see [`Detector::score`]).
    pub fn scratch_width(&self) -> usize {
        match self {
            AnyModel::Network(n) => n.hidden_width(),
            AnyModel::QNetwork(n) => n.hidden_width().div_ceil(4),
            AnyModel::Diffusion(m) => m.predictor_width(),
            _ => 0,
        }
    }

    /// Bytes of the two buffers that every decode and sample call needs
    /// when the caller sizes them at run time ([`Network::forward_in`] and
    /// [`Network::sample_in`]: two of [`Network::sample_width`] f32 values;
    /// [`QNetwork::forward_in`] and [`QNetwork::sample_in`]: two of
    /// [`QNetwork::sample_width`] bytes, each rounded up to 4 bytes); 0 for
    /// densities and detectors. The C API's `tg_scratch_size`.
    pub fn scratch_bytes(&self) -> usize {
        match self {
            AnyModel::Network(n) => 2 * core::mem::size_of::<f32>() * n.sample_width(),
            AnyModel::QNetwork(n) => 2 * n.sample_width().next_multiple_of(4),
            AnyModel::Diffusion(m) => core::mem::size_of::<f32>() * m.work_len(),
            _ => 0,
        }
    }

    /// Multiply-accumulates of one [`Self::eval`] call (each kind's `macs`).
    pub fn macs(&self) -> usize {
        match self {
            AnyModel::Density(g) => g.macs(),
            AnyModel::Detector(d) => d.macs(),
            AnyModel::Network(n) => n.macs(),
            AnyModel::QNetwork(n) => n.macs(),
            AnyModel::Diffusion(m) => m.macs_per_step(),
        }
    }

    /// Number of `f32` values the file stores (for an int8 network, of
    /// 4-byte words: [`QNetwork::stored_words`]).
    pub fn stored_values(&self) -> usize {
        match self {
            AnyModel::Density(g) => g.stored_values(),
            AnyModel::Detector(d) => d.stored_values(),
            AnyModel::Network(n) => n.stored_values(),
            AnyModel::QNetwork(n) => n.stored_words(),
            AnyModel::Diffusion(m) => m.stored_values(),
        }
    }

    /// Evaluates one row: `output[0]` = the log-density of a density or the
    /// anomaly score of a detector, `output` = the network's output for a
    /// decoder or an encoder.
    ///
    /// Errors: `DimensionMismatch` for a wrong `input` or `output` length,
    /// `NonFiniteInput`, `TooWide` if `N` is under [`Self::scratch_width`]
    /// (or a detector's neural part is wider than
    /// [`detector::NEURAL_WIDTH`]).
    pub fn eval<const N: usize>(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut Scratch<N>,
    ) -> Result<(), Error> {
        match self {
            AnyModel::Network(n) => n.forward(input, output, scratch),
            // Int8 buffers of the same width, on the stack (2 N bytes).
            AnyModel::QNetwork(n) => {
                let (a, b) = scratch.as_int8();
                n.forward_in(input, output, a, b)
            }
            AnyModel::Density(g) => {
                *single(output)? = g.log_density(input)?;
                Ok(())
            }
            AnyModel::Detector(d) => {
                *single(output)? = d.score(input)?;
                Ok(())
            }
            AnyModel::Diffusion(m) => m.eval_in(input, output, &mut scratch.a, &mut scratch.b),
        }
    }
}

/// The one slot of a density's or a detector's output.
fn single(output: &mut [f32]) -> Result<&mut f32, Error> {
    match output {
        [slot] => Ok(slot),
        _ => Err(Error::DimensionMismatch {
            expected: 1,
            found: output.len(),
        }),
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    extern crate std;

    use std::vec;

    use super::*;
    use crate::gmm::{Covariance, GmmParams};
    use crate::network::{DecoderParams, LayerParams, PriorParams, Role};
    use crate::qnetwork::{FinalActivation, QLayerParams, QNetworkParams, QuantParams};
    use crate::{Activation, detector::Features};

    fn aligned(bytes: &[u8]) -> std::vec::Vec<u32> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        words
    }

    #[test]
    fn every_kind_evaluates_like_its_own_type() {
        let normal = GmmParams {
            covariance: Covariance::Diag,
            dim: 2,
            weights: &[1.0],
            means: &[0.0, 1.0],
            precisions_cholesky: &[1.0, 0.5],
            standardizer: None,
        };
        let network = |role| DecoderParams {
            role,
            latent: 1,
            layers: vec![LayerParams {
                inputs: if role == Role::Decoder { 1 } else { 2 },
                outputs: if role == Role::Decoder { 2 } else { 1 },
                activation: Activation::Tanh,
                weight: &[0.5, -2.0],
                bias: if role == Role::Decoder {
                    &[0.25, 0.0]
                } else {
                    &[0.25]
                },
            }],
            prior: PriorParams::None,
        };
        let qnetwork = |role| QNetworkParams {
            role,
            input: QuantParams {
                scale: 0.01,
                zero_point: 3,
            },
            layers: vec![QLayerParams {
                inputs: if role == Role::Decoder { 1 } else { 2 },
                outputs: if role == Role::Decoder { 2 } else { 1 },
                activation: Activation::Tanh,
                weight: &[50, -100],
                bias: if role == Role::Decoder {
                    &[25, 0]
                } else {
                    &[25]
                },
                multiplier: &[1 << 30],
                shift: &[-3],
                output: QuantParams {
                    scale: 0.05,
                    zero_point: -1,
                },
            }],
            prior: PriorParams::None,
            final_activation: FinalActivation::Int8,
        };
        let files = [
            (ModelKind::Gmm, normal.encode().unwrap()),
            (ModelKind::Kde, normal.encode_as(ModelKind::Kde).unwrap()),
            (
                ModelKind::Detector,
                normal
                    .encode_detector(ModelKind::Gmm, Features::Identity, 3.0)
                    .unwrap(),
            ),
            (ModelKind::Decoder, network(Role::Decoder).encode().unwrap()),
            (ModelKind::Encoder, network(Role::Encoder).encode().unwrap()),
            (
                ModelKind::DecoderInt8,
                qnetwork(Role::Decoder).encode().unwrap(),
            ),
            (
                ModelKind::EncoderInt8,
                qnetwork(Role::Encoder).encode().unwrap(),
            ),
        ];
        let mut scratch = Scratch::<4>::new();
        let mut qscratch = crate::qnetwork::QScratch::<4>::new();
        for (kind, bytes) in files {
            let words = aligned(&bytes);
            let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
            let model = AnyModel::from_bytes(file).unwrap();
            assert_eq!(model.kind(), kind);
            let x = [0.75f32, -0.5][..model.input_len()].to_vec();
            let mut got = vec![0.0f32; model.output_len()];
            model.eval(&x, &mut got, &mut scratch).unwrap();
            let mut want = vec![0.0f32; model.output_len()];
            match kind {
                ModelKind::Gmm | ModelKind::Kde => {
                    want[0] = Gmm::from_bytes(file).unwrap().log_density(&x).unwrap();
                    assert_eq!(model.macs(), 2 * 2);
                }
                ModelKind::Detector => {
                    want[0] = Detector::from_bytes(file).unwrap().score(&x).unwrap();
                }
                ModelKind::Decoder | ModelKind::Encoder => {
                    let net = Network::from_bytes(file).unwrap();
                    net.forward(&x, &mut want, &mut scratch).unwrap();
                    assert_eq!(model.macs(), 2);
                }
                ModelKind::DecoderInt8 | ModelKind::EncoderInt8 => {
                    let net = QNetwork::from_bytes(file).unwrap();
                    net.forward(&x, &mut want, &mut qscratch).unwrap();
                    assert_eq!(model.macs(), 2);
                    // Two 2-byte tensors fit one f32 word of each buffer.
                    assert_eq!(model.scratch_width(), 1);
                }
                ModelKind::Recipe | ModelKind::Diffusion => {
                    unreachable!("not among the kinds above")
                }
            }
            assert_eq!(got, want, "{kind}");
            // Wrong lengths are typed errors, not panics.
            let mut long = vec![0.0f32; model.output_len() + 1];
            assert!(matches!(
                model.eval(&x, &mut long, &mut scratch),
                Err(Error::DimensionMismatch { .. })
            ));
            assert!(matches!(
                model.eval(&[0.0; 3], &mut got, &mut scratch),
                Err(Error::DimensionMismatch { .. })
            ));
        }
    }
}
