//! The runtime never panics on any input: random bytes, and randomly mutated
//! valid model files (with the CRC and length fixed up afterwards, so that
//! the mutations reach the body decoder and the validation behind it).
//! `PROPTEST_CASES` sets the number of cases (CI runs tens of thousands).

use proptest::prelude::*;
use tinygen::density::gmm::{EmOptions, GaussianMixture, em_from_responsibilities};
use tinygen::host::AlignedBytes;
use tinygen_runtime::detector::{DetectorScratch, Features};
use tinygen_runtime::format::reseal;
use tinygen_runtime::gmm::Covariance;
use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{Activation, Network, Scratch};
use tinygen_runtime::{Decoder, Detector, Encoder, Error, Gmm, ModelKind, Xoshiro128PlusPlus};

fn valid_models() -> Vec<Vec<u8>> {
    let x = nalgebra::DMatrix::from_fn(40, 3, |i, j| {
        ((i * 7 + j * 3) % 11) as f64 + (i % 3) as f64 * 4.0
    });
    let mut resp = nalgebra::DMatrix::zeros(40, 2);
    for i in 0..40 {
        resp[(i, i % 2)] = 1.0;
    }
    [
        Covariance::Full,
        Covariance::Tied,
        Covariance::Diag,
        Covariance::Spherical,
    ]
    .into_iter()
    .map(|covariance| {
        let opts = EmOptions {
            components: 2,
            covariance,
            max_iter: 5,
            ..EmOptions::default()
        };
        let (model, _): (GaussianMixture, _) =
            em_from_responsibilities(&x, &resp, &opts, &mut |_, _, _| {}).unwrap();
        model.params(None).encode().unwrap()
    })
    .chain(
        [
            Features::Identity,
            Features::WindowStats {
                channels: 3,
                length: 5,
            },
        ]
        .map(|features| {
            // A detector over 3 raw values, and one over windows (3 channels -> 12 features).
            let dim = if features == Features::Identity {
                3
            } else {
                12
            };
            let x = nalgebra::DMatrix::from_fn(40, dim, |i, j| {
                ((i * 5 + j * 7) % 13) as f64 + j as f64
            });
            let opts = EmOptions {
                components: 1,
                ..EmOptions::default()
            };
            let (model, _) = tinygen::density::gmm::fit_em(&x, &opts, &mut |_, _, _| {}).unwrap();
            model
                .params(None)
                .encode_detector(ModelKind::Gmm, features, 3.0)
                .unwrap()
        }),
    )
    .chain(network_models())
    .chain(neural_detectors())
    .collect()
}

/// The golden detectors with a neural part: f32 (`detector/6`, and as
/// `detector/2`, `detector/3` and `detector/5` wrote it) and int8; and the
/// golden detector with a second density.
fn neural_detectors() -> Vec<Vec<u8>> {
    [
        &include_bytes!("../../runtime/tests/golden/detector.tgm")[..],
        &include_bytes!("../../runtime/tests/golden/detector_int8.tgm")[..],
        &include_bytes!("../../runtime/tests/golden/detector_v2.tgm")[..],
        &include_bytes!("../../runtime/tests/golden/detector_v3.tgm")[..],
        &include_bytes!("../../runtime/tests/golden/detector_v5.tgm")[..],
        &include_bytes!("../../runtime/tests/golden/detector_pair.tgm")[..],
    ]
    .map(<[u8]>::to_vec)
    .into()
}

/// Decoders 3 -> 8 -> 4 with each kind of prior, and an encoder 4 -> 8 -> 3.
fn network_models() -> Vec<Vec<u8>> {
    let w1: Vec<f32> = (0..24).map(|i| (i as f32 - 12.0) / 10.0).collect();
    let b1: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
    let w2: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 20.0).collect();
    let b2 = [0.1f32, -0.1, 0.2, -0.2];
    let weights = [0.25, 0.75];
    let means = [0.0, 1.0, 2.0, 1.0, 0.0, -1.0];
    let cholesky = [
        1.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.1, 0.2, 0.3, 0.1, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.1,
    ];
    let decoder = |prior| DecoderParams {
        role: Role::Decoder,
        latent: 3,
        layers: vec![
            LayerParams {
                inputs: 3,
                outputs: 8,
                activation: Activation::LeakyRelu,
                weight: &w1,
                bias: &b1,
            },
            LayerParams {
                inputs: 8,
                outputs: 4,
                activation: Activation::Sigmoid,
                weight: &w2,
                bias: &b2,
            },
        ],
        prior,
    };
    let mut models: Vec<Vec<u8>> = [
        PriorParams::Gaussian,
        PriorParams::Uniform,
        PriorParams::Mixture {
            weights: &weights,
            means: &means,
            cholesky: &cholesky,
        },
    ]
    .into_iter()
    .map(|prior| decoder(prior).encode().unwrap())
    .collect();
    let encoder = DecoderParams {
        role: Role::Encoder,
        latent: 3,
        layers: vec![
            LayerParams {
                inputs: 4,
                outputs: 8,
                activation: Activation::Tanh,
                weight: &w2,
                bias: &b1,
            },
            LayerParams {
                inputs: 8,
                outputs: 3,
                activation: Activation::Relu,
                weight: &w1,
                bias: &b2[..3],
            },
        ],
        prior: PriorParams::None,
    };
    models.push(encoder.encode().unwrap());
    models
}

/// Parses and, if that succeeds, exercises every scoring entry point.
fn exercise(bytes: &[u8], input: &[f32]) {
    let file = AlignedBytes::new(bytes);
    if let Ok(gmm) = Gmm::from_bytes(file.as_bytes()) {
        let d = gmm.dim();
        let x: Vec<f32> = input.iter().cycle().take(d).copied().collect();
        let _ = gmm.log_density(&x);
        let _ = gmm.log_density(&x[..d.saturating_sub(1)]);
        let mut resp = vec![0.0; gmm.components()];
        let _ = gmm.log_responsibilities(&x, &mut resp);
        let _ = gmm.log_responsibilities(&x, &mut resp[..gmm.components() - 1]);
        let mut out = [0.0; 2];
        let batch: Vec<f32> = x.iter().chain(&x).copied().collect();
        let _ = gmm.log_density_batch(&batch, &mut out);
        let _ = gmm.standardizer();
    }
    if let Ok(detector) = Detector::from_bytes(file.as_bytes()) {
        let x: Vec<f32> = input
            .iter()
            .cycle()
            .take(detector.input_len())
            .copied()
            .collect();
        let _ = detector.score(&x);
        let _ = detector.is_anomaly(&x);
        let _ = detector.score(&x[..x.len() - 1]);
        let _ = detector.score_in(&x, &mut DetectorScratch::<2>::new());
        let _ = detector.terms_in(&x, &mut DetectorScratch::<8>::new());
        let _ = detector.density_terms(&x);
        let _ = detector.density_terms(&x[1..]);
    }
    let take = |n: usize| -> Vec<f32> { input.iter().cycle().take(n).copied().collect() };
    if let Ok(decoder) = Decoder::<16>::from_bytes(file.as_bytes()) {
        let mut scratch = Scratch::new();
        let z = take(decoder.latent_dim());
        let mut out = vec![0.0; decoder.output_dim()];
        let _ = decoder.decode(&z, &mut out, &mut scratch);
        let _ = decoder.decode(&z[1..], &mut out, &mut scratch);
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        let _ = decoder.sample(&mut rng, &mut out, &mut scratch);
        let _ = decoder.sample(&mut rng, &mut out[1..], &mut scratch);
    }
    if let Ok(encoder) = Encoder::<16>::from_bytes(file.as_bytes()) {
        let mut z = vec![0.0; encoder.latent_dim()];
        let _ = encoder.encode(&take(encoder.input_dim()), &mut z, &mut Scratch::new());
    }
    if let Ok(network) = Network::from_bytes(file.as_bytes()) {
        let mut out = vec![0.0; network.output_dim()];
        let _ = network.forward(
            &take(network.input_dim()),
            &mut out,
            &mut Scratch::<4>::new(),
        );
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Set(i, b) if !bytes.is_empty() => {
            let n = bytes.len();
            bytes[i % n] = b;
        }
        Mutation::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
        Mutation::Insert(i, b) => {
            let n = bytes.len();
            bytes.insert(i % (n + 1), b);
        }
        _ => {}
    }
}

fn input() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        prop_oneof![
            any::<f32>(),
            -10.0f32..10.0,
            Just(f32::NAN),
            Just(f32::INFINITY),
            Just(1e30f32)
        ],
        1..8,
    )
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), x in input()) {
        exercise(&bytes, &x);
        let mut with_magic = b"TGM\0\x01\0\x01\0".to_vec();
        with_magic.extend(&bytes);
        reseal(&mut with_magic);
        exercise(&with_magic, &x);
        // A decoder or encoder header with the right schema key: the random
        // bytes reach the network body decoder.
        for kind in [ModelKind::Decoder, ModelKind::Encoder] {
            let mut header = b"TGM\0\x01\0".to_vec();
            header.extend((kind as u16).to_le_bytes());
            header.extend(kind.schema_key().to_le_bytes());
            header.extend([0; 4]);
            header.extend(&bytes);
            header.extend([0; 4]);
            reseal(&mut header);
            exercise(&header, &x);
        }
    }

    #[test]
    fn mutated_models_never_panic(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        fix in any::<bool>(),
        x in input(),
    ) {
        let models = valid_models();
        let mut bytes = models[which % models.len()].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if fix {
            reseal(&mut bytes);
        }
        exercise(&bytes, &x);
    }
}

#[test]
fn mutations_without_fix_up_are_caught_by_the_crc_or_header() {
    for model in valid_models() {
        for i in 0..model.len() {
            let mut bytes = model.clone();
            bytes[i] ^= 0x01;
            let file = AlignedBytes::new(&bytes);
            let err = Gmm::from_bytes(file.as_bytes()).expect_err("a flipped bit must be rejected");
            assert!(
                matches!(
                    err,
                    Error::CrcMismatch { .. }
                        | Error::BadMagic
                        | Error::UnsupportedVersion(_)
                        | Error::UnknownKind(_)
                        | Error::LengthMismatch
                ),
                "byte {i}: {err:?}"
            );
        }
    }
}
