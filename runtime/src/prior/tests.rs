//! Unit tests of the latent priors and the sampling recipe.

extern crate std;

use std::vec;
use std::vec::Vec;

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use super::*;
use crate::error::Shape;
use crate::prior;

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
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
        Error::InvalidShape(Shape::Empty)
    );
    assert_eq!(
        ok(Prior::Gaussian, 2, &[1.0]).unwrap_err(),
        Error::InvalidShape(Shape::DataLength)
    );
    assert_eq!(
        ok(Prior::Circle, 3, &[]).unwrap_err(),
        Error::InvalidShape(Shape::PriorDimension)
    );
    assert_eq!(
        ok(Prior::Ring { noise: 0.1 }, 1, &[]).unwrap_err(),
        Error::InvalidShape(Shape::PriorDimension)
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
        Error::InvalidShape(Shape::Empty)
    );
    assert_eq!(
        ok(mix, 1, &[1.0, 0.0]).unwrap_err(),
        Error::InvalidShape(Shape::DataLength)
    );
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
