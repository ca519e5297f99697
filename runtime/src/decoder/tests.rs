//! Unit tests of decoder and encoder files: round trips, numerics,
//! validation and typed errors.
#![cfg(feature = "alloc")]

extern crate std;

use std::vec;
use std::vec::Vec;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

use super::*;

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}
use crate::activation::Activation;
use crate::error::Shape;
use crate::format::{self, reseal};
use crate::network::{
    DecoderParams, Layer, LayerParams, MAX_LAYERS, PriorParams, Role, SCHEMA_KEY,
};
use crate::prior::{self, Prior};

/// A copy of `bytes` at a 4-aligned address (as `include_model!` gives on a device).
struct AlignedBuf {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBuf {
    fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4) + 1];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }

    /// A copy of `bytes` one byte past a 4-aligned address.
    fn misaligned(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4) + 1];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[1..bytes.len() + 1].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    fn shifted(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[1..self.len + 1]
    }
}

/// 2 -> 3 (relu) -> 2 (identity), values chosen so every product and sum is exact.
fn hand_network<'p>(prior: PriorParams<'p>) -> DecoderParams<'p> {
    DecoderParams {
        role: Role::Decoder,
        latent: 2,
        layers: vec![
            LayerParams {
                inputs: 2,
                outputs: 3,
                activation: Activation::Relu,
                weight: &[0.5, 0.25, -1.0, 0.5, 2.0, 1.0],
                bias: &[0.25, 0.0, -0.5],
            },
            LayerParams {
                inputs: 3,
                outputs: 2,
                activation: Activation::Identity,
                weight: &[4.0, 1.0, 1.0, -2.0, 0.5, 3.0],
                bias: &[1.0, 0.0],
            },
        ],
        prior,
    }
}

fn decoder<const W: usize>(file: &AlignedBuf) -> Result<Decoder<'_, W>, Error> {
    Decoder::from_bytes(file.bytes())
}

#[test]
fn a_hand_computed_network_gives_exact_outputs() {
    let file = AlignedBuf::new(&hand_network(PriorParams::Gaussian).encode().unwrap());
    let dec = decoder::<3>(&file).unwrap();
    assert_eq!(dec.latent_dim(), 2);
    assert_eq!(dec.output_dim(), 2);
    assert_eq!(dec.max_width(), 3);
    assert_eq!(dec.parameters(), 6 + 3 + 6 + 2);
    assert_eq!(dec.macs(), 6 + 6);
    assert_eq!(dec.layers().len(), 2);
    let mut scratch = Scratch::new();
    let mut out = [0.0f32; 2];
    // z = (1, -2): pre-activations (0.25, -2, -0.5) -> relu (0.25, 0, 0)
    // -> (1 + 4 * 0.25, -2 * 0.25) = (2, -0.5).
    dec.decode(&[1.0, -2.0], &mut out, &mut scratch).unwrap();
    assert_eq!(out, [2.0, -0.5]);
    // z = (2, 4): (2.25, 0, 7.5) -> (1 + 9 + 7.5, -4.5 + 22.5) = (17.5, 18).
    dec.decode(&[2.0, 4.0], &mut out, &mut scratch).unwrap();
    assert_eq!(out, [17.5, 18.0]);
    // Buffers wider than needed give the same answers.
    let wide = decoder::<64>(&file).unwrap();
    let mut scratch = Scratch::<64>::new();
    wide.decode(&[1.0, -2.0], &mut out, &mut scratch).unwrap();
    assert_eq!(out, [2.0, -0.5]);
}

#[test]
fn every_activation_runs_inside_a_network() {
    for activation in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        // 1 -> 1 -> 1: identity weight, then the activation under test.
        let bytes = DecoderParams {
            role: Role::Decoder,
            latent: 1,
            layers: vec![
                LayerParams {
                    inputs: 1,
                    outputs: 1,
                    activation,
                    weight: &[2.0],
                    bias: &[-1.0],
                },
                LayerParams {
                    inputs: 1,
                    outputs: 1,
                    activation: Activation::Identity,
                    weight: &[1.0],
                    bias: &[0.0],
                },
            ],
            prior: PriorParams::None,
        }
        .encode()
        .unwrap();
        let file = AlignedBuf::new(&bytes);
        let dec = decoder::<1>(&file).unwrap();
        for x in [-30.0f32, -2.0, -0.5, 0.0, 0.5, 0.75, 3.0, 30.0] {
            let mut out = [0.0];
            dec.decode(&[x], &mut out, &mut Scratch::new()).unwrap();
            assert_eq!(
                out[0],
                activation.apply(2.0 * x - 1.0) + 0.0,
                "{activation:?}"
            );
        }
    }
}

/// The documented numerics, written out naively.
fn reference(params: &DecoderParams<'_>, input: &[f32]) -> Vec<f32> {
    let mut x = input.to_vec();
    for layer in &params.layers {
        x = (0..layer.outputs)
            .map(|o| {
                let mut acc = layer.bias[o];
                for (i, &xi) in x.iter().enumerate() {
                    acc = layer.weight[o * layer.inputs + i].mul_add(xi, acc);
                }
                layer.activation.apply(acc)
            })
            .collect();
    }
    x
}

/// Deterministic pseudo-random weights in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|_| 2.0 * prior::unit(&mut r) - 1.0).collect()
}

struct Owned {
    weights: Vec<Vec<f32>>,
    biases: Vec<Vec<f32>>,
}

fn owned(widths: &[usize]) -> Owned {
    Owned {
        weights: widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| values(w[0] * w[1], i as u64))
            .collect(),
        biases: widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| values(w[1], 100 + i as u64))
            .collect(),
    }
}

fn params<'p>(
    role: Role,
    widths: &[usize],
    acts: &[Activation],
    o: &'p Owned,
    prior: PriorParams<'p>,
) -> DecoderParams<'p> {
    let latent = match role {
        Role::Decoder => widths[0],
        Role::Encoder => widths[widths.len() - 1],
    };
    DecoderParams {
        role,
        latent,
        layers: widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| LayerParams {
                inputs: w[0],
                outputs: w[1],
                activation: acts[i],
                weight: &o.weights[i],
                bias: &o.biases[i],
            })
            .collect(),
        prior,
    }
}

#[test]
fn decoders_and_encoders_round_trip() {
    // Widths that are not multiples of 4 exercise both the four-row blocks
    // and the remainder rows of the kernel.
    let widths = [3, 17, 23, 14];
    let acts = [Activation::LeakyRelu, Activation::Tanh, Activation::Sigmoid];
    let o = owned(&widths);
    let p = params(Role::Decoder, &widths, &acts, &o, PriorParams::Uniform);
    let file = AlignedBuf::new(&p.encode().unwrap());
    let dec = decoder::<23>(&file).unwrap();
    assert_eq!(dec.network().kind(), ModelKind::Decoder);
    assert_eq!(dec.prior().prior(), Prior::Uniform);
    assert_eq!(dec.max_width(), 23);
    assert_eq!(dec.macs(), 3 * 17 + 17 * 23 + 23 * 14);
    assert_eq!(dec.parameters(), dec.macs() + 17 + 23 + 14);
    let mut scratch = Scratch::new();
    let mut out = [0.0f32; 14];
    for seed in 0..20 {
        let z = values(3, 1000 + seed);
        dec.decode(&z, &mut out, &mut scratch).unwrap();
        assert_eq!(out.as_slice(), reference(&p, &z).as_slice());
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    // sample = prior sample, then decode.
    let (mut a, mut b) = (rng(77), rng(77));
    for _ in 0..10 {
        dec.sample(&mut a, &mut out, &mut scratch).unwrap();
        let mut z = [0.0; 3];
        dec.prior().sample(&mut b, &mut z).unwrap();
        assert_eq!(out.as_slice(), reference(&p, &z).as_slice());
    }

    // The same layers read as an encoder 12 -> 24 -> 16 -> 3 (transposed shapes).
    let widths = [12, 24, 16, 3];
    let acts = [Activation::Relu, Activation::Tanh, Activation::Identity];
    let o = owned(&widths);
    let p = params(Role::Encoder, &widths, &acts, &o, PriorParams::None);
    let file = AlignedBuf::new(&p.encode().unwrap());
    let enc = Encoder::<24>::from_bytes(file.bytes()).unwrap();
    assert_eq!(enc.network().kind(), ModelKind::Encoder);
    assert_eq!(
        (enc.input_dim(), enc.latent_dim(), enc.max_width()),
        (12, 3, 24)
    );
    assert_eq!(enc.parameters(), 12 * 24 + 24 + 24 * 16 + 16 + 16 * 3 + 3);
    assert_eq!(enc.macs(), 12 * 24 + 24 * 16 + 16 * 3);
    assert_eq!(enc.prior().prior(), Prior::None);
    let x = values(12, 5);
    let mut z = [0.0f32; 3];
    enc.encode(&x, &mut z, &mut Scratch::new()).unwrap();
    assert_eq!(z.as_slice(), reference(&p, &x).as_slice());
    // Kinds are not interchangeable.
    assert_eq!(
        Decoder::<24>::from_bytes(file.bytes()).unwrap_err(),
        Error::WrongKind {
            expected: ModelKind::Decoder,
            found: ModelKind::Encoder
        }
    );
    let net = Network::from_bytes(file.bytes()).unwrap();
    assert_eq!(
        (net.input_dim(), net.output_dim(), net.hidden_width()),
        (12, 3, 24)
    );
    assert_eq!(net.stored_values(), net.parameters());
    let mut z2 = [0.0f32; 3];
    net.forward(&x, &mut z2, &mut Scratch::<24>::new()).unwrap();
    assert_eq!(z, z2);
    assert_eq!(
        net.forward(&x, &mut z2, &mut Scratch::<23>::new()),
        Err(Error::TooWide { width: 24, max: 23 })
    );
}

#[test]
fn a_mixture_prior_round_trips_and_samples() {
    let weights = [1.0, 3.0]; // normalised to (0.25, 0.75) when written
    let means = [-10.0, 0.0, 10.0, 0.0];
    let cholesky = [1.0, 0.0, 0.5, 0.5, 0.1, 0.0, 0.0, 0.1];
    let p = hand_network(PriorParams::Mixture {
        weights: &weights,
        means: &means,
        cholesky: &cholesky,
    });
    let file = AlignedBuf::new(&p.encode().unwrap());
    let dec = decoder::<3>(&file).unwrap();
    let (w, m, l) = dec.prior().mixture().unwrap();
    assert_eq!(w, [0.25, 0.75]);
    assert_eq!(m, [-10.0, 0.0, 10.0, 0.0]);
    assert_eq!(l, [1.0, 0.0, 0.5, 0.5, 0.1, 0.0, 0.0, 0.1]);
    assert_eq!(dec.network().stored_values(), dec.parameters() + 2 + 4 + 8);
    let mut r = rng(3);
    let mut z = [0.0; 2];
    let left = (0..10_000)
        .filter(|_| {
            dec.prior().sample(&mut r, &mut z).unwrap();
            z[0] < 0.0
        })
        .count();
    assert!((2_300..2_700).contains(&left), "{left}");
}

#[test]
fn models_wider_than_the_buffers_are_rejected_at_parse_time() {
    let file = AlignedBuf::new(&hand_network(PriorParams::Gaussian).encode().unwrap());
    assert_eq!(
        decoder::<2>(&file).unwrap_err(),
        Error::TooWide { width: 3, max: 2 }
    );
    // The latent counts for a decoder (it is sampled into a buffer)...
    let widths = [5, 2, 4];
    let o = owned(&widths);
    let acts = [Activation::Relu, Activation::Identity];
    let p = params(Role::Decoder, &widths, &acts, &o, PriorParams::Gaussian);
    let file = AlignedBuf::new(&p.encode().unwrap());
    assert_eq!(
        decoder::<4>(&file).unwrap_err(),
        Error::TooWide { width: 5, max: 4 }
    );
    assert_eq!(decoder::<5>(&file).unwrap().max_width(), 5);
    // ...the output does not (it goes to the caller's slice), nor an encoder's input.
    let widths = [2, 3, 100];
    let o = owned(&widths);
    let p = params(Role::Decoder, &widths, &acts, &o, PriorParams::Gaussian);
    let file = AlignedBuf::new(&p.encode().unwrap());
    let dec = decoder::<3>(&file).unwrap();
    let mut out = [0.0; 100];
    dec.sample(&mut rng(1), &mut out, &mut Scratch::new())
        .unwrap();
    let widths = [100, 3, 2];
    let o = owned(&widths);
    let p = params(Role::Encoder, &widths, &acts, &o, PriorParams::None);
    let file = AlignedBuf::new(&p.encode().unwrap());
    assert_eq!(
        Encoder::<3>::from_bytes(file.bytes()).unwrap().max_width(),
        3
    );
    assert_eq!(
        Encoder::<2>::from_bytes(file.bytes()).unwrap_err(),
        Error::TooWide { width: 3, max: 2 }
    );
}

#[test]
fn wrong_lengths_and_inputs_are_typed_errors() {
    let file = AlignedBuf::new(&hand_network(PriorParams::Gaussian).encode().unwrap());
    let dec = decoder::<3>(&file).unwrap();
    let mut scratch = Scratch::new();
    let mut out = [0.0; 2];
    let mismatch = |expected, found| Err(Error::DimensionMismatch { expected, found });
    assert_eq!(
        dec.decode(&[1.0; 3], &mut out, &mut scratch),
        mismatch(2, 3)
    );
    assert_eq!(dec.decode(&[1.0], &mut out, &mut scratch), mismatch(2, 1));
    assert_eq!(
        dec.decode(&[1.0; 2], &mut [0.0; 3], &mut scratch),
        mismatch(2, 3)
    );
    assert_eq!(dec.decode(&[1.0; 2], &mut [], &mut scratch), mismatch(2, 0));
    assert_eq!(
        dec.decode(&[1.0, f32::NAN], &mut out, &mut scratch),
        Err(Error::NonFiniteInput)
    );
    assert_eq!(
        dec.decode(&[f32::INFINITY, 1.0], &mut out, &mut scratch),
        Err(Error::NonFiniteInput)
    );
    let mut r = rng(0);
    assert_eq!(
        dec.sample(&mut r, &mut [0.0; 1], &mut scratch),
        mismatch(2, 1)
    );
    let file = AlignedBuf::new(&hand_network(PriorParams::None).encode().unwrap());
    let dec = decoder::<3>(&file).unwrap();
    assert_eq!(
        dec.sample(&mut r, &mut out, &mut scratch),
        Err(Error::NoPrior)
    );
}

#[test]
fn corrupted_truncated_and_misaligned_files_are_rejected() {
    let bytes = hand_network(PriorParams::Ring { noise: 0.01 })
        .encode()
        .unwrap();
    let file = AlignedBuf::new(&bytes);
    assert!(decoder::<3>(&file).is_ok());
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let err = decoder::<3>(&AlignedBuf::new(&bad)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::CrcMismatch { .. }
                        | Error::BadMagic
                        | Error::UnsupportedVersion(_)
                        | Error::UnknownKind(_)
                        | Error::WrongKind { .. }
                        | Error::LengthMismatch
                ),
                "byte {i}: {err:?}"
            );
        }
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(
        decoder::<3>(&AlignedBuf::new(&bad)).unwrap_err(),
        Error::BadMagic
    );
    for len in 0..bytes.len() {
        assert!(
            decoder::<3>(&AlignedBuf::new(&bytes[..len])).is_err(),
            "{len}"
        );
    }
    assert_eq!(
        Decoder::<3>::from_bytes(AlignedBuf::misaligned(&bytes).shifted()).unwrap_err(),
        Error::Misaligned
    );
}

/// A spec with an unchecked layer list, to write files the encoder refuses.
#[derive(serde::Serialize)]
struct RawSpec {
    latent: u16,
    data: u16,
    layers: Vec<Layer>,
    prior: Prior,
}

fn raw(layers: &[(u16, u16)], latent: u16, data: u16, prior: Prior, values: &[f32]) -> Vec<u8> {
    let spec = RawSpec {
        latent,
        data,
        layers: layers
            .iter()
            .map(|&(inputs, outputs)| Layer {
                inputs,
                outputs,
                activation: Activation::Relu,
            })
            .collect(),
        prior,
    };
    format::write(ModelKind::Decoder, SCHEMA_KEY, &spec, values).unwrap()
}

#[test]
fn parsing_validates_shapes_and_values() {
    let parse = |bytes: Vec<u8>| decoder::<64>(&AlignedBuf::new(&bytes)).map(|_| ());
    // A valid raw file, to show the others fail for their one defect.
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Gaussian, &[0.5; 13])),
        Ok(())
    );
    let shape = |s| Err(Error::InvalidShape(s));
    assert_eq!(
        parse(raw(&[], 2, 1, Prior::Gaussian, &[])),
        shape(Shape::Empty)
    );
    assert_eq!(
        parse(raw(&[(2, 3), (4, 1)], 2, 1, Prior::Gaussian, &[0.5; 16])),
        shape(Shape::LayerWidths)
    );
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 3, 1, Prior::Gaussian, &[0.5; 13])),
        shape(Shape::NetworkEnds)
    );
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 2, Prior::Gaussian, &[0.5; 13])),
        shape(Shape::NetworkEnds)
    );
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Gaussian, &[0.5; 12])),
        shape(Shape::DataLength)
    );
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Gaussian, &[0.5; 14])),
        shape(Shape::DataLength)
    );
    assert_eq!(
        parse(raw(&[(0, 0)], 0, 0, Prior::Gaussian, &[])),
        shape(Shape::Empty)
    );
    assert_eq!(
        parse(raw(&[(2, 0), (0, 1)], 2, 1, Prior::Gaussian, &[0.5; 1])),
        shape(Shape::Empty)
    );
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Circle, &[0.5; 13])),
        Ok(())
    );
    assert_eq!(
        parse(raw(&[(3, 3), (3, 1)], 3, 1, Prior::Circle, &[0.5; 16])),
        shape(Shape::PriorDimension)
    );
    let mixture = Prior::Mixture { components: 2 };
    // 13 network values + 2 weights + 4 means + 8 Cholesky entries.
    let mut values = [0.5f32; 27];
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, mixture, &values)),
        Err(Error::ParameterOutOfRange)
    );
    for i in [13 + 2 + 4 + 1, 13 + 2 + 4 + 5] {
        values[i] = 0.0; // upper triangles
    }
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, mixture, &values)),
        Ok(())
    );
    values[13] = -1.0;
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, mixture, &values)),
        Err(Error::ParameterOutOfRange)
    );
    values[13] = 0.5;
    values[4] = f32::NAN;
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, mixture, &values)),
        Err(Error::NonFiniteParameter)
    );
    values[4] = 0.5;
    values[20] = f32::INFINITY;
    assert_eq!(
        parse(raw(&[(2, 3), (3, 1)], 2, 1, mixture, &values)),
        Err(Error::NonFiniteParameter)
    );
    // Too many layers: typed, whatever the data.
    let deep = [(1u16, 1u16); MAX_LAYERS + 1];
    assert_eq!(
        parse(raw(
            &deep,
            1,
            1,
            Prior::Gaussian,
            &[0.5; 2 * (MAX_LAYERS + 1)]
        )),
        Err(Error::TooManyLayers {
            layers: MAX_LAYERS + 1,
            max: MAX_LAYERS
        })
    );
    assert_eq!(
        parse(raw(
            &deep[1..],
            1,
            1,
            Prior::Gaussian,
            &[0.5; 2 * MAX_LAYERS]
        )),
        Ok(())
    );
    // A body with trailing garbage after a valid spec is malformed, and a
    // file of another kind is the wrong kind.
    let gmm = crate::gmm::GmmParams {
        covariance: crate::gmm::Covariance::Diag,
        dim: 1,
        weights: &[1.0],
        means: &[0.0],
        precisions_cholesky: &[1.0],
        standardizer: None,
    }
    .encode()
    .unwrap();
    assert_eq!(
        parse(gmm),
        Err(Error::WrongKind {
            expected: ModelKind::Decoder,
            found: ModelKind::Gmm
        })
    );
}

#[test]
fn the_encoder_refuses_inconsistent_parameters() {
    let invalid = Err(Error::InvalidParameters);
    let mut p = hand_network(PriorParams::Gaussian);
    assert!(p.encode().is_ok());
    p.latent = 3;
    assert_eq!(p.encode(), invalid);
    let mut p = hand_network(PriorParams::Gaussian);
    p.layers[1].inputs = 4;
    assert_eq!(p.encode(), invalid);
    let mut p = hand_network(PriorParams::Gaussian);
    p.layers[0].weight = &[0.5; 5];
    assert_eq!(p.encode(), invalid);
    let mut p = hand_network(PriorParams::Gaussian);
    p.layers[1].bias = &[0.5; 3];
    assert_eq!(p.encode(), invalid);
    let mut p = hand_network(PriorParams::Gaussian);
    p.layers[1].bias = &[0.5, f32::NAN];
    assert_eq!(p.encode(), invalid);
    let mut p = hand_network(PriorParams::Gaussian);
    p.layers.clear();
    assert_eq!(p.encode(), invalid);
    assert!(hand_network(PriorParams::Circle).encode().is_ok());
    assert_eq!(
        hand_network(PriorParams::Ring { noise: -1.0 }).encode(),
        invalid
    );
    assert_eq!(
        hand_network(PriorParams::Ring { noise: f32::NAN }).encode(),
        invalid
    );
    let mixture = |weights, cholesky| {
        hand_network(PriorParams::Mixture {
            weights,
            means: &[0.0, 0.0],
            cholesky,
        })
        .encode()
    };
    assert!(mixture(&[2.0], &[1.0, 0.0, 0.0, 1.0]).is_ok());
    assert_eq!(mixture(&[-2.0], &[1.0, 0.0, 0.0, 1.0]), invalid);
    assert_eq!(mixture(&[0.0], &[1.0, 0.0, 0.0, 1.0]), invalid);
    assert_eq!(mixture(&[1.0], &[1.0, 0.5, 0.0, 1.0]), invalid);
    assert_eq!(mixture(&[1.0], &[1.0, 0.0, 1.0]), invalid);
    assert_eq!(mixture(&[1.0, 1.0], &[1.0, 0.0, 0.0, 1.0]), invalid);
    assert_eq!(mixture(&[1.0], &[1e300, 0.0, 0.0, 1.0]), invalid);
    let mut p = hand_network(PriorParams::Gaussian);
    let one = LayerParams {
        inputs: 2,
        outputs: 2,
        activation: Activation::Tanh,
        weight: &[1.0, 0.0, 0.0, 1.0],
        bias: &[0.0, 0.0],
    };
    p.layers = vec![one; MAX_LAYERS];
    assert!(p.encode().is_ok());
    p.layers.push(one);
    assert_eq!(p.encode(), invalid);
}

/// Parses as every network type and, when that works, runs every entry point.
fn exercise(bytes: &[u8], input: &[f32]) {
    let file = AlignedBuf::new(bytes);
    let take = |n: usize| -> Vec<f32> { input.iter().cycle().take(n).copied().collect() };
    let mut r = rng(1);
    if let Ok(dec) = Decoder::<32>::from_bytes(file.bytes()) {
        let mut scratch = Scratch::new();
        let mut out = vec![0.0; dec.output_dim()];
        let z = take(dec.latent_dim());
        let _ = dec.decode(&z, &mut out, &mut scratch);
        let _ = dec.decode(&z[1..], &mut out, &mut scratch);
        let _ = dec.sample(&mut r, &mut out, &mut scratch);
        let _ = dec.sample(&mut r, &mut out[1..], &mut scratch);
        let mut z = z;
        let _ = dec.prior().sample(&mut r, &mut z);
        let _ = (dec.macs(), dec.parameters(), dec.max_width());
    }
    if let Ok(enc) = Encoder::<32>::from_bytes(file.bytes()) {
        let mut z = vec![0.0; enc.latent_dim()];
        let _ = enc.encode(&take(enc.input_dim()), &mut z, &mut Scratch::new());
    }
    if let Ok(net) = Network::from_bytes(file.bytes()) {
        let mut out = vec![0.0; net.output_dim()];
        let _ = net.forward(&take(net.input_dim()), &mut out, &mut Scratch::<4>::new());
        let _ = net.stored_values();
    }
}

fn valid_files() -> Vec<Vec<u8>> {
    let weights = [0.5, 0.5];
    let means = [0.0, 1.0, 1.0, 0.0];
    let cholesky = [1.0, 0.0, 0.5, 0.5, 0.1, 0.0, 0.0, 0.1];
    let mut files: Vec<Vec<u8>> = [
        PriorParams::Gaussian,
        PriorParams::Circle,
        PriorParams::Ring { noise: 0.01 },
        PriorParams::Mixture {
            weights: &weights,
            means: &means,
            cholesky: &cholesky,
        },
    ]
    .into_iter()
    .map(|prior| hand_network(prior).encode().unwrap())
    .collect();
    let mut enc = hand_network(PriorParams::None);
    enc.role = Role::Encoder;
    enc.latent = 2;
    files.push(enc.encode().unwrap());
    files
}

use proptest::prelude::*;

proptest! {
    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        x in prop::collection::vec(prop_oneof![any::<f32>(), -5.0f32..5.0], 1..4),
        kind in 4u8..6,
    ) {
        exercise(&bytes, &x);
        let mut with_header = b"TGM\0\x01\0".to_vec();
        with_header.extend([kind, 0]);
        with_header.extend(SCHEMA_KEY.to_le_bytes());
        with_header.extend([0; 4]);
        with_header.extend(&bytes);
        with_header.extend([0; 4]);
        reseal(&mut with_header);
        exercise(&with_header, &x);
    }

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..5,
        mutations in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        fix in any::<bool>(),
        x in prop::collection::vec(prop_oneof![any::<f32>(), -5.0f32..5.0], 1..4),
    ) {
        let mut bytes = valid_files()[which].clone();
        for (at, byte, op) in mutations {
            let n = bytes.len();
            match op {
                0 if n > 0 => bytes[at % n] = byte,
                1 => bytes.truncate(at % (n + 1)),
                2 => bytes.insert(at % (n + 1), byte),
                _ => {}
            }
        }
        if fix {
            reseal(&mut bytes);
        }
        exercise(&bytes, &x);
    }
}

/// The run-time-sized calls (`Network::forward_in`, `sample_in`) give the
/// const-generic calls' results and check their buffers: too short is
/// `TooWide` (nothing drawn), an encoder does not sample.
#[test]
fn buffers_sized_at_run_time_give_the_same_results_and_are_checked() {
    let file = AlignedBuf::new(&hand_network(PriorParams::Gaussian).encode().unwrap());
    let net = Network::from_bytes(file.bytes()).unwrap();
    // 2 -> 3 -> 2: the hidden layer is 3 wide, the latent 2.
    assert_eq!((net.hidden_width(), net.sample_width()), (3, 3));
    let z = [1.5f32, -0.5];
    let (mut want, mut got) = ([0.0f32; 2], [0.0f32; 2]);
    net.forward(&z, &mut want, &mut Scratch::<3>::new())
        .unwrap();
    let (mut a, mut b) = ([0.0f32; 3], [0.0f32; 3]);
    net.forward_in(&z, &mut got, &mut a, &mut b).unwrap();
    assert_eq!(got, want);
    assert_eq!(
        net.forward_in(&z, &mut got, &mut a[..2], &mut b),
        Err(Error::TooWide { width: 3, max: 2 })
    );
    let mut host = rng(3);
    decoder::<3>(&file)
        .unwrap()
        .sample(&mut host, &mut want, &mut Scratch::new())
        .unwrap();
    let mut device = rng(3);
    // Too short: an error, and the generator untouched.
    assert_eq!(
        net.sample_in(&mut device, &mut got, &mut a, &mut b[..2]),
        Err(Error::TooWide { width: 3, max: 2 })
    );
    net.sample_in(&mut device, &mut got, &mut a, &mut b)
        .unwrap();
    assert_eq!(got, want);
    let mut encoder = hand_network(PriorParams::None);
    encoder.role = Role::Encoder;
    encoder.layers.reverse();
    for l in &mut encoder.layers {
        core::mem::swap(&mut l.inputs, &mut l.outputs);
    }
    encoder.layers[0].weight = &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    encoder.layers[0].bias = &[0.0, 0.0, 0.0];
    encoder.layers[1].weight = &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    encoder.layers[1].bias = &[0.0, 0.0];
    let file = AlignedBuf::new(&encoder.encode().unwrap());
    let net = Network::from_bytes(file.bytes()).unwrap();
    assert!(matches!(
        net.sample_in(&mut device, &mut got, &mut a, &mut b),
        Err(Error::WrongKind { .. })
    ));
}
