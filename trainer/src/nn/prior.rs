//! Latent priors the networks are matched to, and how to draw from them.
//!
//! * `gaussian`: N(0, I) in any dimension;
//! * `uniform`: uniform on the square (cube) [-1, 1]^d;
//! * `circle`: 2-D filled disc of radius 1 (radius uniform in [0, 1], angle
//!   uniform), as in the SWAE reference implementation;
//! * `ring`: 2-D unit circle with N(0, 0.01^2) noise on each coordinate;
//! * `gmm:K`: K isotropic Gaussians with standard deviation [`GMM_STD`]
//!   whose means lie evenly on the unit circle of the first two latent
//!   coordinates (component k at angle 2 pi k / K); in one dimension the
//!   means are evenly spaced in [-1, 1].

use std::fmt;
use std::str::FromStr;

use anyhow::bail;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::density::sample::fill_standard_normal;

/// Standard deviation of each component of the `gmm:K` prior.
pub const GMM_STD: f64 = 0.1;
/// Standard deviation of the noise of the `ring` prior.
pub const RING_NOISE: f64 = 0.01;

/// A latent prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Prior {
    /// Standard normal.
    Gaussian,
    /// Uniform on [-1, 1]^d.
    Uniform,
    /// Filled unit disc (2-D).
    Circle,
    /// Noisy unit circle (2-D).
    Ring,
    /// K isotropic Gaussians around the unit circle.
    Gmm(usize),
}

impl fmt::Display for Prior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gaussian => f.write_str("gaussian"),
            Self::Uniform => f.write_str("uniform"),
            Self::Circle => f.write_str("circle"),
            Self::Ring => f.write_str("ring"),
            Self::Gmm(k) => write!(f, "gmm:{k}"),
        }
    }
}

impl FromStr for Prior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gaussian" | "normal" => Ok(Self::Gaussian),
            "uniform" => Ok(Self::Uniform),
            "circle" => Ok(Self::Circle),
            "ring" => Ok(Self::Ring),
            _ => match s.strip_prefix("gmm:").map(str::parse::<usize>) {
                Some(Ok(k)) if k >= 1 => Ok(Self::Gmm(k)),
                _ => Err(format!(
                    "unknown prior {s:?}: expected gaussian, uniform, circle, ring or gmm:K (K >= 1)"
                )),
            },
        }
    }
}

impl From<Prior> for String {
    fn from(p: Prior) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Prior {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl Prior {
    /// Checks that the prior exists in `dim` dimensions.
    pub fn check_dim(&self, dim: usize) -> anyhow::Result<()> {
        if matches!(self, Self::Circle | Self::Ring) && dim != 2 {
            bail!("the {self} prior is two-dimensional; use --latent 2");
        }
        Ok(())
    }

    /// Number of mixture components (1 unless `gmm:K`).
    pub fn components(&self) -> usize {
        match self {
            Self::Gmm(k) => *k,
            _ => 1,
        }
    }

    /// Mean of component `k` of the `gmm:K` prior in `dim` dimensions.
    pub fn component_mean(k: usize, components: usize, dim: usize) -> Vec<f64> {
        let mut m = vec![0.0; dim];
        if dim == 1 {
            m[0] = if components == 1 {
                0.0
            } else {
                -1.0 + 2.0 * k as f64 / (components - 1) as f64
            };
        } else {
            let angle = std::f64::consts::TAU * k as f64 / components as f64;
            m[0] = angle.cos();
            m[1] = angle.sin();
        }
        m
    }

    /// Draws `n` points (row-major, n x dim). `component` restricts a
    /// `gmm:K` prior to one component; other priors ignore it.
    pub fn sample(
        &self,
        n: usize,
        dim: usize,
        component: Option<usize>,
        rng: &mut impl Rng,
    ) -> Vec<f32> {
        let mut out = vec![0f64; n * dim];
        match self {
            Self::Gaussian => fill_standard_normal(rng, &mut out),
            Self::Uniform => out
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-1.0..1.0)),
            Self::Circle => {
                for p in out.chunks_mut(2) {
                    let r: f64 = rng.random();
                    let (s, c) = (std::f64::consts::TAU * rng.random::<f64>()).sin_cos();
                    p[0] = r * c;
                    p[1] = r * s;
                }
            }
            Self::Ring => {
                let mut noise = vec![0f64; 2];
                for p in out.chunks_mut(2) {
                    let (s, c) = (std::f64::consts::TAU * rng.random::<f64>()).sin_cos();
                    fill_standard_normal(rng, &mut noise);
                    p[0] = c + RING_NOISE * noise[0];
                    p[1] = s + RING_NOISE * noise[1];
                }
            }
            Self::Gmm(k) => {
                fill_standard_normal(rng, &mut out);
                for row in out.chunks_mut(dim) {
                    let c = component.unwrap_or_else(|| rng.random_range(0..*k));
                    let mean = Self::component_mean(c, *k, dim);
                    for (v, m) in row.iter_mut().zip(mean) {
                        *v = m + GMM_STD * *v;
                    }
                }
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    /// The most likely component of a `gmm:K` prior for each latent row
    /// (the nearest mean: the components are isotropic with equal weights).
    pub fn nearest_component(&self, latents: &[f32], dim: usize) -> Vec<u32> {
        let k = self.components();
        let means: Vec<Vec<f64>> = (0..k).map(|c| Self::component_mean(c, k, dim)).collect();
        latents
            .chunks(dim)
            .map(|z| {
                let dist = |m: &Vec<f64>| -> f64 {
                    z.iter().zip(m).map(|(&a, b)| (a as f64 - b).powi(2)).sum()
                };
                (0..k)
                    .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
                    .unwrap_or(0) as u32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn names_round_trip_and_bad_names_are_rejected() {
        for p in [
            Prior::Gaussian,
            Prior::Uniform,
            Prior::Circle,
            Prior::Ring,
            Prior::Gmm(10),
        ] {
            assert_eq!(p.to_string().parse::<Prior>().unwrap(), p);
        }
        assert!("gmm:0".parse::<Prior>().is_err());
        assert!("donut".parse::<Prior>().is_err());
        assert!(Prior::Ring.check_dim(3).is_err());
    }

    #[test]
    fn samples_have_the_documented_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 20_000;
        let ring = Prior::Ring.sample(n, 2, None, &mut rng);
        let radii: Vec<f64> = ring
            .chunks(2)
            .map(|p| (p[0] as f64).hypot(p[1] as f64))
            .collect();
        let mean_r = radii.iter().sum::<f64>() / n as f64;
        assert!((mean_r - 1.0).abs() < 1e-3, "ring radius {mean_r}");
        let circle = Prior::Circle.sample(n, 2, None, &mut rng);
        let mean_r = circle
            .chunks(2)
            .map(|p| (p[0] as f64).hypot(p[1] as f64))
            .sum::<f64>()
            / n as f64;
        assert!((mean_r - 0.5).abs() < 0.01, "disc radius {mean_r}");
        let uni = Prior::Uniform.sample(n, 3, None, &mut rng);
        assert!(uni.iter().all(|v| (-1.0..1.0).contains(v)));
        let g = Prior::Gaussian.sample(n, 1, None, &mut rng);
        let var = g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        let gmm = Prior::Gmm(4);
        let one = gmm.sample(1000, 2, Some(1), &mut rng);
        assert!(gmm.nearest_component(&one, 2).iter().all(|&c| c == 1));
        let all = gmm.sample(4000, 2, None, &mut rng);
        let mut counts = [0usize; 4];
        gmm.nearest_component(&all, 2)
            .iter()
            .for_each(|&c| counts[c as usize] += 1);
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
    }
}
