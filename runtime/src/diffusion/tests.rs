extern crate std;

use std::vec;
use std::vec::Vec;

use rand_core::SeedableRng;

use super::*;
use crate::Activation;
use crate::Xoshiro128PlusPlus;
use crate::network::LayerParams;

fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

const LINEAR: Schedule = Schedule::Linear {
    beta_start: 1e-4,
    beta_end: 0.02,
};

/// A model over `d` features with embedding `e`, `t` steps, and one hidden
/// layer of width 3 whose weights are `w` (all of them) and biases `b`.
fn model(d: usize, e: usize, t: u16, w: f32, b: f32, clip: bool) -> Vec<u8> {
    let alpha_bar = LINEAR.alpha_bar(t).unwrap();
    let w1 = vec![w; 3 * (d + e)];
    let b1 = vec![b; 3];
    let w2 = vec![w; d * 3];
    let b2 = vec![b; d];
    let scale = vec![0.5f32; d];
    let offset = vec![0.5f32; d];
    DiffusionParams {
        embedding: e,
        schedule: LINEAR,
        alpha_bar: &alpha_bar,
        clip,
        sampler: Sampler::ddim(t.min(5)),
        layers: vec![
            LayerParams {
                inputs: d + e,
                outputs: 3,
                activation: Activation::Tanh,
                weight: &w1,
                bias: &b1,
            },
            LayerParams {
                inputs: 3,
                outputs: d,
                activation: Activation::Identity,
                weight: &w2,
                bias: &b2,
            },
        ],
        scale: &scale,
        offset: &offset,
        skip: None,
    }
    .encode()
    .unwrap()
}

fn parse(words: &[u32], len: usize) -> Result<Diffusion<'_>, Error> {
    Diffusion::from_bytes(&bytemuck::cast_slice::<u32, u8>(words)[..len])
}

#[test]
fn linear_schedule_is_the_running_product_of_one_minus_beta() {
    let a = LINEAR.alpha_bar(1000).unwrap();
    assert_eq!(a.len(), 1000);
    assert_eq!(a[0], (1.0f64 - 1e-4f32 as f64) as f32);
    let mut product = 1.0f64;
    for (t, &v) in a.iter().enumerate() {
        let beta = 1e-4f32 as f64 + (0.02f32 as f64 - 1e-4f32 as f64) * t as f64 / 999.0;
        product *= 1.0 - beta;
        assert_eq!(v, product as f32, "t = {}", t + 1);
    }
    // The usual figure: alpha_bar at T = 1000 is about 4.04e-5.
    assert!((a[999] - 4.0358e-5).abs() < 1e-8, "{}", a[999]);
}

#[test]
fn cosine_schedule_follows_its_closed_form_until_the_cap() {
    let s = 0.008f64;
    let cosine = Schedule::Cosine { offset: 0.008 };
    let a = cosine.alpha_bar(1000).unwrap();
    let f = |t: f64| {
        (((t / 1000.0 + s) / (1.0 + s)) * core::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    for t in [1usize, 10, 500, 900] {
        let want = f(t as f64) / f(0.0);
        assert!(
            ((a[t - 1] as f64) - want).abs() < 1e-6 * want.max(1e-3),
            "t = {t}"
        );
    }
    // The last betas are capped at 0.999, so alpha_bar stays positive.
    assert!(a[999] > 0.0 && a[999] < a[998]);
    let last_beta = 1.0 - a[999] as f64 / a[998] as f64;
    assert!((last_beta - 0.999).abs() < 1e-3, "{last_beta}");
}

#[test]
fn bad_schedules_are_refused() {
    for bad in [
        Schedule::Linear {
            beta_start: 0.0,
            beta_end: 0.02,
        },
        Schedule::Linear {
            beta_start: 1e-4,
            beta_end: 1.0,
        },
        Schedule::Cosine { offset: -1.0 },
        Schedule::Cosine {
            offset: f32::INFINITY,
        },
        Schedule::Custom,
    ] {
        assert_eq!(bad.alpha_bar(10), Err(Error::InvalidParameters), "{bad:?}");
    }
    assert_eq!(LINEAR.alpha_bar(0), Err(Error::InvalidParameters));
}

/// With `eta = 1` and every step, the noise added is DDPM's posterior
/// variance `(1 - a_{t-1}) / (1 - a_t) beta_t`; the deterministic part
/// is the posterior mean's coefficients once `x_0` is substituted.
#[test]
fn ddpm_steps_have_the_posterior_variance() {
    let bytes = model(2, 4, 50, 0.1, 0.0, false);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    let a = m.alpha_bar();
    for t in [2u32, 10, 50] {
        let (at, ap) = (a[t as usize - 1] as f64, a[t as usize - 2] as f64);
        let beta = 1.0 - at / ap;
        let c = m.coefficients(t, t - 1, 1.0).unwrap();
        let variance = (1.0 - ap) / (1.0 - at) * beta;
        assert!(
            ((c.sigma as f64).powi(2) - variance).abs() < 1e-6 * variance,
            "t = {t}"
        );
        // x_{t-1} = sqrt(p) x0 + dir eps + sigma z with x0 = (x - k eps) / sqrt(a):
        // the coefficient of x is sqrt(p / a), DDPM's 1/sqrt(alpha_t) (1 - ...) form.
        let x_coef = c.prev_signal as f64 * c.inv_signal as f64;
        assert!((x_coef - (ap / at).sqrt()).abs() < 1e-6);
    }
    // The last step adds no noise and returns the prediction of x_0.
    let c = m.coefficients(1, 0, 1.0).unwrap();
    assert_eq!((c.sigma, c.prev_signal, c.direction), (0.0, 1.0, 0.0));
}

#[test]
fn timesteps_span_one_to_t() {
    let steps: Vec<u32> = (0..5).map(|i| timestep(i, 5, 1000)).collect();
    assert_eq!(steps, [1, 201, 401, 601, 801]);
    let all: Vec<u32> = (0..4).map(|i| timestep(i, 4, 4)).collect();
    assert_eq!(all, [1, 2, 3, 4]);
}

#[test]
fn time_embedding_known_values() {
    let mut e = [0f32; 6];
    time_embedding(0, &mut e).unwrap();
    assert_eq!(e, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    time_embedding(7, &mut e).unwrap();
    // The first frequency is 1.
    assert_eq!(e[0], libm::sinf(7.0));
    assert_eq!(e[3], libm::cosf(7.0));
    let w2 = libm::expf(-LN_10000 * 2.0 / 3.0);
    assert_eq!(e[2], libm::sinf(7.0 * w2));
    assert!(time_embedding(1, &mut [0f32; 3]).is_err());
    assert!(time_embedding(1, &mut []).is_err());
}

/// A zero noise predictor makes DDIM a pure rescaling: each step multiplies
/// `x` by `sqrt(p / a)`, so the sample is the first draw over
/// `sqrt(alpha_bar[tau_last])`, then mapped by scale and offset.
#[test]
fn ddim_with_a_zero_predictor_rescales_the_first_draw() {
    let bytes = model(3, 2, 100, 0.0, 0.0, false);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    let mut work = vec![0f32; m.work_len()];
    let mut out = [0f32; 3];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    m.sample_in(&mut rng, Sampler::ddim(4), &mut out, &mut work)
        .unwrap();
    let mut z = [0f32; 3];
    crate::prior::standard_normals(&mut Xoshiro128PlusPlus::seed_from_u64(3), &mut z);
    let last = m.alpha_bar()[timestep(3, 4, 100) as usize - 1] as f64;
    for (o, z) in out.iter().zip(z) {
        let want = z as f64 / last.sqrt() * 0.5 + 0.5;
        assert!(
            (*o as f64 - want).abs() < 1e-4 * want.abs().max(1.0),
            "{o} vs {want}"
        );
    }
    // Clipping the prediction of x_0 keeps the sample in [0, 1].
    let bytes = model(3, 2, 100, 0.0, 0.0, true);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    m.sample_in(&mut rng, Sampler::ddpm(100), &mut out, &mut work)
        .unwrap();
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{out:?}");
}

#[test]
fn the_predictor_sees_the_point_and_the_embedding() {
    let bytes = model(2, 4, 20, 0.3, -0.1, false);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    let x = [0.25f32, -1.5];
    let (mut a, mut b) = ([0f32; 8], [0f32; 8]);
    let mut eps = [0f32; 2];
    m.predict_noise(&x, 7, &mut eps, &mut a, &mut b).unwrap();
    let mut input = [0f32; 6];
    input[..2].copy_from_slice(&x);
    time_embedding(7, &mut input[2..]).unwrap();
    let mut want = [0f32; 2];
    m.predictor()
        .forward_in(&input, &mut want, &mut [0f32; 3], &mut [0f32; 3])
        .unwrap();
    assert_eq!(eps, want);
    // Through AnyModel: the timestep is the last input.
    let any = crate::AnyModel::from_bytes(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()])
        .unwrap();
    assert_eq!((any.input_len(), any.output_len()), (3, 2));
    let mut scratch = crate::Scratch::<6>::new();
    let mut got = [0f32; 2];
    any.eval(&[0.25, -1.5, 7.0], &mut got, &mut scratch)
        .unwrap();
    assert_eq!(got, want);
    for t in [0.0, 21.0, 2.5] {
        assert_eq!(
            any.eval(&[0.25, -1.5, t], &mut got, &mut scratch),
            Err(Error::InvalidParameters),
            "t = {t}"
        );
    }
    assert_eq!(
        any.eval(&[0.25, -1.5, f32::NAN], &mut got, &mut scratch),
        Err(Error::NonFiniteInput)
    );
}

#[test]
fn a_seed_gives_the_same_sample_and_seeds_differ() {
    let bytes = model(4, 2, 30, 0.2, 0.05, true);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    let mut work = vec![0f32; m.work_len()];
    let draw = |seed: u64, sampler: Sampler, work: &mut [f32]| {
        let mut out = [0f32; 4];
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
        m.sample_in(&mut rng, sampler, &mut out, work).unwrap();
        out
    };
    let a = draw(1, Sampler::ddpm(30), &mut work);
    assert_eq!(a, draw(1, Sampler::ddpm(30), &mut work));
    assert_ne!(a, draw(2, Sampler::ddpm(30), &mut work));
    assert_ne!(a, draw(1, Sampler::ddim(30), &mut work));
    // The file's default sampler.
    let mut out = [0f32; 4];
    m.sample(
        &mut Xoshiro128PlusPlus::seed_from_u64(1),
        &mut out,
        &mut work,
    )
    .unwrap();
    assert_eq!(out, draw(1, Sampler::ddim(5), &mut work));
}

#[test]
fn bad_calls_are_typed_errors_and_draw_nothing() {
    let bytes = model(2, 2, 10, 0.1, 0.0, false);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    let mut work = vec![0f32; m.work_len()];
    let mut out = [0f32; 2];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    for sampler in [
        Sampler::ddim(0),
        Sampler::ddim(11),
        Sampler { steps: 5, eta: 1.5 },
        Sampler {
            steps: 5,
            eta: f32::NAN,
        },
    ] {
        assert_eq!(
            m.sample_in(&mut rng, sampler, &mut out, &mut work),
            Err(Error::InvalidParameters)
        );
    }
    let short = m.work_len() - 1;
    assert!(matches!(
        m.sample_in(&mut rng, Sampler::ddim(3), &mut out, &mut work[..short]),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(matches!(
        m.sample_in(&mut rng, Sampler::ddim(3), &mut [0f32; 3], &mut work),
        Err(Error::DimensionMismatch { .. })
    ));
    // Nothing was drawn.
    let mut fresh = Xoshiro128PlusPlus::seed_from_u64(0);
    assert_eq!(
        rand_core::RngCore::next_u32(&mut rng),
        rand_core::RngCore::next_u32(&mut fresh)
    );
}

#[test]
fn malformed_files_are_refused_without_panic() {
    let bytes = model(2, 2, 10, 0.1, 0.0, false);
    // Every truncation and every single-bit flip (resealed, so the body
    // checks run): an error or a model that samples without panicking.
    for len in 0..bytes.len() {
        let words = aligned(&bytes[..len]);
        assert!(parse(&words, len).is_err());
    }
    let mut work = vec![0f32; 256];
    for i in crate::format::HEADER_LEN..bytes.len() - crate::format::CRC_LEN {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            crate::format::reseal(&mut b);
            let words = aligned(&b);
            if let Ok(m) = parse(&words, b.len()) {
                let mut out = vec![0f32; m.dim()];
                let n = m.work_len().min(work.len());
                let _ = m.sample(
                    &mut Xoshiro128PlusPlus::seed_from_u64(0),
                    &mut out,
                    &mut work[..n],
                );
            }
        }
    }
}

#[test]
fn inconsistent_parameters_are_refused_by_the_writer() {
    let alpha_bar = LINEAR.alpha_bar(5).unwrap();
    let w = [0.1f32; 2 * 5];
    let b = [0f32; 2];
    let layer = |inputs| LayerParams {
        inputs,
        outputs: 2,
        activation: Activation::Identity,
        weight: &w[..2 * inputs],
        bias: &b,
    };
    let ok_scale = [1f32; 2];
    let params =
        |embedding, inputs, alpha: &'static [f32], scale: &'static [f32]| DiffusionParams {
            embedding,
            schedule: Schedule::Custom,
            alpha_bar: alpha,
            clip: false,
            sampler: Sampler::ddim(2),
            layers: vec![layer(inputs)],
            scale,
            offset: &[0.0, 0.0],
            skip: None,
        };
    let leaked: &'static [f32] = std::boxed::Box::leak(alpha_bar.into_boxed_slice());
    let scale: &'static [f32] = std::boxed::Box::leak(std::boxed::Box::new(ok_scale));
    assert!(params(2, 4, leaked, scale).encode().is_ok());
    // Odd embedding; predictor input not D + E.
    assert!(params(3, 5, leaked, scale).encode().is_err());
    assert!(params(2, 3, leaked, scale).encode().is_err());
    // A schedule that increases, or reaches 0.
    assert!(params(2, 4, &[0.9, 0.95, 0.5], scale).encode().is_err());
    assert!(params(2, 4, &[0.9, 0.5, 0.0], scale).encode().is_err());
    // Non-finite scale.
    assert!(params(2, 4, leaked, &[1.0, f32::NAN]).encode().is_err());
    // Skip statistics: a negative variance, a wrong length.
    let with_skip = |mean: &'static [f32], variance: &'static [f32]| DiffusionParams {
        skip: Some((mean, variance)),
        ..params(2, 4, leaked, scale)
    };
    assert!(with_skip(&[0.0, 0.5], &[1.0, 0.25]).encode().is_ok());
    assert!(with_skip(&[0.0, 0.5], &[1.0, -0.25]).encode().is_err());
    assert!(with_skip(&[0.0], &[1.0]).encode().is_err());
}

/// With the linear skip and a zero network, the noise estimate is the
/// skip's closed form `sqrt(1 - a) (x - sqrt(a) m) / (a v + 1 - a)`; for
/// unit-variance data at the noisiest step it is close to `x`.
#[test]
fn the_linear_skip_is_the_gaussian_noise_estimate() {
    let alpha_bar = LINEAR.alpha_bar(10).unwrap();
    let (w, b) = ([0f32; 8], [0f32; 2]);
    let bytes = DiffusionParams {
        embedding: 2,
        schedule: LINEAR,
        alpha_bar: &alpha_bar,
        clip: false,
        sampler: Sampler::ddim(3),
        layers: vec![LayerParams {
            inputs: 4,
            outputs: 2,
            activation: Activation::Identity,
            weight: &w,
            bias: &b,
        }],
        scale: &[1.0, 1.0],
        offset: &[0.0, 0.0],
        skip: Some((&[0.5, -1.0], &[0.25, 2.0])),
    }
    .encode()
    .unwrap();
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).unwrap();
    assert!(m.spec().skip);
    let x = [0.8f32, -0.3];
    let (mut a, mut bb) = ([0f32; 8], [0f32; 8]);
    let mut eps = [0f32; 2];
    for t in [1u32, 5, 10] {
        m.predict_noise(&x, t, &mut eps, &mut a, &mut bb).unwrap();
        let al = f64::from(alpha_bar[t as usize - 1]);
        for (j, (mean, var)) in [(0.5, 0.25), (-1.0, 2.0)].into_iter().enumerate() {
            let want =
                (1.0 - al).sqrt() * (f64::from(x[j]) - al.sqrt() * mean) / (al * var + 1.0 - al);
            assert!(
                (f64::from(eps[j]) - want).abs() < 1e-5 * want.abs().max(1.0),
                "t {t}: {} vs {want}",
                eps[j]
            );
        }
    }
}
