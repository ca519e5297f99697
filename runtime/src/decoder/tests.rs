//! Unit tests of the decoder and encoder networks and the latent priors.

extern crate std;

use std::vec;
use std::vec::Vec;

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use super::*;
use crate::prior::{self, LatentPrior, Prior};

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}

#[test]
fn activations_follow_their_formulas() {
    let xs = [
        -100.0f32, -20.0, -3.5, -1.0, -0.25, -1e-6, -0.0, 0.0, 1e-6, 0.25, 1.0, 3.5, 20.0, 100.0,
    ];
    for &x in &xs {
        assert_eq!(Activation::Identity.apply(x), x);
        assert_eq!(Activation::Relu.apply(x), if x > 0.0 { x } else { 0.0 });
        assert_eq!(
            Activation::LeakyRelu.apply(x),
            if x > 0.0 { x } else { 0.01 * x }
        );
        let tanh = f64::from(x).tanh();
        let sigmoid = 1.0 / (1.0 + (-f64::from(x)).exp());
        let tol = if cfg!(feature = "micromath") {
            1e-3
        } else {
            1e-6
        };
        assert!(
            (f64::from(Activation::Tanh.apply(x)) - tanh).abs() <= tol,
            "tanh({x})"
        );
        let s = Activation::Sigmoid.apply(x);
        assert!((f64::from(s) - sigmoid).abs() <= tol, "sigmoid({x})");
        assert!((0.0..=1.0).contains(&s));
    }
    // Stable far in the tails: no NaN from inf / inf, exact limits.
    assert_eq!(Activation::Sigmoid.apply(-1e30), 0.0);
    assert_eq!(Activation::Sigmoid.apply(1e30), 1.0);
    assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
    assert_eq!(Activation::Tanh.apply(0.0), 0.0);
    assert_eq!(Activation::Tanh.apply(50.0), 1.0);
    assert_eq!(Activation::Tanh.apply(-50.0), -1.0);
    if !cfg!(feature = "micromath") {
        // libm's own functions, and sigmoid for x < 0 as e^x / (1 + e^x).
        for &x in &xs {
            assert_eq!(Activation::Tanh.apply(x), libm::tanhf(x));
            let expected = if x >= 0.0 {
                1.0 / (1.0 + libm::expf(-x))
            } else {
                libm::expf(x) / (1.0 + libm::expf(x))
            };
            assert_eq!(Activation::Sigmoid.apply(x), expected);
        }
    }
}

#[test]
fn uniform_variates_are_exact_and_in_the_half_open_interval() {
    /// Replays fixed words.
    struct Words(Vec<u32>);
    impl RngCore for Words {
        fn next_u32(&mut self) -> u32 {
            self.0.remove(0)
        }
        fn next_u64(&mut self) -> u64 {
            unimplemented!()
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            unimplemented!()
        }
    }
    let mut words = Words(vec![0, 0xff, 0x100, u32::MAX, 0x8000_0000]);
    assert_eq!(prior::unit(&mut words), 1.0 / 16_777_216.0);
    assert_eq!(prior::unit(&mut words), 1.0 / 16_777_216.0);
    assert_eq!(prior::unit(&mut words), 2.0 / 16_777_216.0);
    assert_eq!(prior::unit(&mut words), 1.0);
    assert_eq!(prior::unit(&mut words), 0.5 + 1.0 / 16_777_216.0);
}

/// The documented recipe, written out again from `next_u32` alone.
#[test]
fn sampling_follows_the_documented_recipe() {
    let unit = |r: &mut Xoshiro128PlusPlus| ((r.next_u32() >> 8) + 1) as f32 / 16_777_216.0;
    let pair = |r: &mut Xoshiro128PlusPlus| {
        let u1 = unit(r);
        let u2 = unit(r);
        let radius = libm::sqrtf(-2.0 * libm::logf(u1));
        let t = core::f32::consts::TAU * u2;
        (radius * libm::cosf(t), radius * libm::sinf(t))
    };
    let (mut a, mut b) = (rng(5), rng(5));

    // Gaussian, odd dimension: two pairs, then the cosine half of a third.
    let gauss = LatentPrior::from_parts(Prior::Gaussian, 5, &[]).unwrap();
    let mut z = [0.0f32; 5];
    gauss.sample(&mut a, &mut z).unwrap();
    let (p0, p1, p2) = (pair(&mut b), pair(&mut b), pair(&mut b));
    assert_eq!(z, [p0.0, p0.1, p1.0, p1.1, p2.0]);

    let uniform = LatentPrior::from_parts(Prior::Uniform, 3, &[]).unwrap();
    let mut z = [0.0f32; 3];
    uniform.sample(&mut a, &mut z).unwrap();
    let expected: Vec<f32> = (0..3).map(|_| 2.0 * unit(&mut b) - 1.0).collect();
    assert_eq!(z.as_slice(), expected.as_slice());

    let circle = LatentPrior::from_parts(Prior::Circle, 2, &[]).unwrap();
    let mut z = [0.0f32; 2];
    circle.sample(&mut a, &mut z).unwrap();
    let r = unit(&mut b);
    let t = core::f32::consts::TAU * unit(&mut b);
    assert_eq!(z, [r * libm::cosf(t), r * libm::sinf(t)]);

    let ring = LatentPrior::from_parts(Prior::Ring { noise: 0.01 }, 2, &[]).unwrap();
    ring.sample(&mut a, &mut z).unwrap();
    let t = core::f32::consts::TAU * unit(&mut b);
    let (n0, n1) = pair(&mut b);
    assert_eq!(z, [libm::cosf(t) + 0.01 * n0, libm::sinf(t) + 0.01 * n1]);

    // Mixture, K = 3, d = 2: weights sum to 1.25 on purpose (the draw scales by the total).
    let params = [
        0.25f32, 0.5, 0.5, // weights
        -1.0, 0.0, 0.0, 1.0, 2.0, 2.0, // means
        1.0, 0.0, 0.5, 2.0, // L_0
        0.5, 0.0, 0.0, 0.5, // L_1
        3.0, 0.0, -1.0, 0.25, // L_2
    ];
    let mixture = LatentPrior::from_parts(Prior::Mixture { components: 3 }, 2, &params).unwrap();
    for _ in 0..50 {
        mixture.sample(&mut a, &mut z).unwrap();
        let target = unit(&mut b) * 1.25;
        let k = if target <= 0.25 {
            0
        } else if target <= 0.75 {
            1
        } else {
            2
        };
        let (n0, n1) = pair(&mut b);
        let mu = &params[3 + 2 * k..5 + 2 * k];
        let l = &params[9 + 4 * k..13 + 4 * k];
        assert_eq!(z, [mu[0] + l[0] * n0, mu[1] + l[2] * n0 + l[3] * n1]);
    }
    // Both generators are still in step.
    assert_eq!(a.next_u32(), b.next_u32());
}

/// Mean and covariance of 2-D samples.
fn moments(samples: &[[f64; 2]]) -> ([f64; 2], [[f64; 2]; 2]) {
    let n = samples.len() as f64;
    let mut mean = [0.0; 2];
    for s in samples {
        mean[0] += s[0] / n;
        mean[1] += s[1] / n;
    }
    let mut cov = [[0.0; 2]; 2];
    for s in samples {
        for i in 0..2 {
            for j in 0..2 {
                cov[i][j] += (s[i] - mean[i]) * (s[j] - mean[j]) / (n - 1.0);
            }
        }
    }
    (mean, cov)
}

fn draw(prior: &LatentPrior<'_>, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let mut z = vec![0.0; prior.dim()];
            prior.sample(&mut r, &mut z).unwrap();
            z
        })
        .collect()
}

const N: usize = 100_000;

#[test]
fn gaussian_prior_has_zero_mean_and_unit_covariance() {
    let prior = LatentPrior::from_parts(Prior::Gaussian, 3, &[]).unwrap();
    let samples = draw(&prior, N, 1);
    for (i, j) in [(0, 1), (1, 2), (2, 0)] {
        let pairs: Vec<[f64; 2]> = samples
            .iter()
            .map(|z| [f64::from(z[i]), f64::from(z[j])])
            .collect();
        let (mean, cov) = moments(&pairs);
        // Standard errors: 1/sqrt(N) = 0.003 for the mean, sqrt(2/N) = 0.0045 for the variance.
        assert!(mean[0].abs() < 0.015 && mean[1].abs() < 0.015, "{mean:?}");
        assert!((cov[0][0] - 1.0).abs() < 0.025, "{cov:?}");
        assert!((cov[1][1] - 1.0).abs() < 0.025, "{cov:?}");
        assert!(cov[0][1].abs() < 0.015, "{cov:?}");
    }
    // Tails as a standard normal's: P(|z| > 2) = 0.0455.
    let beyond = samples.iter().filter(|z| z[0].abs() > 2.0).count() as f64 / N as f64;
    assert!((beyond - 0.0455).abs() < 0.004, "{beyond}");
}

#[test]
fn uniform_prior_fills_the_cube() {
    let prior = LatentPrior::from_parts(Prior::Uniform, 2, &[]).unwrap();
    let samples = draw(&prior, N, 2);
    assert!(samples.iter().flatten().all(|&v| v > -1.0 && v <= 1.0));
    let pairs: Vec<[f64; 2]> = samples
        .iter()
        .map(|z| [f64::from(z[0]), f64::from(z[1])])
        .collect();
    let (mean, cov) = moments(&pairs);
    assert!(mean[0].abs() < 0.01 && mean[1].abs() < 0.01, "{mean:?}");
    assert!((cov[0][0] - 1.0 / 3.0).abs() < 0.01 && (cov[1][1] - 1.0 / 3.0).abs() < 0.01);
    assert!(cov[0][1].abs() < 0.01);
    let min = samples.iter().flatten().fold(1.0f32, |m, &v| m.min(v));
    let max = samples.iter().flatten().fold(-1.0f32, |m, &v| m.max(v));
    assert!(min < -0.999 && max > 0.999, "{min} {max}");
}

#[test]
fn circle_prior_is_a_disc_with_uniform_radius() {
    let prior = LatentPrior::from_parts(Prior::Circle, 2, &[]).unwrap();
    let samples = draw(&prior, N, 3);
    let radii: Vec<f64> = samples
        .iter()
        .map(|z| f64::from(z[0]).hypot(f64::from(z[1])))
        .collect();
    assert!(radii.iter().all(|&r| r <= 1.0 + 1e-6));
    let mean_r = radii.iter().sum::<f64>() / N as f64;
    // Uniform radius: mean 1/2 (a uniform disc would give 2/3), P(r < 1/2) = 1/2.
    assert!((mean_r - 0.5).abs() < 0.005, "{mean_r}");
    let inner = radii.iter().filter(|&&r| r < 0.5).count() as f64 / N as f64;
    assert!((inner - 0.5).abs() < 0.01, "{inner}");
    let pairs: Vec<[f64; 2]> = samples
        .iter()
        .map(|z| [f64::from(z[0]), f64::from(z[1])])
        .collect();
    let (mean, cov) = moments(&pairs);
    // E[r²]/2 = 1/6 per coordinate.
    assert!(mean[0].abs() < 0.01 && mean[1].abs() < 0.01, "{mean:?}");
    assert!((cov[0][0] - 1.0 / 6.0).abs() < 0.005 && (cov[1][1] - 1.0 / 6.0).abs() < 0.005);
}

#[test]
fn ring_prior_is_a_noisy_unit_circle() {
    let prior = LatentPrior::from_parts(Prior::Ring { noise: 0.01 }, 2, &[]).unwrap();
    let samples = draw(&prior, N, 4);
    let radii: Vec<f64> = samples
        .iter()
        .map(|z| f64::from(z[0]).hypot(f64::from(z[1])))
        .collect();
    let mean_r = radii.iter().sum::<f64>() / N as f64;
    let sd_r = (radii.iter().map(|r| (r - mean_r).powi(2)).sum::<f64>() / N as f64).sqrt();
    assert!((mean_r - 1.0).abs() < 0.001, "{mean_r}");
    assert!((sd_r - 0.01).abs() < 0.001, "{sd_r}");
    let pairs: Vec<[f64; 2]> = samples
        .iter()
        .map(|z| [f64::from(z[0]), f64::from(z[1])])
        .collect();
    let (mean, cov) = moments(&pairs);
    assert!(mean[0].abs() < 0.01 && mean[1].abs() < 0.01, "{mean:?}");
    assert!((cov[0][0] - 0.5).abs() < 0.01 && (cov[1][1] - 0.5).abs() < 0.01);
    // Noise 0: exactly on the circle.
    let exact = LatentPrior::from_parts(Prior::Ring { noise: 0.0 }, 2, &[]).unwrap();
    for z in draw(&exact, 1000, 5) {
        assert!((f64::from(z[0]).hypot(f64::from(z[1])) - 1.0).abs() < 1e-6);
    }
}

#[test]
fn mixture_prior_picks_components_by_weight_with_their_mean_and_covariance() {
    // Component 0 around (-10, 0) with covariance L Lᵀ = [[1, 0.5], [0.5, 0.5]];
    // component 1 around (10, 5), isotropic sd 0.1 (a trainer's gmm:K prior).
    let params = [
        0.3f32, 0.7, // weights
        -10.0, 0.0, 10.0, 5.0, // means
        1.0, 0.0, 0.5, 0.5, // L_0
        0.1, 0.0, 0.0, 0.1, // L_1
    ];
    let prior = LatentPrior::from_parts(Prior::Mixture { components: 2 }, 2, &params).unwrap();
    let samples = draw(&prior, N, 6);
    let (left, right): (Vec<_>, Vec<_>) = samples.iter().partition(|z| z[0] < 0.0);
    let share = left.len() as f64 / N as f64;
    assert!((share - 0.3).abs() < 0.006, "{share}");
    let as_pairs = |s: &[&Vec<f32>]| -> Vec<[f64; 2]> {
        s.iter().map(|z| [z[0].into(), z[1].into()]).collect()
    };
    let (mean, cov) = moments(&as_pairs(&left));
    assert!(
        (mean[0] + 10.0).abs() < 0.02 && mean[1].abs() < 0.02,
        "{mean:?}"
    );
    assert!((cov[0][0] - 1.0).abs() < 0.03, "{cov:?}");
    assert!((cov[0][1] - 0.5).abs() < 0.02, "{cov:?}");
    assert!((cov[1][1] - 0.5).abs() < 0.02, "{cov:?}");
    let (mean, cov) = moments(&as_pairs(&right));
    assert!(
        (mean[0] - 10.0).abs() < 0.002 && (mean[1] - 5.0).abs() < 0.002,
        "{mean:?}"
    );
    assert!((cov[0][0] - 0.01).abs() < 0.0005 && (cov[1][1] - 0.01).abs() < 0.0005);
    assert!(cov[0][1].abs() < 0.0005, "{cov:?}");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let prior = LatentPrior::from_parts(Prior::Gaussian, 4, &[]).unwrap();
    assert_eq!(draw(&prior, 100, 9), draw(&prior, 100, 9));
    assert_ne!(draw(&prior, 100, 9), draw(&prior, 100, 10));
}

#[test]
fn priors_are_validated() {
    fn ok(prior: Prior, dim: usize, params: &[f32]) -> Result<LatentPrior<'_>, Error> {
        LatentPrior::from_parts(prior, dim, params)
    }
    assert_eq!(
        ok(Prior::Gaussian, 0, &[]).unwrap_err(),
        Error::InvalidShape
    );
    assert_eq!(
        ok(Prior::Gaussian, 2, &[1.0]).unwrap_err(),
        Error::InvalidShape
    );
    assert_eq!(ok(Prior::Circle, 3, &[]).unwrap_err(), Error::InvalidShape);
    assert_eq!(
        ok(Prior::Ring { noise: 0.1 }, 1, &[]).unwrap_err(),
        Error::InvalidShape
    );
    assert_eq!(
        ok(Prior::Ring { noise: -0.1 }, 2, &[]).unwrap_err(),
        Error::ParameterOutOfRange
    );
    assert_eq!(
        ok(Prior::Ring { noise: f32::NAN }, 2, &[]).unwrap_err(),
        Error::NonFiniteParameter
    );
    let mix = Prior::Mixture { components: 1 };
    assert_eq!(
        ok(Prior::Mixture { components: 0 }, 1, &[]).unwrap_err(),
        Error::InvalidShape
    );
    assert_eq!(ok(mix, 1, &[1.0, 0.0]).unwrap_err(), Error::InvalidShape);
    assert!(ok(mix, 1, &[1.0, 0.0, 1.0]).is_ok());
    assert_eq!(
        ok(mix, 1, &[0.0, 0.0, 1.0]).unwrap_err(),
        Error::ParameterOutOfRange
    );
    assert_eq!(
        ok(mix, 1, &[1.0, f32::INFINITY, 1.0]).unwrap_err(),
        Error::NonFiniteParameter
    );
    // Upper triangle must be zero.
    assert_eq!(
        ok(mix, 2, &[1.0, 0.0, 0.0, 1.0, 0.5, 0.0, 1.0]).unwrap_err(),
        Error::ParameterOutOfRange
    );
    assert!(ok(mix, 2, &[1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0]).is_ok());
    // Weights whose sum overflows f32.
    let two = Prior::Mixture { components: 2 };
    assert_eq!(
        ok(two, 1, &[f32::MAX, f32::MAX, 0.0, 0.0, 1.0, 1.0]).unwrap_err(),
        Error::ParameterOutOfRange
    );

    let none = ok(Prior::None, 2, &[]).unwrap();
    let mut z = [0.0; 2];
    let mut r = rng(0);
    let before = r.clone().next_u32();
    assert_eq!(none.sample(&mut r, &mut z), Err(Error::NoPrior));
    let gauss = ok(Prior::Gaussian, 2, &[]).unwrap();
    assert_eq!(
        gauss.sample(&mut r, &mut z[..1]),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 1
        })
    );
    // Nothing was drawn by the failed calls.
    assert_eq!(r.next_u32(), before);
}

#[cfg(feature = "alloc")]
mod files {
    use super::*;
    use crate::format::{CRC_LEN, HEADER_LEN, checksum};

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
            bytemuck::cast_slice_mut::<u32, u8>(&mut words)[1..bytes.len() + 1]
                .copy_from_slice(bytes);
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
                        acc += layer.weight[o * layer.inputs + i] * xi;
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
        format::write(ModelKind::Decoder, &spec, values).unwrap()
    }

    #[test]
    fn parsing_validates_shapes_and_values() {
        let parse = |bytes: Vec<u8>| decoder::<64>(&AlignedBuf::new(&bytes)).map(|_| ());
        // A valid raw file, to show the others fail for their one defect.
        assert_eq!(
            parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Gaussian, &[0.5; 13])),
            Ok(())
        );
        let shape = Err(Error::InvalidShape);
        assert_eq!(parse(raw(&[], 2, 1, Prior::Gaussian, &[])), shape);
        assert_eq!(
            parse(raw(&[(2, 3), (4, 1)], 2, 1, Prior::Gaussian, &[0.5; 16])),
            shape
        );
        assert_eq!(
            parse(raw(&[(2, 3), (3, 1)], 3, 1, Prior::Gaussian, &[0.5; 13])),
            shape
        );
        assert_eq!(
            parse(raw(&[(2, 3), (3, 1)], 2, 2, Prior::Gaussian, &[0.5; 13])),
            shape
        );
        assert_eq!(
            parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Gaussian, &[0.5; 12])),
            shape
        );
        assert_eq!(
            parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Gaussian, &[0.5; 14])),
            shape
        );
        assert_eq!(parse(raw(&[(0, 0)], 0, 0, Prior::Gaussian, &[])), shape);
        assert_eq!(
            parse(raw(&[(2, 0), (0, 1)], 2, 1, Prior::Gaussian, &[0.5; 1])),
            shape
        );
        assert_eq!(
            parse(raw(&[(2, 3), (3, 1)], 2, 1, Prior::Circle, &[0.5; 13])),
            Ok(())
        );
        assert_eq!(
            parse(raw(&[(3, 3), (3, 1)], 3, 1, Prior::Circle, &[0.5; 16])),
            shape
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

    /// Rewrites the body length and CRC so a mutated file reaches the body decoder.
    fn fix_up(bytes: &mut [u8]) {
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return;
        }
        let body_len = (bytes.len() - HEADER_LEN - CRC_LEN) as u32;
        bytes[12..16].copy_from_slice(&body_len.to_le_bytes());
        let n = bytes.len() - CRC_LEN;
        let crc = checksum(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
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
            fix_up(&mut with_header);
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
                fix_up(&mut bytes);
            }
            exercise(&bytes, &x);
        }
    }
}
