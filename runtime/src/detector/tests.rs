use super::old_versions::DetectorSpecV5;
use super::*;
use crate::activation::Activation;
use crate::gmm::{Covariance, GmmParams};
use crate::network::{DecoderParams, LayerParams, PriorParams, Role};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A 2-D detector with a hand-made neural part: u = ((x0 - 1) / 2,
/// (x1 - 2) / 4), z = u0 (1-D), reconstruction (z, 0), so the error is
/// u1^2; the density and the latent density are standard normals.
fn detector_file(scale: [f32; 3], features: Features) -> alloc::vec::Vec<u8> {
    let layer = |inputs, outputs, weight| LayerParams {
        inputs,
        outputs,
        activation: Activation::Identity,
        weight,
        bias: if outputs == 1 { &[0.0] } else { &[0.0, 0.0] },
    };
    let network = |role, layer| DecoderParams {
        role,
        latent: 1,
        layers: alloc::vec![layer],
        prior: PriorParams::None,
    };
    let neural = NeuralParams {
        mean: &[1.0, 2.0],
        inv_scale: &[0.5, 0.25],
        autoencoder: AutoencoderParams::F32 {
            encoder: network(Role::Encoder, layer(2, 1, &[1.0, 0.0])),
            decoder: network(Role::Decoder, layer(1, 2, &[1.0, 0.0])),
        },
        latent: GmmParams {
            covariance: Covariance::Diag,
            dim: 1,
            weights: &[1.0],
            means: &[0.0],
            precisions_cholesky: &[1.0],
            standardizer: None,
        },
        center: [1.0, 0.5, -1.0],
        scale,
    };
    let density = standard_normal_2d();
    density
        .encode_neural_detector(ModelKind::Gmm, features, 7.0, Some(&neural))
        .unwrap()
}

/// A standard normal over two features, as one diagonal component.
fn standard_normal_2d() -> GmmParams<'static> {
    GmmParams {
        covariance: Covariance::Diag,
        dim: 2,
        weights: &[1.0],
        means: &[0.0, 0.0],
        precisions_cholesky: &[1.0, 1.0],
        standardizer: None,
    }
}

fn aligned(bytes: &[u8]) -> alloc::vec::Vec<u32> {
    let mut words = alloc::vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

#[test]
fn the_combined_score_is_the_documented_sum_of_robust_z_scores() {
    let bytes = detector_file([2.0, 4.0, 0.5], Features::Identity);
    let words = aligned(&bytes);
    let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    let detector = Detector::from_bytes(file).unwrap();
    assert!(detector.has_neural());
    assert_eq!(detector.neural_width(), 2);
    // Density 2 K D = 4, encoder 2, decoder 2, latent 2, features 2 D = 4.
    assert_eq!(detector.macs(), 14);
    for x in [[3.0f32, -2.0], [1.0, 2.0], [-0.5, 9.0]] {
        let (x0, x1) = (f64::from(x[0]), f64::from(x[1]));
        let nll = 0.5 * (x0 * x0 + x1 * x1) + LN_2PI;
        let (u0, u1) = ((x0 - 1.0) / 2.0, (x1 - 2.0) / 4.0);
        let error = u1 * u1;
        let latent = 0.5 * u0 * u0 + 0.5 * LN_2PI;
        let expected = (nll - 1.0) / 2.0 + (error - 0.5) / 4.0 + (latent + 1.0) / 0.5;
        let score = f64::from(detector.score(&x).unwrap());
        assert!((score - expected).abs() < 1e-5, "{score} vs {expected}");
        let terms = detector
            .terms_in(&x, &mut DetectorScratch::<4>::new())
            .unwrap()
            .unwrap();
        for (t, e) in terms.iter().zip([nll, error, latent]) {
            assert!((f64::from(*t) - e).abs() < 1e-5, "{t} vs {e}");
        }
        // The density's log-density is the first term, negated.
        assert_eq!(detector.log_density(&x).unwrap(), -terms[0]);
        assert_eq!(detector.is_anomaly(&x).unwrap(), score >= 7.0);
    }
    // Buffers too small for the neural part: an error, not a panic.
    assert_eq!(
        detector.score_in(&[0.0, 0.0], &mut DetectorScratch::<1>::new()),
        Err(Error::TooWide { width: 2, max: 1 })
    );
    assert_eq!(detector.score(&[f32::NAN, 0.0]), Err(Error::NonFiniteInput));
    assert!(matches!(
        detector.score(&[0.0]),
        Err(Error::DimensionMismatch { .. })
    ));
}

#[test]
fn a_windowed_detectors_log_density_is_its_negated_score() {
    // One channel, windows of 3: mean, std, min, max of N(0, I).
    let density = GmmParams {
        covariance: Covariance::Diag,
        dim: 4,
        weights: &[1.0],
        means: &[0.0; 4],
        precisions_cholesky: &[1.0; 4],
        standardizer: None,
    };
    let windowed = Features::WindowStats {
        channels: 1,
        length: 3,
    };
    let bytes = density
        .encode_detector(ModelKind::Gmm, windowed, 1.0)
        .unwrap();
    let words = aligned(&bytes);
    let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    let detector = Detector::from_bytes(file).unwrap();
    for x in [[1.0f32, 2.0, 6.0], [0.0, 0.0, 0.0], [-1.0, 0.5, 0.25]] {
        let log_p = detector.log_density(&x).unwrap();
        assert_eq!(log_p.to_bits(), (-detector.score(&x).unwrap()).to_bits());
        let mut features = [0.0f32; 4];
        window_stats(&x, 1, &mut features).unwrap();
        assert_eq!(log_p, detector.density().log_density(&features).unwrap());
    }
    assert!(matches!(
        detector.log_density(&[0.0; 2]),
        Err(Error::DimensionMismatch { .. })
    ));
}

#[test]
fn a_window_that_does_not_match_the_density_is_rejected_at_parse_time() {
    // Written around the encoder's checks: 2 density dimensions cannot
    // be 4 statistics per channel.
    let density = standard_normal_2d();
    let (spec, data) = density.stored().unwrap();
    let detector = DetectorSpec {
        features: Features::WindowStats {
            channels: 1,
            length: 4,
        },
        threshold: 1.0,
        density_kind: ModelKind::Gmm,
        density: spec,
        neural: None,
        second: None,
    };
    let bytes = format::write(ModelKind::Detector, SCHEMA_KEY, &detector, &data).unwrap();
    let words = aligned(&bytes);
    let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    assert_eq!(
        Detector::from_bytes(file).err(),
        Some(Error::InvalidShape(Shape::Window))
    );
    assert_eq!(
        density
            .encode_detector(ModelKind::Gmm, detector.features, 1.0)
            .err(),
        Some(Error::InvalidParameters)
    );
}

#[test]
fn a_bad_neural_part_does_not_encode_or_parse() {
    // A zero scale cannot be written.
    let density = GmmParams {
        covariance: Covariance::Spherical,
        dim: 2,
        weights: &[1.0],
        means: &[0.0, 0.0],
        precisions_cholesky: &[1.0],
        standardizer: None,
    };
    let neural = |scale| NeuralParams {
        mean: &[0.0, 0.0],
        inv_scale: &[1.0, 1.0],
        autoencoder: AutoencoderParams::F32 {
            encoder: DecoderParams {
                role: Role::Encoder,
                latent: 1,
                layers: alloc::vec![LayerParams {
                    inputs: 2,
                    outputs: 1,
                    activation: Activation::Relu,
                    weight: &[1.0, 1.0],
                    bias: &[0.0],
                }],
                prior: PriorParams::None,
            },
            decoder: DecoderParams {
                role: Role::Decoder,
                latent: 1,
                layers: alloc::vec![LayerParams {
                    inputs: 1,
                    outputs: 2,
                    activation: Activation::Identity,
                    weight: &[1.0, 1.0],
                    bias: &[0.0, 0.0],
                }],
                prior: PriorParams::None,
            },
        },
        latent: GmmParams {
            dim: 1,
            means: &[0.0],
            precisions_cholesky: &[1.0],
            ..density
        },
        center: [0.0; 3],
        scale,
    };
    let encode = |n: &NeuralParams<'_>| {
        density.encode_neural_detector(ModelKind::Gmm, Features::Identity, 1.0, Some(n))
    };
    assert!(encode(&neural([1.0, 1.0, 1.0])).is_ok());
    assert_eq!(
        encode(&neural([1.0, 0.0, 1.0])),
        Err(Error::InvalidParameters)
    );
    // A latent density of the wrong dimension.
    let mut wrong = neural([1.0; 3]);
    wrong.latent = GmmParams {
        dim: 2,
        means: &[0.0, 0.0],
        ..wrong.latent
    };
    assert_eq!(encode(&wrong), Err(Error::InvalidParameters));
    // Truncations of a good file are rejected at parse time.
    let bytes = detector_file([1.0; 3], Features::Identity);
    let words = aligned(&bytes);
    let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    for cut in (0..bytes.len()).step_by(7) {
        assert!(Detector::from_bytes(&file[..cut]).is_err(), "cut {cut}");
    }
}

/// The int8 twin of [`detector_file`]'s neural part: tensors at scale
/// 1/16, weights 1 stored as 64 at scale 1/64, so that on inputs whose
/// standardized features are multiples of 1/16 (within [-8, 7.9375])
/// every int8 tensor is exact.
fn int8_networks() -> AutoencoderParams<'static> {
    use crate::qnetwork::{FinalActivation, QLayerParams, QNetworkParams, QuantParams};
    const SIXTEENTH: QuantParams = QuantParams {
        scale: 1.0 / 16.0,
        zero_point: 0,
    };
    let layer = |inputs, outputs, bias: &'static [i32]| QLayerParams {
        inputs,
        outputs,
        activation: Activation::Identity,
        weight: &[64, 0],
        bias,
        multiplier: &[1 << 30],
        shift: &[-5],
        output: SIXTEENTH,
    };
    let network = |role, layer| QNetworkParams {
        role,
        input: SIXTEENTH,
        layers: alloc::vec![layer],
        prior: PriorParams::None,
        final_activation: FinalActivation::Int8,
    };
    AutoencoderParams::Int8 {
        encoder: network(Role::Encoder, layer(2, 1, &[0])),
        decoder: network(Role::Decoder, layer(1, 2, &[0, 0])),
    }
}

fn int8_detector_file() -> alloc::vec::Vec<u8> {
    let density = standard_normal_2d();
    let neural = NeuralParams {
        mean: &[1.0, 2.0],
        inv_scale: &[0.5, 0.25],
        autoencoder: int8_networks(),
        latent: GmmParams {
            covariance: Covariance::Diag,
            dim: 1,
            weights: &[1.0],
            means: &[0.0],
            precisions_cholesky: &[1.0],
            standardizer: None,
        },
        center: [1.0, 0.5, -1.0],
        scale: [2.0, 4.0, 0.5],
    };
    density
        .encode_neural_detector(ModelKind::Gmm, Features::Identity, 7.0, Some(&neural))
        .unwrap()
}

#[test]
fn an_int8_neural_part_scores_as_the_f32_one_where_its_tensors_are_exact() {
    let f32_bytes = detector_file([2.0, 4.0, 0.5], Features::Identity);
    let int8_bytes = int8_detector_file();
    let (a, b) = (aligned(&f32_bytes), aligned(&int8_bytes));
    let f = Detector::from_bytes(&bytemuck::cast_slice::<u32, u8>(&a)[..f32_bytes.len()]).unwrap();
    let q = Detector::from_bytes(&bytemuck::cast_slice::<u32, u8>(&b)[..int8_bytes.len()]).unwrap();
    assert!(q.has_int8_neural() && !f.has_int8_neural());
    assert_eq!(q.macs(), f.macs());
    assert_eq!(q.neural_width(), 2);
    // Density 3 (log_norm, precision 2, prec_mean 2 = 5), mean and
    // inv_scale 4, each network 4 weight words (one padded 4 x 4 block)
    // + bias + multiplier + shift (7 and 8), latent 3.
    assert_eq!(q.stored_values(), 5 + 4 + 7 + 8 + 3);
    // u = ((x0 - 1) / 2, (x1 - 2) / 4) on the 1/16 grid: equal scores.
    for x in [[3.0f32, -2.0], [1.0, 2.0], [-0.5, 9.0], [2.125, 3.5]] {
        let (sf, sq) = (f.score(&x).unwrap(), q.score(&x).unwrap());
        assert_eq!(sf.to_bits(), sq.to_bits(), "{x:?}: {sf} vs {sq}");
    }
    // Off the grid, u0 is rounded to the nearest 1/16: the latent term
    // (u0^2 / 2, scaled by 1 / 0.5) moves by at most about |u0| / 8 + 1/256.
    for x in [[3.01f32, -2.0], [1.3, 2.7], [-0.45, 5.1]] {
        let (sf, sq) = (f.score(&x).unwrap(), q.score(&x).unwrap());
        let u0 = (x[0] - 1.0) / 2.0;
        assert!(
            (sf - sq).abs() <= u0.abs() / 8.0 + 0.01,
            "{x:?}: {sf} vs {sq}"
        );
    }
    // Saturation: u0 = 20 is far outside the int8 range of [-8, 8).
    let sq = q.score(&[41.0, 2.0]).unwrap();
    let sf = f.score(&[41.0, 2.0]).unwrap();
    assert!(sq.is_finite() && sq < sf);
    assert_eq!(
        q.score_in(&[0.0, 0.0], &mut DetectorScratch::<1>::new()),
        Err(Error::TooWide { width: 2, max: 1 })
    );
    assert_eq!(q.score(&[f32::NAN, 0.0]), Err(Error::NonFiniteInput));
}

/// The int8 detector's spec and data, to corrupt and write directly.
fn int8_parts() -> (DetectorSpec, alloc::vec::Vec<f32>) {
    let bytes = int8_detector_file();
    let words = aligned(&bytes);
    let file = format::open(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()]).unwrap();
    let (_, spec, data): (Header, DetectorSpec, &[f32]) =
        file.read_body(&[ModelKind::Detector], SCHEMA_KEY).unwrap();
    (spec, data.to_vec())
}

fn parse(spec: &DetectorSpec, data: &[f32]) -> Result<(), Error> {
    let bytes = format::write(ModelKind::Detector, SCHEMA_KEY, spec, data).unwrap();
    let words = aligned(&bytes);
    Detector::from_bytes(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()]).map(|_| ())
}

#[test]
fn malformed_int8_neural_parts_are_typed_errors() {
    let (spec, data) = int8_parts();
    assert_eq!(parse(&spec, &data), Ok(()));
    let neural = spec.neural.unwrap();
    let AutoencoderSpec::Int8 { encoder, decoder } = neural.autoencoder else {
        panic!("not int8");
    };
    let with = |encoder, decoder| DetectorSpec {
        neural: Some(NeuralSpec {
            autoencoder: AutoencoderSpec::Int8 { encoder, decoder },
            ..neural
        }),
        ..spec
    };
    // Data words: density 5, mean 2, inv_scale 2, then the encoder's
    // 4 weight words, bias, multiplier, shift (9..16), the decoder's
    // (16..24).
    let word = |i: usize, v: i32| {
        let mut d = data.clone();
        d[i] = f32::from_bits(v as u32);
        d
    };
    assert_eq!(parse(&spec, &word(14, -1)), Err(Error::ParameterOutOfRange));
    assert_eq!(parse(&spec, &word(15, 31)), Err(Error::ParameterOutOfRange));
    assert_eq!(
        parse(&spec, &word(23, -32)),
        Err(Error::ParameterOutOfRange)
    );
    // Any weight word (padding included), bias (even a NaN pattern) is
    // a valid value.
    assert_eq!(parse(&spec, &word(9, -1)), Ok(()));
    assert_eq!(parse(&spec, &word(12, -1)), Ok(()));
    assert_eq!(parse(&spec, &word(13, 0x7fc0_0000)), Ok(()));
    // Missing or extra words.
    assert_eq!(
        parse(&spec, &data[..data.len() - 1]),
        Err(Error::InvalidShape(Shape::DataLength))
    );
    let mut longer = data.clone();
    longer.push(0.0);
    assert_eq!(
        parse(&spec, &longer),
        Err(Error::InvalidShape(Shape::DataLength))
    );
    // Zero and non-finite scales, a leaky relu layer.
    let mut bad = encoder;
    bad.input.scale = 0.0;
    assert_eq!(
        parse(&with(bad, decoder), &data),
        Err(Error::ParameterOutOfRange)
    );
    let mut bad = decoder;
    let mut layers = *bad.layers.as_slice().first().unwrap();
    layers.output.scale = f32::INFINITY;
    bad.layers = crate::qnetwork::QLayers::new(&[layers]).unwrap();
    assert_eq!(
        parse(&with(encoder, bad), &data),
        Err(Error::NonFiniteParameter)
    );
    let mut layers = *decoder.layers.as_slice().first().unwrap();
    layers.activation = Activation::LeakyRelu;
    let bad = QNetworkSpec {
        layers: crate::qnetwork::QLayers::new(&[layers]).unwrap(),
        ..decoder
    };
    assert_eq!(
        parse(&with(encoder, bad), &data),
        Err(Error::ParameterOutOfRange)
    );
    // Encoder and decoder swapped: the ends do not fit the features.
    assert!(parse(&with(decoder, encoder), &data).is_err());
    // A latent of the wrong width (encoder 2 -> 1 claims latent 2).
    let bad = QNetworkSpec {
        latent: 2,
        ..encoder
    };
    assert_eq!(
        parse(&with(bad, decoder), &data),
        Err(Error::InvalidShape(Shape::NetworkEnds))
    );
    // A spec that claims huge layers is rejected before reading data.
    let mut layers = *encoder.layers.as_slice().first().unwrap();
    layers.inputs = u16::MAX;
    let bad = QNetworkSpec {
        data: u16::MAX,
        layers: crate::qnetwork::QLayers::new(&[layers]).unwrap(),
        ..encoder
    };
    assert!(parse(&with(bad, decoder), &data).is_err());
    // Truncations of the file.
    let bytes = int8_detector_file();
    let words = aligned(&bytes);
    let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    for cut in 0..bytes.len() {
        assert!(Detector::from_bytes(&file[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn malformed_second_densities_are_typed_errors() {
    let normal = |dim: usize| GmmParams {
        covariance: Covariance::Diag,
        dim,
        weights: &[1.0],
        means: &[0.0; 3][..dim],
        precisions_cholesky: &[1.0; 3][..dim],
        standardizer: None,
    };
    let second = |dim| SecondDensityParams {
        kind: ModelKind::Gmm,
        density: normal(dim),
        center: [0.0, 1.0],
        scale: [1.0, 2.0],
    };
    let bytes = normal(2)
        .encode_pair_detector(ModelKind::Gmm, Features::Identity, 1.0, &second(2))
        .unwrap();
    let words = aligned(&bytes);
    let file = format::open(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()]).unwrap();
    let (_, spec, data): (Header, DetectorSpec, &[f32]) =
        file.read_body(&[ModelKind::Detector], SCHEMA_KEY).unwrap();
    assert_eq!(parse(&spec, data), Ok(()));
    let with = |second: SecondDensitySpec| DetectorSpec {
        second: Some(second),
        ..spec
    };
    let s = spec.second.unwrap();
    assert_eq!(
        parse(
            &with(SecondDensitySpec {
                scale: [1.0, 0.0],
                ..s
            }),
            data
        ),
        Err(Error::ParameterOutOfRange)
    );
    assert_eq!(
        parse(
            &with(SecondDensitySpec {
                center: [f32::NAN, 0.0],
                ..s
            }),
            data
        ),
        Err(Error::NonFiniteParameter)
    );
    let kind = ModelKind::Detector;
    assert_eq!(
        parse(&with(SecondDensitySpec { kind, ..s }), data),
        Err(Error::InvalidShape(Shape::PartKind))
    );
    assert_eq!(
        parse(&spec, &data[..data.len() - 1]),
        Err(Error::InvalidShape(Shape::DataLength))
    );
    // A second density over other features; one next to a neural part.
    assert_eq!(
        normal(2).encode_pair_detector(ModelKind::Gmm, Features::Identity, 1.0, &second(3)),
        Err(Error::InvalidParameters)
    );
    let mut wider = data.to_vec();
    wider.extend([0.0, 1.0]);
    let mut three = s;
    three.density.dim = 3;
    assert_eq!(
        parse(&with(three), &wider),
        Err(Error::InvalidShape(Shape::SecondDensity))
    );
    let (neural_spec, neural_data) = {
        let bytes = detector_file([2.0, 4.0, 0.5], Features::Identity);
        let words = aligned(&bytes);
        let file = format::open(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()]).unwrap();
        let (_, spec, data): (Header, DetectorSpec, &[f32]) =
            file.read_body(&[ModelKind::Detector], SCHEMA_KEY).unwrap();
        (spec, data.to_vec())
    };
    let mut both_data = neural_data.clone();
    both_data.extend_from_slice(&data[5..]);
    let both = DetectorSpec {
        second: Some(s),
        ..neural_spec
    };
    assert_eq!(
        parse(&both, &both_data),
        Err(Error::InvalidShape(Shape::SecondDensity))
    );
    // Scores: the documented sum; inputs checked as for one density.
    let detector = Detector::from_bytes(file_bytes(&words, bytes.len())).unwrap();
    // Each density: log-norm, precisions, precision-weighted means (5);
    // 2 K D multiply-accumulates (4).
    assert_eq!(detector.stored_values(), 10);
    assert_eq!(detector.macs(), 8);
    let terms = detector.density_terms(&[3.0, -2.0]).unwrap().unwrap();
    assert_eq!(terms[0], terms[1]);
    let want = terms[0] + (terms[1] - 1.0) / 2.0;
    assert_eq!(detector.score(&[3.0, -2.0]), Ok(want));
    assert_eq!(
        detector.score_in(&[3.0, -2.0], &mut DetectorScratch::<1>::new()),
        Ok(want)
    );
    assert_eq!(detector.score(&[f32::NAN, 0.0]), Err(Error::NonFiniteInput));
    assert!(matches!(
        detector.density_terms(&[0.0]),
        Err(Error::DimensionMismatch { .. })
    ));
}

fn file_bytes(words: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(words)[..len]
}

/// `spec` in the layout of `detector/3` to `detector/5` (no second
/// density).
fn v5_layout(spec: DetectorSpec) -> DetectorSpecV5 {
    assert!(spec.second.is_none());
    DetectorSpecV5 {
        features: spec.features,
        threshold: spec.threshold,
        density_kind: spec.density_kind,
        density: spec.density,
        neural: spec.neural,
    }
}

#[test]
fn the_spec_read_field_by_field_is_the_spec_decoded_whole() {
    let normal = standard_normal_2d();
    let second = SecondDensityParams {
        kind: ModelKind::Kde,
        density: normal,
        center: [0.5, 1.0],
        scale: [1.0, 2.0],
    };
    let files = [
        detector_file([2.0, 4.0, 0.5], Features::Identity),
        int8_detector_file(),
        normal
            .encode_pair_detector(ModelKind::Gmm, Features::Identity, 1.0, &second)
            .unwrap(),
        normal
            .encode_neural_detector(ModelKind::Kde, Features::Identity, 3.0, None)
            .unwrap(),
    ];
    for bytes in files {
        let words = aligned(&bytes);
        let file = file_bytes(&words, bytes.len());
        let (_, whole, _): (Header, DetectorSpec, &[f32]) = format::open(file)
            .unwrap()
            .read_body(&[ModelKind::Detector], SCHEMA_KEY)
            .unwrap();
        assert_eq!(Detector::from_bytes(file).unwrap().spec(), whole);
        if whole.neural.is_some() {
            continue;
        }
        // The neural part's option tag written as a byte: 0 reads as the
        // file did, any value but 0 and 1 is malformed.
        let (_, _, data): (Header, DetectorSpec, &[f32]) = format::open(file)
            .unwrap()
            .read_body(&[ModelKind::Detector], SCHEMA_KEY)
            .unwrap();
        for (tag, want) in [(0u8, Ok(whole)), (2, Err(Error::Malformed))] {
            let spec = (
                whole.features,
                whole.threshold,
                whole.density_kind,
                whole.density,
                tag,
                whole.second,
            );
            let bytes = format::write(ModelKind::Detector, SCHEMA_KEY, &spec, data).unwrap();
            let words = aligned(&bytes);
            let read = Detector::from_bytes(file_bytes(&words, bytes.len()));
            assert_eq!(read.map(|d| d.spec()), want);
        }
    }
}

#[test]
fn detector_3_to_5_files_are_read_unless_older_networks_are_int8() {
    // detector/3 and /4 wrote detector/5's spec, but for their int8
    // networks' weight layouts (mlp-int8/2 and /3); detector/6 added
    // the second density.
    for (bytes, int8) in [
        (detector_file([2.0, 4.0, 0.5], Features::Identity), false),
        (int8_detector_file(), true),
    ] {
        let words = aligned(&bytes);
        let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
        let new = Detector::from_bytes(file).unwrap();
        let (_, spec, data): (Header, DetectorSpec, &[f32]) = format::open(file)
            .unwrap()
            .read_body(&[ModelKind::Detector], SCHEMA_KEY)
            .unwrap();
        for key in [SCHEMA_KEY_V3, SCHEMA_KEY_V4, SCHEMA_KEY_V5] {
            let old = format::write(ModelKind::Detector, key, &v5_layout(spec), data).unwrap();
            let old_words = aligned(&old);
            let old_file = &bytemuck::cast_slice::<u32, u8>(&old_words)[..old.len()];
            match Detector::from_bytes(old_file) {
                Ok(read) => {
                    assert!(!int8 || key == SCHEMA_KEY_V5);
                    assert_eq!(read.spec(), new.spec());
                    assert_eq!(read.score(&[3.0, -2.0]), new.score(&[3.0, -2.0]));
                }
                Err(e) => assert_eq!((int8, e), (true, Error::SchemaMismatch)),
            }
            // Today's layout under an old key does not parse.
            let mixed = format::write(ModelKind::Detector, key, &spec, data).unwrap();
            let w = aligned(&mixed);
            let mixed = &bytemuck::cast_slice::<u32, u8>(&w)[..mixed.len()];
            assert!(Detector::from_bytes(mixed).is_err());
        }
    }
    const {
        assert!(SCHEMA_KEY != SCHEMA_KEY_V5 && SCHEMA_KEY != SCHEMA_KEY_V4);
        assert!(SCHEMA_KEY != SCHEMA_KEY_V3 && SCHEMA_KEY != SCHEMA_KEY_V2);
    };
    assert_eq!(
        SCHEMA_KEY_V3, 0x9436_e365,
        "the detector/3 key as FORMAT.md lists it"
    );
}

#[test]
fn detector_2_files_are_read_as_f32_neural_parts() {
    // The old spec's layout: the neural part without the variant tag.
    let bytes = detector_file([2.0, 4.0, 0.5], Features::Identity);
    let words = aligned(&bytes);
    let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    let new = Detector::from_bytes(file).unwrap();
    let (_, spec, data): (Header, DetectorSpec, &[f32]) = format::open(file)
        .unwrap()
        .read_body(&[ModelKind::Detector], SCHEMA_KEY)
        .unwrap();
    let n = spec.neural.unwrap();
    let AutoencoderSpec::F32 { encoder, decoder } = n.autoencoder else {
        panic!("not f32");
    };
    #[derive(Serialize)]
    struct V2 {
        features: Features,
        threshold: f32,
        density_kind: ModelKind,
        density: GmmSpec,
        neural: Option<NeuralV2>,
    }
    /// The old neural part: encoder, decoder, latent, center, scale.
    type NeuralV2 = (NetworkSpec, NetworkSpec, GmmSpec, [f32; 3], [f32; 3]);
    let v2 = V2 {
        features: spec.features,
        threshold: spec.threshold,
        density_kind: spec.density_kind,
        density: spec.density,
        neural: Some((encoder, decoder, n.latent, n.center, n.scale)),
    };
    let old = format::write(ModelKind::Detector, SCHEMA_KEY_V2, &v2, data).unwrap();
    let old_words = aligned(&old);
    let old_file = &bytemuck::cast_slice::<u32, u8>(&old_words)[..old.len()];
    let read = Detector::from_bytes(old_file).unwrap();
    assert_eq!(read.spec(), new.spec());
    assert_eq!(read.score(&[3.0, -2.0]), new.score(&[3.0, -2.0]));
    // The old key with the new layout, and the reverse, do not parse.
    let mixed = format::write(ModelKind::Detector, SCHEMA_KEY_V2, &spec, data).unwrap();
    let w = aligned(&mixed);
    assert!(Detector::from_bytes(&bytemuck::cast_slice::<u32, u8>(&w)[..mixed.len()]).is_err());
    let mixed = format::write(ModelKind::Detector, SCHEMA_KEY, &v2, data).unwrap();
    let w = aligned(&mixed);
    assert!(Detector::from_bytes(&bytemuck::cast_slice::<u32, u8>(&w)[..mixed.len()]).is_err());
    assert_ne!(SCHEMA_KEY, SCHEMA_KEY_V2);
    assert_eq!(
        SCHEMA_KEY_V2, 0xbfa4_6c95,
        "the detector/2 key as FORMAT.md lists it"
    );
}
