//! Unit tests of the on-device learner: closed forms, the threshold rule,
//! determinism and bad input.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::Aligned;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn recipe(features: Features, dim: u32, covariance: Covariance) -> RecipeSpec {
    RecipeSpec {
        features,
        dim,
        covariance,
        components: 1,
        iterations: 0,
        seed: 0,
        reg_covar: 0.0,
        alarm_rate: 0.1,
        learn: 6,
        calibrate: 10,
        second_reg_covar: None,
    }
}

/// A recipe file in an aligned buffer (the bytes `encode` writes).
fn parsed(spec: &RecipeSpec) -> Recipe {
    let bytes = spec.encode().unwrap();
    let mut buf = Aligned([0u8; 256]);
    buf.0[..bytes.len()].copy_from_slice(&bytes);
    Recipe::from_bytes(&buf.0[..bytes.len()]).unwrap()
}

/// Buffers of the sizes `spec.memory()` gives, the file's 4-byte aligned.
struct Memory {
    state: Vec<f64>,
    features: Vec<f32>,
    scores: Vec<f32>,
    file: Vec<u32>,
}

impl Memory {
    fn new(spec: &RecipeSpec) -> Self {
        let bytes = spec.memory().unwrap();
        Self {
            state: vec![0.0; bytes.state / 8],
            features: vec![0.0; bytes.features / 4],
            scores: vec![0.0; bytes.scores / 4],
            file: vec![0; bytes.file.div_ceil(4)],
        }
    }

    fn buffers(&mut self) -> Buffers<'_> {
        Buffers {
            state: &mut self.state,
            features: &mut self.features,
            scores: &mut self.scores,
            file: bytemuck::cast_slice_mut(&mut self.file),
        }
    }

    fn learner(&mut self, recipe: &Recipe) -> Learner<'_> {
        Learner::new(recipe, self.buffers()).unwrap()
    }
}

/// Six 3-D points with distinct scales and a correlation.
const POINTS: [[f32; 3]; 6] = [
    [1.0, 10.0, -0.5],
    [2.0, 14.0, -0.25],
    [0.5, 7.0, 0.5],
    [3.0, 21.0, 0.0],
    [1.5, 9.0, 0.75],
    [2.5, 18.0, -1.0],
];

/// `ln N(x | mean, cov)` of the standardized point, in f64 from the
/// points directly (two passes), `reg` on the standardized diagonal.
fn reference(x: &[f32; 3], covariance: Covariance, reg: f64) -> f64 {
    let n = POINTS.len() as f64;
    let mean: [f64; 3] =
        core::array::from_fn(|j| POINTS.iter().map(|p| f64::from(p[j])).sum::<f64>() / n);
    let cov = |i: usize, j: usize| {
        POINTS
            .iter()
            .map(|p| (f64::from(p[i]) - mean[i]) * (f64::from(p[j]) - mean[j]))
            .sum::<f64>()
            / n
    };
    let scale: [f64; 3] = core::array::from_fn(|j| cov(j, j).sqrt());
    let u: [f64; 3] = core::array::from_fn(|j| (f64::from(x[j]) - mean[j]) / scale[j]);
    let mut s: [[f64; 3]; 3] = core::array::from_fn(|i| {
        core::array::from_fn(|j| cov(i, j) / (scale[i] * scale[j]) + if i == j { reg } else { 0.0 })
    });
    match covariance {
        Covariance::Diag => {
            for (i, row) in s.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    if i != j {
                        *v = 0.0;
                    }
                }
            }
        }
        Covariance::Spherical => {
            let v = (s[0][0] + s[1][1] + s[2][2]) / 3.0;
            s = core::array::from_fn(|i| core::array::from_fn(|j| if i == j { v } else { 0.0 }));
        }
        _ => {}
    }
    // 3x3 inverse and determinant by cofactors.
    let det = s[0][0] * (s[1][1] * s[2][2] - s[1][2] * s[2][1])
        - s[0][1] * (s[1][0] * s[2][2] - s[1][2] * s[2][0])
        + s[0][2] * (s[1][0] * s[2][1] - s[1][1] * s[2][0]);
    let cof = |i: usize, j: usize| {
        let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
        let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
        s[r0][c0] * s[r1][c1] - s[r0][c1] * s[r1][c0]
    };
    let mut q = 0.0;
    for i in 0..3 {
        for j in 0..3 {
            q += u[i] * cof(j, i) / det * u[j];
        }
    }
    -0.5 * (3.0 * LN_2PI + det.ln() + q)
}

#[test]
fn the_learned_density_is_the_standardized_gaussian_of_the_inputs() {
    for covariance in [
        Covariance::Full,
        Covariance::Tied,
        Covariance::Diag,
        Covariance::Spherical,
    ] {
        for reg in [0.0, 0.25] {
            let spec = RecipeSpec {
                reg_covar: reg,
                ..recipe(Features::Identity, 3, covariance)
            };
            let recipe = parsed(&spec);
            let mut buffers = Memory::new(&spec);
            let mut learner = buffers.learner(&recipe);
            for (i, p) in POINTS.iter().enumerate() {
                let progress = learner.observe(p).unwrap();
                let expected = if i + 1 < POINTS.len() {
                    Progress::Learning {
                        remaining: POINTS.len() - i - 1,
                    }
                } else {
                    Progress::Calibrating { remaining: 10 }
                };
                assert_eq!(progress, expected);
            }
            let detector = learner.detector().unwrap();
            assert_eq!(detector.spec().threshold, f32::MAX);
            for x in POINTS.iter().chain(&[[0.0, 0.0, 0.0], [4.0, 30.0, 2.0]]) {
                let got = f64::from(-detector.score(x).unwrap());
                let want = reference(x, covariance, reg);
                assert!(
                    (got - want).abs() < 1e-5 * want.abs().max(1.0),
                    "{covariance:?} reg {reg}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn the_threshold_lets_the_alarm_rate_of_calibration_inputs_through() {
    let spec = RecipeSpec {
        alarm_rate: 0.2,
        ..recipe(Features::Identity, 3, Covariance::Full)
    };
    let recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&recipe);
    for p in &POINTS {
        learner.observe(p).unwrap();
    }
    assert!(matches!(
        learner.file(),
        Err(Error::StillLearning { remaining: 10 })
    ));
    let calibration: Vec<[f32; 3]> = (0..10)
        .map(|i| {
            let t = i as f32 / 10.0;
            [1.0 + 2.0 * t, 8.0 + 12.0 * t, 0.5 - t]
        })
        .collect();
    let mut scores = Vec::new();
    for (i, x) in calibration.iter().enumerate() {
        scores.push(learner.detector().unwrap().score(x).unwrap());
        let progress = learner.observe(x).unwrap();
        assert_eq!(
            progress,
            if i < 9 {
                Progress::Calibrating { remaining: 9 - i }
            } else {
                Progress::Done
            }
        );
    }
    let detector = learner.detector().unwrap();
    let threshold = detector.spec().threshold;
    assert_eq!(scores.iter().filter(|&&s| s >= threshold).count(), 2);
    // The file is a normal detector file: read again, same scores.
    let file = learner.file().unwrap().to_vec();
    let mut copy = Aligned([0u8; 512]);
    copy.0[..file.len()].copy_from_slice(&file);
    let again = Detector::from_bytes(&copy.0[..file.len()]).unwrap();
    for (x, s) in calibration.iter().zip(&scores) {
        assert_eq!(again.score(x).unwrap().to_bits(), s.to_bits());
    }
    // Further inputs are ignored.
    assert_eq!(learner.observe(&[9.0, 9.0, 9.0]).unwrap(), Progress::Done);
    assert_eq!(learner.file().unwrap(), &file[..]);
}

#[test]
fn window_features_are_learned_from_windows() {
    // Two channels, windows of three samples: 8 features.
    let features = Features::WindowStats {
        channels: 2,
        length: 3,
    };
    let spec = RecipeSpec {
        learn: 12,
        calibrate: 4,
        reg_covar: 0.1,
        ..recipe(features, 8, Covariance::Full)
    };
    let recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&recipe);
    let window = |i: usize| -> [f32; 6] {
        core::array::from_fn(|k| ((i * 7 + k * 3) % 11) as f32 * if k % 2 == 0 { 1.0 } else { 0.1 })
    };
    for i in 0..16 {
        learner.observe(&window(i)).unwrap();
    }
    assert_eq!(learner.progress(), Progress::Done);
    let detector = learner.detector().unwrap();
    assert_eq!(detector.input_len(), 6);
    assert!(detector.score(&window(3)).unwrap().is_finite());
}

/// Two well-separated 2-D clusters (3 to 1 in size), interleaved.
fn two_clusters(n: usize) -> Vec<[f32; 2]> {
    (0..n)
        .map(|i| {
            let t = (i as f32 * 0.618_034).fract() - 0.5;
            let u = (i as f32 * 0.414_213_56).fract() - 0.5;
            if i % 4 == 3 {
                [10.0 + t, -5.0 + 0.5 * u]
            } else {
                [t + 0.5 * u, 2.0 * u]
            }
        })
        .collect()
}

#[test]
fn several_components_find_the_clusters() {
    for covariance in [Covariance::Full, Covariance::Diag, Covariance::Spherical] {
        let spec = RecipeSpec {
            components: 2,
            iterations: 30,
            seed: 5,
            learn: 200,
            calibrate: 20,
            reg_covar: 1e-3,
            ..recipe(Features::Identity, 2, covariance)
        };
        let recipe = parsed(&spec);
        let mut memory = Memory::new(&spec);
        let mut learner = memory.learner(&recipe);
        for p in two_clusters(220) {
            learner.observe(&p).unwrap();
        }
        let detector = learner.detector().unwrap();
        let density = detector.density();
        assert_eq!(density.components(), 2);
        // Responsibilities at each cluster's centre: one component each.
        let mut resp = [0.0f32; 2];
        density
            .log_responsibilities(&[0.0, 0.0], &mut resp)
            .unwrap();
        let first = resp[0] > resp[1];
        assert!(resp[0].max(resp[1]) > -1e-3, "{covariance:?}: {resp:?}");
        density
            .log_responsibilities(&[10.0, -5.0], &mut resp)
            .unwrap();
        assert_eq!(resp[0] > resp[1], !first, "{covariance:?}: {resp:?}");
        assert!(resp[0].max(resp[1]) > -1e-3, "{covariance:?}: {resp:?}");
        // A point between the clusters is far less likely than either centre.
        let between = detector.score(&[5.0, -2.5]).unwrap();
        assert!(between > detector.score(&[0.0, 0.0]).unwrap() + 10.0);
        assert!(between > detector.score(&[10.0, -5.0]).unwrap() + 10.0);
    }
}

#[test]
fn learning_is_deterministic() {
    let spec = recipe(Features::Identity, 3, Covariance::Full);
    let run = |spec: &RecipeSpec, recipe: &Recipe| {
        let mut buffers = Memory::new(spec);
        let mut learner = buffers.learner(recipe);
        for p in two_clusters(spec.learn as usize + spec.calibrate as usize) {
            learner.observe(&[p[0], p[1], p[0] - p[1]]).unwrap();
        }
        learner.file().unwrap().to_vec()
    };
    let spec = RecipeSpec {
        reg_covar: 0.1,
        ..spec
    };
    assert_eq!(run(&spec, &parsed(&spec)), run(&spec, &parsed(&spec)));
    let mixture = RecipeSpec {
        components: 3,
        iterations: 10,
        seed: 1,
        ..spec
    };
    let recipe = parsed(&mixture);
    assert_eq!(run(&mixture, &recipe), run(&mixture, &recipe));
    // Another seed starts elsewhere.
    let other = RecipeSpec { seed: 2, ..mixture };
    assert_ne!(run(&mixture, &recipe), run(&other, &parsed(&other)));
}

#[test]
fn bad_inputs_are_refused_and_not_counted() {
    let spec = recipe(Features::Identity, 3, Covariance::Full);
    let recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&recipe);
    assert_eq!(
        learner.observe(&[1.0, f32::NAN, 0.0]),
        Err(Error::NonFiniteInput)
    );
    assert_eq!(
        learner.observe(&[1.0, f32::INFINITY, 0.0]),
        Err(Error::NonFiniteInput)
    );
    assert!(matches!(
        learner.observe(&[1.0, 2.0]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert_eq!(learner.progress(), Progress::Learning { remaining: 6 });
    assert!(matches!(
        learner.detector(),
        Err(Error::StillLearning { remaining: 16 })
    ));
    for p in &POINTS {
        learner.observe(p).unwrap();
    }
    // The same during calibration.
    assert_eq!(
        learner.observe(&[f32::NAN, 0.0, 0.0]),
        Err(Error::NonFiniteInput)
    );
    assert_eq!(learner.progress(), Progress::Calibrating { remaining: 10 });
}

#[test]
fn a_constant_channel_gets_scale_one_and_the_regularisation() {
    // Feature 1 never changes; with reg 0.5 its standardized variance is 0.5.
    let spec = RecipeSpec {
        reg_covar: 0.5,
        ..recipe(Features::Identity, 2, Covariance::Full)
    };
    let recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&recipe);
    for x in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
        learner.observe(&[x, 7.0]).unwrap();
    }
    let detector = learner.detector().unwrap();
    let (mean, scale) = detector.density().standardizer().unwrap();
    assert_eq!((mean[1], scale[1]), (7.0, 1.0));
    // At the mean: ln N(0 | 0, diag(1.5, 0.5)).
    let got = f64::from(detector.score(&[3.5, 7.0]).unwrap());
    let want = 0.5 * (2.0 * LN_2PI + (1.5f64 * 0.5).ln());
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    // A change of the constant channel is far out.
    assert!(detector.score(&[3.5, 9.0]).unwrap() > got as f32 + 3.0);
}

#[test]
fn collinear_features_without_regularisation_fail_the_learner() {
    let spec = recipe(Features::Identity, 2, Covariance::Full);
    let parsed_recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&parsed_recipe);
    for x in 0..5 {
        learner.observe(&[x as f32, 2.0 * x as f32]).unwrap();
    }
    assert_eq!(
        learner.observe(&[5.0, 10.0]),
        Err(Error::NotPositiveDefinite)
    );
    assert_eq!(
        learner.observe(&[1.0, 1.0]),
        Err(Error::NotPositiveDefinite)
    );
    assert_eq!(learner.file(), Err(Error::NotPositiveDefinite));
    // Constant data and no regularisation: diagonal fails too.
    let spec = recipe(Features::Identity, 2, Covariance::Diag);
    let recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&recipe);
    for _ in 0..5 {
        learner.observe(&[1.0, 2.0]).unwrap();
    }
    assert_eq!(
        learner.observe(&[1.0, 2.0]),
        Err(Error::NotPositiveDefinite)
    );
}

#[test]
fn bad_recipes_and_short_buffers_are_typed_errors() {
    let good = recipe(Features::Identity, 3, Covariance::Full);
    for (bad, error) in [
        (
            RecipeSpec {
                components: 2,
                ..good
            },
            RECIPE,
        ),
        (RecipeSpec { learn: 1, ..good }, RECIPE),
        (
            RecipeSpec {
                calibrate: 0,
                ..good
            },
            RECIPE,
        ),
        (RecipeSpec { dim: 0, ..good }, RECIPE),
        (
            RecipeSpec {
                features: Features::WindowStats {
                    channels: 2,
                    length: 4,
                },
                ..good
            },
            RECIPE,
        ),
        (
            RecipeSpec {
                dim: u32::MAX,
                ..good
            },
            RECIPE,
        ),
        (
            RecipeSpec {
                alarm_rate: 1.0,
                ..good
            },
            Error::ParameterOutOfRange,
        ),
        (
            RecipeSpec {
                reg_covar: f64::NAN,
                ..good
            },
            Error::ParameterOutOfRange,
        ),
        (
            RecipeSpec {
                reg_covar: -1.0,
                ..good
            },
            Error::ParameterOutOfRange,
        ),
        (
            RecipeSpec {
                second_reg_covar: Some(-0.5),
                ..good
            },
            Error::ParameterOutOfRange,
        ),
        (
            RecipeSpec {
                second_reg_covar: Some(f64::INFINITY),
                ..good
            },
            Error::ParameterOutOfRange,
        ),
    ] {
        assert_eq!(bad.check(), Err(error), "{bad:?}");
        assert_eq!(bad.encode(), Err(Error::InvalidParameters));
    }
    let recipe = parsed(&good);
    let mut b = Memory::new(&good);
    let needed = good.state_len().unwrap();
    let mut buffers = b.buffers();
    buffers.state = &mut buffers.state[..needed - 1];
    assert_eq!(
        Learner::new(&recipe, buffers).err(),
        Some(Error::BufferTooSmall {
            needed,
            found: needed - 1
        })
    );
    let mut buffers = b.buffers();
    buffers.scores = &mut buffers.scores[..9];
    assert_eq!(
        Learner::new(&recipe, buffers).err(),
        Some(Error::BufferTooSmall {
            needed: 10,
            found: 9
        })
    );
    let mut buffers = b.buffers();
    buffers.file = &mut buffers.file[1..];
    assert!(matches!(
        Learner::new(&recipe, buffers),
        Err(Error::Misaligned | Error::BufferTooSmall { .. })
    ));
    let mut buffers = b.buffers();
    let len = buffers.file.len();
    buffers.file = &mut buffers.file[..len - 4];
    assert!(matches!(
        Learner::new(&recipe, buffers),
        Err(Error::BufferTooSmall { .. })
    ));
    // Several components need the features buffer.
    let two = RecipeSpec {
        components: 2,
        iterations: 5,
        ..good
    };
    let recipe = parsed(&two);
    let mut b = Memory::new(&two);
    assert_eq!(b.features.len(), 6 * 3);
    let mut buffers = b.buffers();
    buffers.features = &mut buffers.features[..17];
    assert_eq!(
        Learner::new(&recipe, buffers).err(),
        Some(Error::BufferTooSmall {
            needed: 18,
            found: 17
        })
    );
}

#[test]
fn damaged_recipe_files_are_refused() {
    let bytes = recipe(Features::Identity, 3, Covariance::Full)
        .encode()
        .unwrap();
    let mut buf = Aligned([0u8; 256]);
    let n = bytes.len();
    for at in 0..n {
        for bit in [0x01u8, 0x80] {
            buf.0[..n].copy_from_slice(&bytes);
            buf.0[at] ^= bit;
            // Resealed too, so that the body's own checks are reached.
            assert!(Recipe::from_bytes(&buf.0[..n]).is_err(), "byte {at}");
            format::reseal(&mut buf.0[..n]);
            if let Ok(r) = Recipe::from_bytes(&buf.0[..n]) {
                assert!(r.spec().check().is_ok());
            }
        }
    }
    for len in 0..n {
        buf.0[..n].copy_from_slice(&bytes);
        assert!(Recipe::from_bytes(&buf.0[..len]).is_err());
    }
}

/// Runs a learner for `spec` over `inputs` until it is done; its file.
fn learned(spec: &RecipeSpec, inputs: &[[f32; 3]]) -> Vec<u8> {
    let recipe = parsed(spec);
    let mut buffers = Memory::new(spec);
    let mut learner = buffers.learner(&recipe);
    for x in inputs {
        learner.observe(x).unwrap();
    }
    learner.file().unwrap().to_vec()
}

/// A detector file in an aligned buffer.
fn aligned(file: &[u8]) -> Aligned<[u8; 2048]> {
    let mut buf = Aligned([0u8; 2048]);
    buf.0[..file.len()].copy_from_slice(file);
    buf
}

/// Linear-interpolation quantile of sorted values, in f64.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[test]
fn a_pair_learns_both_densities_and_their_robust_z_scores() {
    let stream: Vec<[f32; 3]> = two_clusters(60)
        .iter()
        .map(|p| [p[0], p[1], p[0] - 0.5 * p[1]])
        .collect();
    for (components, covariance) in [
        (1, Covariance::Full),
        (1, Covariance::Diag),
        (3, Covariance::Full),
        (2, Covariance::Spherical),
    ] {
        let single = RecipeSpec {
            components,
            iterations: 8,
            seed: 3,
            reg_covar: 0.05,
            alarm_rate: 0.1,
            learn: 40,
            calibrate: 20,
            ..recipe(Features::Identity, 3, covariance)
        };
        let pair = RecipeSpec {
            second_reg_covar: Some(0.5),
            ..single
        };
        let what = format!("K {components} {covariance:?}");
        assert_eq!(pair.scores_len(), Some(60), "{what}: both terms and a copy");
        // Each density is the one a recipe with its regularisation
        // learns alone, bit for bit.
        let (first, second) = (
            learned(&single, &stream),
            learned(
                &RecipeSpec {
                    reg_covar: 0.5,
                    ..single
                },
                &stream,
            ),
        );
        let both = learned(&pair, &stream);
        let lens = (first.len(), second.len(), both.len());
        let (first, second, both) = (aligned(&first), aligned(&second), aligned(&both));
        let first = Detector::from_bytes(&first.0[..lens.0]).unwrap();
        let second = Detector::from_bytes(&second.0[..lens.1]).unwrap();
        let both = Detector::from_bytes(&both.0[..lens.2]).unwrap();
        assert!(both.has_second_density() && !first.has_second_density());
        let terms = |x: &[f32; 3]| both.density_terms(x).unwrap().unwrap();
        for x in &stream {
            let [p, q] = terms(x);
            assert_eq!(p.to_bits(), first.score(x).unwrap().to_bits(), "{what}");
            assert_eq!(q.to_bits(), second.score(x).unwrap().to_bits(), "{what}");
        }
        // Each term's centre and scale: the median and IQR / 1.349 of its
        // values on the calibration inputs, computed here in f64.
        let calibration = &stream[40..60];
        let spec = both.spec().second.unwrap();
        for i in 0..2 {
            let mut t: Vec<f64> = calibration.iter().map(|x| f64::from(terms(x)[i])).collect();
            t.sort_by(f64::total_cmp);
            let iqr = (quantile(&t, 0.75) - quantile(&t, 0.25)) / 1.349;
            assert_eq!(spec.center[i], quantile(&t, 0.5) as f32, "{what}");
            assert_eq!(spec.scale[i], iqr as f32, "{what}");
        }
        // The score is their sum, and 2 of the 20 calibration inputs
        // reach the threshold.
        let threshold = both.spec().threshold;
        let mut alarms = 0;
        for x in calibration {
            let [p, q] = terms(x);
            let z = (p - spec.center[0]) / spec.scale[0] + (q - spec.center[1]) / spec.scale[1];
            assert_eq!(both.score(x).unwrap().to_bits(), z.to_bits(), "{what}");
            alarms += usize::from(z >= threshold);
        }
        assert_eq!(alarms, 2, "{what}");
    }
}

#[test]
fn a_pair_refuses_calibration_inputs_whose_terms_are_not_finite() {
    let spec = RecipeSpec {
        second_reg_covar: Some(0.25),
        reg_covar: 0.25,
        ..recipe(Features::Identity, 3, Covariance::Full)
    };
    let recipe = parsed(&spec);
    let mut buffers = Memory::new(&spec);
    let mut learner = buffers.learner(&recipe);
    for p in &POINTS {
        learner.observe(p).unwrap();
    }
    // Finite input, but so far out that -ln p overflows f32.
    assert_eq!(
        learner.observe(&[1e30, -1e30, 1e30]),
        Err(Error::NonFiniteInput)
    );
    assert_eq!(learner.progress(), Progress::Calibrating { remaining: 10 });
    // The scores buffer holds three times the calibration count.
    let mut buffers = Memory::new(&spec);
    assert_eq!(buffers.scores.len(), 30);
    let mut short = buffers.buffers();
    short.scores = &mut short.scores[..29];
    assert_eq!(
        Learner::new(&recipe, short).err(),
        Some(Error::BufferTooSmall {
            needed: 30,
            found: 29
        })
    );
}

#[test]
fn robust_z_constants_are_medians_and_scaled_iqrs() {
    let mut t = [5.0f32, 1.0, 4.0, 2.0, 3.0];
    assert_eq!(robust_z_constants(&mut t), Ok((3.0, (2.0 / 1.349) as f32)));
    // No IQR: the standard deviation; no spread at all: 1.
    assert_eq!(
        robust_z_constants(&mut [0.0, 0.0, 0.0, 0.0, 10.0]),
        Ok((0.0, 4.0))
    );
    assert_eq!(robust_z_constants(&mut [7.0; 4]), Ok((7.0, 1.0)));
    assert_eq!(
        robust_z_constants(&mut []),
        Err(Error::InvalidShape(Shape::Empty))
    );
    assert_eq!(
        robust_z_constants(&mut [1.0, f32::INFINITY]),
        Err(Error::NonFiniteInput)
    );
}

#[test]
fn the_threshold_rule_matches_its_definition() {
    let mut scores: Vec<f32> = (0..100).rev().map(|i| i as f32).collect();
    assert_eq!(threshold_at_rate(&mut scores, 0.05), Ok(95.0));
    assert_eq!(threshold_at_rate(&mut scores, 0.0), Ok(99.0f32.next_up()));
    assert_eq!(
        threshold_at_rate(&mut scores, 1.0),
        Err(Error::ParameterOutOfRange)
    );
    assert_eq!(
        threshold_at_rate(&mut [], 0.1),
        Err(Error::InvalidShape(Shape::Empty))
    );
    assert_eq!(
        threshold_at_rate(&mut [1.0, f32::NAN], 0.1),
        Err(Error::NonFiniteInput)
    );
}
