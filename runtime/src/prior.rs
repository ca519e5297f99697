//! Latent priors: the distribution a generative network's codes are drawn
//! from, stored with the network and sampled on the device.
//!
//! Sampling takes any [`rand_core::RngCore`]; the recommended generator is
//! [`crate::Xoshiro128PlusPlus`] (from `rand_xoshiro`), seeded with
//! `SeedableRng::seed_from_u64` (which expands the seed with SplitMix64).
//! Only `next_u32` is ever called, so a host can replay a device's samples
//! draw for draw.
//!
//! # The exact recipe
//!
//! All arithmetic is `f32`, with libm's `logf`, `sqrtf`, `cosf`, `sinf`
//! (also under the `micromath` feature: sampling never uses micromath).
//!
//! * **Uniform variate** [`unit()`]: `u = ((next_u32() >> 8) + 1) * 2^-24`,
//!   in (0, 1]. The top 24 bits plus one are an integer in 1..=2^24, so the
//!   conversion and the scaling are exact.
//! * **Normal pair** [`normal_pair`]: `u1 = unit()`, then `u2 = unit()`;
//!   `r = sqrtf(-2 * logf(u1))`, `t = TAU * u2` (`TAU` = 2π as `f32`);
//!   the pair is `(r * cosf(t), r * sinf(t))`.
//! * **Standard normal vector** [`standard_normals`] of length `n`: pairs in
//!   order, `(z[0], z[1])` from the first pair, `(z[2], z[3])` from the
//!   second, ...; when `n` is odd the last value is the cosine half of one
//!   more pair and its sine half is dropped. So `n` values take
//!   `2 * ceil(n / 2)` calls of `next_u32`.
//!
//! The priors, for a latent of dimension `d`:
//!
//! | prior | draw |
//! | --- | --- |
//! | [`Prior::Gaussian`] | `z` = standard normal vector of length `d` |
//! | [`Prior::Uniform`] | `z[i] = 2 * unit() - 1` for `i` in order, in (-1, 1] |
//! | [`Prior::Circle`] (`d` = 2) | `r = unit()` (uniform radius, not its square root), then `t = TAU * unit()`; `z = (r cosf t, r sinf t)` |
//! | [`Prior::Ring`] (`d` = 2) | `t = TAU * unit()`, then one normal pair `(n0, n1)`; `z = (cosf t + noise * n0, sinf t + noise * n1)` |
//! | [`Prior::Mixture`] | see below |
//!
//! A mixture of `K` Gaussians stores its weights `w` (K, positive), means
//! `mu` (K x d, row-major) and lower-triangular Cholesky factors `L` of the
//! covariances (K x d x d, row-major, zeros above the diagonal). One draw:
//! `target = unit() * total`, where `total` is the `f32` sum of the weights
//! in index order; the component is the first `k` whose cumulative `f32`
//! sum `c_k = w_0 + ... + w_k` (summed in index order) satisfies
//! `target <= c_k` (the last component if rounding leaves none); then `n`
//! = standard normal vector of length `d`, and
//! `z[i] = mu_k[i] + L_k[i][0] * n[0] + ... + L_k[i][i] * n[i]`,
//! accumulated from the mean in ascending `j`.

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::{Error, Shape};

const DATA_LENGTH: Error = Error::InvalidShape(Shape::DataLength);

/// The kind of latent prior a network file stores (its spec part; a
/// mixture's parameters are in the file's data).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Prior {
    /// No prior: the network decodes or encodes, but cannot sample.
    None,
    /// Standard normal N(0, I).
    Gaussian,
    /// Uniform on the cube (-1, 1]^d.
    Uniform,
    /// Filled unit disc (d = 2), radius uniform in (0, 1] (so denser near
    /// the centre; mean radius 1/2), angle uniform.
    Circle,
    /// Noisy unit circle (d = 2): a uniform angle on the unit circle plus
    /// N(0, noise²) on each coordinate.
    Ring {
        /// Standard deviation of the noise on each coordinate (finite, >= 0).
        noise: f32,
    },
    /// Gaussian mixture with full covariances (given by their Cholesky factors).
    Mixture {
        /// Number of components K (at least one).
        components: u16,
    },
}

impl Prior {
    /// Short lower-case name, as printed by `tinygen info`.
    pub fn name(self) -> &'static str {
        match self {
            Prior::None => "none",
            Prior::Gaussian => "gaussian",
            Prior::Uniform => "uniform",
            Prior::Circle => "circle",
            Prior::Ring { .. } => "ring",
            Prior::Mixture { .. } => "mixture",
        }
    }

    /// Number of `f32` values the prior stores in a file's data for a
    /// latent of dimension `dim`: `K + K d + K d²` for a mixture, else zero.
    /// `None` on overflow.
    pub fn stored_values(self, dim: usize) -> Option<usize> {
        match self {
            Prior::Mixture { components } => {
                let k = usize::from(components);
                let kd = k.checked_mul(dim)?;
                k.checked_add(kd)?.checked_add(kd.checked_mul(dim)?)
            }
            _ => Some(0),
        }
    }
}

/// A validated latent prior, its mixture parameters borrowed in place.
#[derive(Debug, Clone, Copy)]
pub struct LatentPrior<'a> {
    prior: Prior,
    dim: usize,
    weights: &'a [f32],
    means: &'a [f32],
    cholesky: &'a [f32],
    /// `f32` sum of the mixture weights in index order.
    total: f32,
}

impl<'a> LatentPrior<'a> {
    /// Validates a prior over a latent of dimension `dim` with its stored
    /// parameters (empty except for a mixture: weights, means, Cholesky
    /// factors, as laid out in the module docs).
    ///
    /// Errors: `InvalidShape` for a zero dimension or a mixture with no
    /// components (`Shape::Empty`), a circle or ring whose dimension is
    /// not 2 (`PriorDimension`), or a parameter count that does not match
    /// (`DataLength`); `NonFiniteParameter`; `ParameterOutOfRange`
    /// for a negative noise, a mixture weight that is not positive (or
    /// weights whose sum overflows), or a non-zero entry above a Cholesky
    /// factor's diagonal.
    pub fn from_parts(prior: Prior, dim: usize, params: &'a [f32]) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidShape(Shape::Empty));
        }
        let expected = prior.stored_values(dim).ok_or(DATA_LENGTH)?;
        if params.len() != expected {
            return Err(DATA_LENGTH);
        }
        if params.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteParameter);
        }
        let mut parsed = Self {
            prior,
            dim,
            weights: &[],
            means: &[],
            cholesky: &[],
            total: 0.0,
        };
        match prior {
            Prior::None | Prior::Gaussian | Prior::Uniform => {}
            Prior::Circle | Prior::Ring { .. } if dim != 2 => {
                return Err(Error::InvalidShape(Shape::PriorDimension));
            }
            Prior::Circle => {}
            Prior::Ring { noise } => {
                if !noise.is_finite() {
                    return Err(Error::NonFiniteParameter);
                }
                if noise < 0.0 {
                    return Err(Error::ParameterOutOfRange);
                }
            }
            Prior::Mixture { components } => {
                let k = usize::from(components);
                if k == 0 {
                    return Err(Error::InvalidShape(Shape::Empty));
                }
                let kd = k.checked_mul(dim).ok_or(DATA_LENGTH)?;
                let (weights, rest) = params.split_at_checked(k).ok_or(DATA_LENGTH)?;
                let (means, cholesky) = rest.split_at_checked(kd).ok_or(DATA_LENGTH)?;
                let mut total = 0.0f32;
                for &w in weights {
                    if w <= 0.0 {
                        return Err(Error::ParameterOutOfRange);
                    }
                    total += w;
                }
                if !total.is_finite() {
                    return Err(Error::ParameterOutOfRange);
                }
                // Row i of each factor: entries j > i must be zero.
                let d = dim.max(1);
                for factor in cholesky.chunks_exact(d.saturating_mul(d).max(1)) {
                    for (i, row) in factor.chunks_exact(d).enumerate() {
                        if row.iter().skip(i + 1).any(|&v| v != 0.0) {
                            return Err(Error::ParameterOutOfRange);
                        }
                    }
                }
                parsed.weights = weights;
                parsed.means = means;
                parsed.cholesky = cholesky;
                parsed.total = total;
            }
        }
        Ok(parsed)
    }

    /// The prior's kind (and ring noise, mixture size).
    pub fn prior(&self) -> Prior {
        self.prior
    }

    /// Dimension of a latent code.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// A mixture's `(weights, means, cholesky)` as stored (K, K x d,
    /// K x d x d); `None` for the other priors.
    pub fn mixture(&self) -> Option<(&'a [f32], &'a [f32], &'a [f32])> {
        match self.prior {
            Prior::Mixture { .. } => Some((self.weights, self.means, self.cholesky)),
            _ => None,
        }
    }

    /// Draws one latent code into `z` (length [`Self::dim`]) with the recipe
    /// of the module docs.
    ///
    /// Errors: `DimensionMismatch` if `z` has the wrong length, `NoPrior`
    /// for [`Prior::None`]; nothing is drawn from `rng` then.
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R, z: &mut [f32]) -> Result<(), Error> {
        if z.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                found: z.len(),
            });
        }
        match self.prior {
            Prior::None => return Err(Error::NoPrior),
            Prior::Gaussian => standard_normals(rng, z),
            Prior::Uniform => {
                for slot in z.iter_mut() {
                    *slot = 2.0 * unit(rng) - 1.0;
                }
            }
            Prior::Circle => {
                let r = unit(rng);
                let t = core::f32::consts::TAU * unit(rng);
                fill(z, [r * libm::cosf(t), r * libm::sinf(t)]);
            }
            Prior::Ring { noise } => {
                let t = core::f32::consts::TAU * unit(rng);
                let (n0, n1) = normal_pair(rng);
                fill(z, [libm::cosf(t) + noise * n0, libm::sinf(t) + noise * n1]);
            }
            Prior::Mixture { .. } => self.sample_mixture(rng, z),
        }
        Ok(())
    }

    /// One mixture draw: the component, then `mu_k + L_k n` (module docs).
    fn sample_mixture<R: RngCore + ?Sized>(&self, rng: &mut R, z: &mut [f32]) {
        let d = self.dim.max(1);
        let target = unit(rng) * self.total;
        let last = self.weights.len().saturating_sub(1);
        let mut cumulative = 0.0f32;
        let mut k = last;
        for (i, &w) in self.weights.iter().enumerate() {
            cumulative += w;
            if target <= cumulative {
                k = i;
                break;
            }
        }
        standard_normals(rng, z);
        let (Some(mean), Some(factor)) = (
            self.means.chunks_exact(d).nth(k),
            self.cholesky
                .chunks_exact(d.saturating_mul(d).max(1))
                .nth(k),
        ) else {
            return; // never: the lengths were validated
        };
        // z = mean + L n, overwriting n in place from the last row up: row i
        // reads n[0..=i] only, so rows below i are already done.
        for (i, (row, &mu)) in factor.chunks_exact(d).zip(mean).enumerate().rev() {
            let mut acc = mu;
            for (&l, &n) in row.iter().zip(z.iter()).take(i + 1) {
                acc += l * n;
            }
            if let Some(slot) = z.get_mut(i) {
                *slot = acc;
            }
        }
    }
}

/// Copies a two-dimensional draw into `z` (whose length is checked).
fn fill(z: &mut [f32], values: [f32; 2]) {
    for (slot, v) in z.iter_mut().zip(values) {
        *slot = v;
    }
}

/// A uniform variate in (0, 1]: `((next_u32() >> 8) + 1) * 2^-24`, exact.
///
/// ```
/// use tinygen_runtime::prior::unit;
/// use tinygen_runtime::rand_core::SeedableRng;
/// let mut rng = tinygen_runtime::Xoshiro128PlusPlus::seed_from_u64(7);
/// let u = unit(&mut rng);
/// assert!(u > 0.0 && u <= 1.0);
/// ```
#[inline]
pub fn unit<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
    ((rng.next_u32() >> 8) + 1) as f32 * SCALE
}

/// Two independent standard normals by Box–Muller: `u1 = unit()`, then
/// `u2 = unit()`, `r = sqrtf(-2 logf(u1))`, `t = TAU u2`, and the pair
/// `(r cosf t, r sinf t)`.
#[inline]
pub fn normal_pair<R: RngCore + ?Sized>(rng: &mut R) -> (f32, f32) {
    let u1 = unit(rng);
    let u2 = unit(rng);
    let r = crate::math::sqrt(-2.0 * libm::logf(u1));
    let t = core::f32::consts::TAU * u2;
    (r * libm::cosf(t), r * libm::sinf(t))
}

/// Fills `out` with standard normals, both values of each
/// [`normal_pair`] in order; an odd length's last value is the first
/// (cosine) value of one more pair, whose second value is dropped.
pub fn standard_normals<R: RngCore + ?Sized>(rng: &mut R, out: &mut [f32]) {
    let (pairs, odd) = out.as_chunks_mut::<2>();
    for pair in pairs {
        let (a, b) = normal_pair(rng);
        *pair = [a, b];
    }
    if let Some(last) = odd.first_mut() {
        *last = normal_pair(rng).0;
    }
}

#[cfg(test)]
mod tests;
