//! Writing diffusion files, and the schedules' values (one home for the
//! trainer, which trains with exactly the values the file stores).

use alloc::vec::Vec;

use super::{Diffusion, DiffusionSpec, SCHEMA_KEY, Sampler, Schedule};
use crate::Error;
use crate::format::{self, ModelKind};
use crate::network::{DecoderParams, LayerParams, PriorParams, Role};

impl Schedule {
    /// `alpha_bar[t]` for `t = 1..=steps`, computed in f64 and rounded to
    /// f32: for [`Schedule::Linear`] the running product of `1 - beta_t`;
    /// for [`Schedule::Cosine`] `f(t) / f(0)` with each `beta_t = 1 -
    /// alpha_bar[t] / alpha_bar[t-1]` capped at 0.999 (Nichol and Dhariwal,
    /// 2021) and the product taken over the capped betas.
    ///
    /// `InvalidParameters` for 0 steps, betas outside (0, 1), a negative or
    /// non-finite offset, a [`Schedule::Custom`] schedule, or values that
    /// are not strictly decreasing in f32.
    pub fn alpha_bar(&self, steps: u16) -> Result<Vec<f32>, Error> {
        let n = usize::from(steps);
        if n == 0 {
            return Err(Error::InvalidParameters);
        }
        let betas: Vec<f64> = match *self {
            Schedule::Linear {
                beta_start,
                beta_end,
            } => {
                let (b0, b1) = (f64::from(beta_start), f64::from(beta_end));
                let ok = |b: f64| b > 0.0 && b < 1.0;
                if !(ok(b0) && ok(b1)) {
                    return Err(Error::InvalidParameters);
                }
                (0..n)
                    .map(|i| match n {
                        1 => b0,
                        _ => b0 + (b1 - b0) * i as f64 / (n - 1) as f64,
                    })
                    .collect()
            }
            Schedule::Cosine { offset } => {
                let s = f64::from(offset);
                if !(s.is_finite() && s >= 0.0) {
                    return Err(Error::InvalidParameters);
                }
                let f = |t: usize| {
                    let c = libm::cos(
                        (t as f64 / n as f64 + s) / (1.0 + s) * core::f64::consts::FRAC_PI_2,
                    );
                    c * c
                };
                (1..=n)
                    .map(|t| (1.0 - f(t) / f(t - 1)).clamp(0.0, 0.999))
                    .collect()
            }
            Schedule::Custom => return Err(Error::InvalidParameters),
        };
        let mut product = 1.0f64;
        let values: Vec<f32> = betas
            .iter()
            .map(|b| {
                product *= 1.0 - b;
                product as f32
            })
            .collect();
        let decreasing = values.first().is_some_and(|&a| a < 1.0)
            && values.last().is_some_and(|&a| a > 0.0)
            && values.iter().zip(values.iter().skip(1)).all(|(a, b)| b < a);
        if !decreasing {
            return Err(Error::InvalidParameters);
        }
        Ok(values)
    }
}

/// A trained diffusion model, ready to encode as a model file.
#[derive(Debug, Clone)]
pub struct DiffusionParams<'p> {
    /// Width of the time embedding (even).
    pub embedding: usize,
    /// How `alpha_bar` was made.
    pub schedule: Schedule,
    /// `alpha_bar[t]` for `t = 1..=T`.
    pub alpha_bar: &'p [f32],
    /// Whether predictions of `x_0` are clipped to [-1, 1].
    pub clip: bool,
    /// The default sampler.
    pub sampler: Sampler,
    /// The noise predictor's layers, from `D + E` inputs to `D` outputs.
    pub layers: Vec<LayerParams<'p>>,
    /// Per feature, the output's scale (`y = x scale + offset`).
    pub scale: &'p [f32],
    /// Per feature, the output's offset.
    pub offset: &'p [f32],
    /// The linear skip's data mean and variance per feature (model space),
    /// if the noise estimate has one.
    pub skip: Option<(&'p [f32], &'p [f32])>,
}

impl DiffusionParams<'_> {
    /// Encodes the model as a complete `.tgm` file of kind `diffusion`.
    ///
    /// `InvalidParameters` unless the runtime accepts exactly the file
    /// written (see [`Diffusion::from_bytes`]): consistent widths, an even
    /// embedding, a strictly decreasing schedule in (0, 1), finite values,
    /// variances at least 0, skip statistics of the data's length,
    /// a sampler of 1 to T steps with eta in [0, 1].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let bad = |_| Error::InvalidParameters;
        let data_dim = self.scale.len();
        let predictor = DecoderParams {
            role: Role::Encoder,
            latent: data_dim,
            layers: self.layers.clone(),
            prior: PriorParams::None,
        };
        let (_, network, mut data) = predictor.stored()?;
        data.extend_from_slice(self.alpha_bar);
        data.extend_from_slice(self.scale);
        data.extend_from_slice(self.offset);
        if let Some((mean, variance)) = self.skip {
            if mean.len() != data_dim || variance.len() != data_dim {
                return Err(Error::InvalidParameters);
            }
            data.extend_from_slice(mean);
            data.extend_from_slice(variance);
        }
        let spec = DiffusionSpec {
            data: u16::try_from(data_dim).map_err(bad)?,
            embedding: u16::try_from(self.embedding).map_err(bad)?,
            steps: u16::try_from(self.alpha_bar.len()).map_err(bad)?,
            schedule: self.schedule,
            clip: self.clip,
            skip: self.skip.is_some(),
            sampler: self.sampler,
            predictor: network,
        };
        let bytes = format::write(ModelKind::Diffusion, SCHEMA_KEY, &spec, &data)?;
        // Exactly the runtime's checks, on exactly the bytes written.
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_ne_bytes(w)
            })
            .collect();
        let aligned = bytemuck::cast_slice::<u32, u8>(&words);
        Diffusion::from_bytes(&aligned[..bytes.len()]).map_err(|_| Error::InvalidParameters)?;
        Ok(bytes)
    }
}
