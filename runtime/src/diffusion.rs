//! Diffusion models (DDPM, Ho et al. 2020) read in place from a model
//! file: a noise predictor and its noise schedule, sampled with no heap by
//! ancestral DDPM steps or deterministic DDIM steps (Song et al. 2021).
//!
//! A file of kind [`ModelKind::Diffusion`] holds ([`DiffusionSpec`]):
//! * the data dimension `D`, the time embedding's width `E` and the number
//!   of training steps `T`;
//! * the noise predictor, an MLP (a [`NetworkSpec`] with the encoder's
//!   layout) from `D + E` inputs, the noisy point `x_t` followed by the
//!   embedding of `t` ([`time_embedding`]), to `D` outputs, its estimate of
//!   the noise in `x_t`;
//! * the schedule as `T` values `alpha_bar[t]` (`t = 1..=T`, the product of
//!   `1 - beta_s` for `s <= t`), strictly decreasing in (0, 1); they are
//!   what the sampler uses (the spec's [`Schedule`] names how they were
//!   made);
//! * the map from the model's space back to data: per feature
//!   `y = x scale + offset`, and whether predictions of `x_0` are clipped
//!   to [-1, 1] (data scaled there for training, as images are);
//! * optionally a linear skip: per feature the data's mean `m` and
//!   variance `v` (model space), with which the noise estimate is the
//!   network's output plus `sqrt(1 - a) (x_t - sqrt(a) m) / (a v + 1 - a)`
//!   (`a = alpha_bar[t]`): the best linear estimate of the noise for
//!   Gaussian data of that mean and variance, so the network only learns
//!   what is not linear (an MLP narrower than the data cannot pass the
//!   noise through);
//! * a default [`Sampler`] (steps and eta) for callers that do not choose.
//!
//! # Sampling
//!
//! [`Diffusion::sample_in`] with `S` steps and `eta` visits the timesteps
//! `tau_i = 1 + floor(i T / S)` for `i = S-1 .. 0` (all of `T..1` when
//! `S = T`). It starts from `x` of `D` standard normals
//! ([`crate::prior::standard_normals`]) and at each step, with
//! `a = alpha_bar[tau_i]` and `p = alpha_bar[tau_{i-1}]` (1 after the last):
//!
//! ```text
//! eps   = predictor(x, embedding(tau_i))
//! x0    = (x - sqrt(1 - a) eps) / sqrt(a)
//! if the file clips: x0 = clamp(x0, -1, 1), eps = (x - sqrt(a) x0) / sqrt(1 - a)
//! sigma = eta sqrt((1 - p) / (1 - a)) sqrt(1 - a / p)
//! x     = sqrt(p) x0 + sqrt(1 - p - sigma^2) eps + sigma z
//! ```
//!
//! with `z` fresh standard normals (drawn only when `sigma > 0`). `eta = 1`
//! with `S = T` is the DDPM ancestral sampler with the posterior variance;
//! `eta = 0` is DDIM, deterministic after the first draw. The output is
//! `x scale + offset`. The noise is recomputed from the clipped `x0`, as
//! diffusers' DDIM does: with the network's own estimate next to a clipped
//! `x0` the steps feed the estimate back into `x` and can diverge.
//!
//! # Numerics
//!
//! The per-step coefficients (and the skip's `a`, `1 - a`, `sqrt(a)`,
//! `sqrt(1 - a)`) are computed in f64 from the stored f32 values (`sqrt`,
//! `/`) and rounded once to f32; the skip adds, per feature, `noise (x -
//! signal m) / (a v + rest)` in f32 in that order; the predictor runs with
//! [`Network`]'s numerics (fused multiply-adds); each element update is f32
//! in the order written above (no fused multiply-add there). The embedding
//! uses libm's `expf`, `sinf` and `cosf`. The host and every device
//! therefore draw the same bits.
//!
//! # Memory
//!
//! The caller's work buffer of [`Diffusion::work_len`] f32 values
//! (`2 D + 2 W`, `W` = [`Diffusion::predictor_width`], the larger of the
//! predictor's input `D + E` and its widest hidden layer) and the `D`
//! output values, which hold `x` during sampling.

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::format::{self, Header, ModelKind};
use crate::network::{Network, NetworkSpec, check_len};
use crate::prior::{Prior, standard_normals};
use crate::{Error, Shape};

/// Schema key of the diffusion body.
pub const SCHEMA_KEY: u32 = format::schema_key(
    "diffusion/1 spec{data:u16 embedding:u16 steps:u16 schedule:{linear{beta_start:f32 \
     beta_end:f32},cosine{offset:f32},custom} clip:bool skip:bool sampler{steps:u16 eta:f32} \
     predictor:mlp/1 spec (encoder from data+embedding to data, prior none)} \
     data:f32[predictor weights as mlp/1; alpha_bar steps; scale data; offset data; \
     if skip: mean data, variance data]",
);

const DATA_LENGTH: Error = Error::InvalidShape(Shape::DataLength);
const INTERNAL: Error = Error::InvalidShape(Shape::Internal);

/// How the schedule's values were made (the stored `alpha_bar` values are
/// what sampling uses).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Schedule {
    /// `beta_t` linear from `beta_start` (t = 1) to `beta_end` (t = T).
    Linear {
        /// First beta.
        beta_start: f32,
        /// Last beta.
        beta_end: f32,
    },
    /// Nichol and Dhariwal's `alpha_bar(t) = f(t) / f(0)`,
    /// `f(t) = cos^2((t / T + s) / (1 + s) pi / 2)`, betas at most 0.999.
    Cosine {
        /// The offset `s`.
        offset: f32,
    },
    /// Any other strictly decreasing values.
    Custom,
}

/// How to sample: the number of denoising steps and the noise weight.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sampler {
    /// Denoising steps, 1 to the model's `T`.
    pub steps: u16,
    /// Weight of the fresh noise: 1 ancestral (DDPM's posterior variance),
    /// 0 deterministic (DDIM); between 0 and 1.
    pub eta: f32,
}

impl Sampler {
    /// Ancestral DDPM sampling over all `steps` training steps.
    pub const fn ddpm(steps: u16) -> Self {
        Self { steps, eta: 1.0 }
    }

    /// Deterministic DDIM sampling in `steps` steps.
    pub const fn ddim(steps: u16) -> Self {
        Self { steps, eta: 0.0 }
    }
}

/// Metadata of a diffusion file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DiffusionSpec {
    /// Dimension of a data point, `D`.
    pub data: u16,
    /// Width of the time embedding, `E` (even, at least 2).
    pub embedding: u16,
    /// Training steps, `T`.
    pub steps: u16,
    /// How the stored schedule was made.
    pub schedule: Schedule,
    /// Whether predictions of `x_0` are clipped to [-1, 1].
    pub clip: bool,
    /// Whether the noise estimate adds the linear skip (the data's mean and
    /// variance follow the output map).
    pub skip: bool,
    /// The sampler [`Diffusion::sample`] uses.
    pub sampler: Sampler,
    /// The noise predictor: an encoder-shaped MLP from `D + E` to `D`
    /// without prior.
    pub predictor: NetworkSpec,
}

/// The sinusoidal embedding of timestep `t` into `out` (even length `E`):
/// with `h = E / 2` and `w_k = expf(-ln(10000) k / h)` for `k < h`,
/// `out[k] = sinf(t w_k)` and `out[h + k] = cosf(t w_k)` (all in f32; the
/// products `t w_k` rounded once). `DimensionMismatch` for an odd or empty
/// `out`.
pub fn time_embedding(t: u32, out: &mut [f32]) -> Result<(), Error> {
    let half = out.len() / 2;
    if half == 0 || !out.len().is_multiple_of(2) {
        return Err(Error::DimensionMismatch {
            expected: 2 * half.max(1),
            found: out.len(),
        });
    }
    let (sines, cosines) = out.split_at_mut(half);
    let t = t as f32;
    for (k, (s, c)) in sines.iter_mut().zip(cosines.iter_mut()).enumerate() {
        let w = libm::expf(-LN_10000 * k as f32 / half as f32);
        let angle = t * w;
        *s = libm::sinf(angle);
        *c = libm::cosf(angle);
    }
    Ok(())
}

/// `ln(10000)` rounded to f32.
const LN_10000: f32 = 9.210_34;

/// A diffusion model borrowed from a model file.
#[derive(Debug, Clone, Copy)]
pub struct Diffusion<'a> {
    header: Header,
    spec: DiffusionSpec,
    predictor: Network<'a>,
    alpha_bar: &'a [f32],
    scale: &'a [f32],
    offset: &'a [f32],
    /// The data's mean and variance per feature (empty without skip).
    mean: &'a [f32],
    variance: &'a [f32],
}

impl<'a> Diffusion<'a> {
    /// Parses and validates a diffusion file without copying its weights
    /// (4-byte aligned, see [`crate::Aligned`]).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_file(format::open(bytes)?)
    }

    /// Parses a checked file (see [`format::File`]).
    pub(crate) fn from_file(file: format::File<'a>) -> Result<Self, Error> {
        let (header, spec, data) =
            file.read_body::<DiffusionSpec>(&[ModelKind::Diffusion], SCHEMA_KEY)?;
        Self::from_parts(header, spec, data)
    }

    fn from_parts(header: Header, spec: DiffusionSpec, data: &'a [f32]) -> Result<Self, Error> {
        let d = usize::from(spec.data);
        let e = usize::from(spec.embedding);
        let t = usize::from(spec.steps);
        if d == 0 || e == 0 || t == 0 {
            return Err(Error::InvalidShape(Shape::Empty));
        }
        let p = &spec.predictor;
        let consistent = e.is_multiple_of(2)
            && p.prior == Prior::None
            && usize::from(p.data) == d + e
            && usize::from(p.latent) == d;
        if !consistent {
            return Err(Error::InvalidShape(Shape::Diffusion));
        }
        let weights = p.stored_values().ok_or(DATA_LENGTH)?;
        let (w, rest) = data.split_at_checked(weights).ok_or(DATA_LENGTH)?;
        let predictor = Network::from_parts(header, ModelKind::Encoder, *p, w)?;
        let (alpha_bar, rest) = rest.split_at_checked(t).ok_or(DATA_LENGTH)?;
        let (scale, rest) = rest.split_at_checked(d).ok_or(DATA_LENGTH)?;
        let (offset, rest) = rest.split_at_checked(d).ok_or(DATA_LENGTH)?;
        let (mean, variance) = match spec.skip {
            true => rest.split_at_checked(d).ok_or(DATA_LENGTH)?,
            false => (&[][..], &[][..]),
        };
        if variance.len() != if spec.skip { d } else { 0 } {
            return Err(DATA_LENGTH);
        }
        let decreasing = alpha_bar.first().is_some_and(|&a| a < 1.0)
            && alpha_bar.last().is_some_and(|&a| a > 0.0)
            && alpha_bar
                .iter()
                .zip(alpha_bar.iter().skip(1))
                .all(|(a, b)| b < a);
        if !decreasing {
            return Err(Error::InvalidShape(Shape::Diffusion));
        }
        if scale
            .iter()
            .chain(offset)
            .chain(mean)
            .chain(variance)
            .any(|v| !v.is_finite())
        {
            return Err(Error::NonFiniteParameter);
        }
        if variance.iter().any(|&v| v < 0.0) {
            return Err(Error::ParameterOutOfRange);
        }
        check_sampler(spec.sampler, spec.steps).map_err(|_| Error::InvalidParameters)?;
        Ok(Self {
            header,
            spec,
            predictor,
            alpha_bar,
            scale,
            offset,
            mean,
            variance,
        })
    }

    /// The checked file header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The model's metadata.
    pub fn spec(&self) -> DiffusionSpec {
        self.spec
    }

    /// The noise predictor (an encoder-shaped network from `D + E` to `D`).
    pub fn predictor(&self) -> &Network<'a> {
        &self.predictor
    }

    /// `alpha_bar[t]` for `t = 1..=T`.
    pub fn alpha_bar(&self) -> &'a [f32] {
        self.alpha_bar
    }

    /// Dimension of a sample, `D`.
    pub fn dim(&self) -> usize {
        usize::from(self.spec.data)
    }

    /// Width of the time embedding, `E`.
    pub fn embedding_dim(&self) -> usize {
        usize::from(self.spec.embedding)
    }

    /// Number of `f32` values the file stores.
    pub fn stored_values(&self) -> usize {
        self.predictor.parameters()
            + self.alpha_bar.len()
            + 2 * self.dim()
            + self.mean.len()
            + self.variance.len()
    }

    /// Multiply-accumulates of one denoising step (one predictor pass).
    pub fn macs_per_step(&self) -> usize {
        self.predictor.macs()
    }

    /// The width each of the predictor's two buffers must hold: its input
    /// `D + E` (built in place) or its widest hidden layer, whichever is
    /// larger.
    pub fn predictor_width(&self) -> usize {
        (self.dim() + self.embedding_dim()).max(self.predictor.hidden_width())
    }

    /// Values the work buffer of [`Self::sample_in`] must hold: `2 D + 2 W`
    /// (`W` = [`Self::predictor_width`]).
    pub fn work_len(&self) -> usize {
        2 * self.dim() + 2 * self.predictor_width()
    }

    /// The noise predictor's estimate for the noisy point `x` (D values) at
    /// timestep `t` (1 to T) into `eps` (D values), in two buffers of at
    /// least [`Self::predictor_width`] values each.
    ///
    /// Errors: `DimensionMismatch` for wrong lengths, `InvalidParameters`
    /// for `t` outside 1..=T, `TooWide` for short buffers,
    /// `NonFiniteInput`.
    pub fn predict_noise(
        &self,
        x: &[f32],
        t: u32,
        eps: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
    ) -> Result<(), Error> {
        check_len(self.dim(), x.len())?;
        check_len(self.dim(), eps.len())?;
        if t == 0 || t > u32::from(self.spec.steps) {
            return Err(Error::InvalidParameters);
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let width = self.predictor_width();
        let room = a.len().min(b.len());
        if width > room {
            return Err(Error::TooWide { width, max: room });
        }
        let input = b
            .get_mut(..self.dim() + self.embedding_dim())
            .ok_or(INTERNAL)?;
        let (x_part, emb) = input.split_at_mut_checked(self.dim()).ok_or(INTERNAL)?;
        x_part.copy_from_slice(x);
        time_embedding(t, emb)?;
        self.predictor.run(None, eps, a, b)?;
        if self.spec.skip {
            // The linear skip, with f32 coefficients rounded once from f64.
            let alpha = f64::from(*self.alpha_bar.get(t as usize - 1).ok_or(INTERNAL)?);
            let (a32, rest) = (alpha as f32, (1.0 - alpha) as f32);
            let (signal, noise) = (libm::sqrt(alpha) as f32, libm::sqrt(1.0 - alpha) as f32);
            let stats = self.mean.iter().zip(self.variance);
            for ((e, &xj), (&m, &v)) in eps.iter_mut().zip(x).zip(stats) {
                *e += noise * (xj - signal * m) / (a32 * v + rest);
            }
        }
        Ok(())
    }

    /// One noise prediction from a row `input` of `D + 1` values, the noisy
    /// point then its timestep (a whole number from 1 to T, as f32), into
    /// `eps` (D values): [`Self::predict_noise`] for callers that pass rows
    /// ([`crate::AnyModel::eval`], the C API's `tg_decode`).
    /// `NonFiniteInput` for a NaN or infinite value, `InvalidParameters`
    /// for a timestep that is not such a number.
    pub fn eval_in(
        &self,
        input: &[f32],
        eps: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
    ) -> Result<(), Error> {
        let (x, t) = match input.split_last() {
            Some((&t, x)) if x.len() == self.dim() => (x, t),
            _ => {
                return Err(Error::DimensionMismatch {
                    expected: self.dim() + 1,
                    found: input.len(),
                });
            }
        };
        if !t.is_finite() {
            return Err(Error::NonFiniteInput);
        }
        if !(t >= 1.0 && t <= f32::from(self.spec.steps) && t == libm::truncf(t)) {
            return Err(Error::InvalidParameters);
        }
        self.predict_noise(x, t as u32, eps, a, b)
    }

    /// Draws one sample into `out` (D values) with the file's default
    /// sampler (see [`Self::sample_in`]).
    pub fn sample<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f32],
        work: &mut [f32],
    ) -> Result<(), Error> {
        self.sample_in(rng, self.spec.sampler, out, work)
    }

    /// Draws one sample into `out` (D values) by `sampler`'s steps (see the
    /// module's documentation), using `work` (at least [`Self::work_len`]
    /// values).
    ///
    /// Errors: `DimensionMismatch` for a wrong `out` length,
    /// `BufferTooSmall` for a short `work`, `InvalidParameters` for 0 or
    /// more than T steps or an eta outside [0, 1]; nothing is drawn from
    /// `rng` then. `NonFiniteOutput` if a step's result is not finite.
    pub fn sample_in<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        sampler: Sampler,
        out: &mut [f32],
        work: &mut [f32],
    ) -> Result<(), Error> {
        let d = self.dim();
        check_len(d, out.len())?;
        check_sampler(sampler, self.spec.steps)?;
        let needed = self.work_len();
        let found = work.len();
        let work = work
            .get_mut(..needed)
            .ok_or(Error::BufferTooSmall { needed, found })?;
        // work: [eps (D) | noise (D) | the predictor's two buffers].
        let (eps, rest) = work.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let (noise, rest) = rest.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let (a, b) = rest.split_at_mut_checked(rest.len() / 2).ok_or(INTERNAL)?;
        standard_normals(rng, out);
        let (steps, total) = (u32::from(sampler.steps), u32::from(self.spec.steps));
        for i in (0..steps).rev() {
            let t = timestep(i, steps, total);
            let prev = if i == 0 {
                0
            } else {
                timestep(i - 1, steps, total)
            };
            self.predict_noise(out, t, eps, a, b)?;
            let c = self.coefficients(t, prev, sampler.eta)?;
            if c.sigma > 0.0 {
                standard_normals(rng, noise);
            }
            for ((x, &e), &z) in out.iter_mut().zip(eps.iter()).zip(noise.iter()) {
                let mut x0 = (*x - c.noise_scale * e) * c.inv_signal;
                let mut e = e;
                if self.spec.clip {
                    x0 = x0.clamp(-1.0, 1.0);
                    e = (*x - c.signal * x0) * c.inv_noise_scale;
                }
                let mut next = c.prev_signal * x0 + c.direction * e;
                if c.sigma > 0.0 {
                    next += c.sigma * z;
                }
                if !next.is_finite() {
                    return Err(Error::NonFiniteOutput);
                }
                *x = next;
            }
        }
        for ((y, &s), &o) in out.iter_mut().zip(self.scale).zip(self.offset) {
            *y = *y * s + o;
        }
        Ok(())
    }

    /// The f32 coefficients of the step from `t` to `prev` (0: the end).
    fn coefficients(&self, t: u32, prev: u32, eta: f32) -> Result<StepCoefficients, Error> {
        let at = |s: u32| -> Result<f64, Error> {
            match s {
                0 => Ok(1.0),
                s => self
                    .alpha_bar
                    .get(s as usize - 1)
                    .map(|&v| f64::from(v))
                    .ok_or(INTERNAL),
            }
        };
        let (a, p) = (at(t)?, at(prev)?);
        let sigma = if eta > 0.0 && prev > 0 {
            f64::from(eta) * libm::sqrt((1.0 - p) / (1.0 - a)) * libm::sqrt(1.0 - a / p)
        } else {
            0.0
        };
        let direction = libm::sqrt((1.0 - p - sigma * sigma).max(0.0));
        Ok(StepCoefficients {
            noise_scale: libm::sqrt(1.0 - a) as f32,
            inv_noise_scale: (1.0 / libm::sqrt(1.0 - a)) as f32,
            signal: libm::sqrt(a) as f32,
            inv_signal: (1.0 / libm::sqrt(a)) as f32,
            prev_signal: libm::sqrt(p) as f32,
            direction: direction as f32,
            sigma: sigma as f32,
        })
    }
}

/// The f32 coefficients of one step (see the module's documentation).
struct StepCoefficients {
    noise_scale: f32,
    inv_noise_scale: f32,
    signal: f32,
    inv_signal: f32,
    prev_signal: f32,
    direction: f32,
    sigma: f32,
}

/// The timestep of sampling step `i` of `steps` over `total` training
/// steps: `1 + floor(i total / steps)`.
pub fn timestep(i: u32, steps: u32, total: u32) -> u32 {
    1 + (u64::from(i) * u64::from(total) / u64::from(steps.max(1))) as u32
}

fn check_sampler(sampler: Sampler, total: u16) -> Result<(), Error> {
    if sampler.steps == 0 || sampler.steps > total || !(0.0..=1.0).contains(&sampler.eta) {
        return Err(Error::InvalidParameters);
    }
    Ok(())
}

#[cfg(feature = "alloc")]
mod encode;
#[cfg(feature = "alloc")]
pub use encode::DiffusionParams;

#[cfg(all(test, feature = "alloc"))]
mod tests;
