//! Principal component analysis in closed form, as a linear autoencoder.
//!
//! The components are the top eigenvectors of the sample covariance (with
//! the n - 1 denominator, as scikit-learn), each signed so that its
//! largest-magnitude entry is positive. The fitted model is a [`Network`]
//! of kind `pca` with no hidden layer: the encoder maps x to
//! `W (x - mean)` and the decoder maps z to `W^T z + mean`, where the rows
//! of W are the components, so PCA runs reload, evaluate and export like
//! any other run.

use std::collections::HashMap;

use anyhow::bail;
use candle_core::{Device, Tensor};
use nalgebra::{DMatrix, SymmetricEigen};

use super::config::{NetworkConfig, Objective, Reconstruction};
use super::network::Network;
use crate::data::images::Samples;

/// A fitted PCA.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Feature means (length D).
    pub mean: Vec<f64>,
    /// Components, k x D (one unit vector per row, by decreasing variance).
    pub components: DMatrix<f64>,
    /// Variance along each component.
    pub explained_variance: Vec<f64>,
    /// Share of the total variance along each component.
    pub explained_variance_ratio: Vec<f64>,
}

/// Fits `k` principal components to the rows of `samples`.
pub fn fit_pca(samples: &Samples, k: usize) -> anyhow::Result<Pca> {
    let (n, d) = (samples.n, samples.dim);
    if k == 0 {
        bail!("PCA needs at least 1 component");
    }
    if k > d {
        bail!("PCA: {k} components requested but the data has {d} features");
    }
    if n < 2 {
        bail!("PCA needs at least 2 rows, {} has {n}", samples.name);
    }
    let x = DMatrix::from_row_iterator(n, d, samples.x.iter().map(|&v| v as f64));
    Ok(principal_components(x, k))
}

/// The top `k` (at most the column count) principal components of the rows
/// of `x`, signed as described in the module docs. With fewer than two rows
/// the covariance is zero and the components are the axes.
pub fn principal_components(x: DMatrix<f64>, k: usize) -> Pca {
    let (n, d) = x.shape();
    let mean: Vec<f64> = x.column_iter().map(|c| c.mean()).collect();
    let mut centred = x;
    for (j, mut col) in centred.column_iter_mut().enumerate() {
        col.add_scalar_mut(-mean[j]);
    }
    let cov = centred.tr_mul(&centred) / (n.max(2) - 1) as f64;
    let total: f64 = cov.diagonal().sum();
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let k = k.min(d);
    let mut components = DMatrix::zeros(k, d);
    let mut explained_variance = Vec::with_capacity(k);
    for (r, &i) in order.iter().take(k).enumerate() {
        let v = eig.eigenvectors.column(i);
        let big = v
            .iter()
            .copied()
            .fold(0f64, |m, a| if a.abs() > m.abs() { a } else { m });
        let sign = if big < 0.0 { -1.0 } else { 1.0 };
        for j in 0..d {
            components[(r, j)] = sign * v[j];
        }
        explained_variance.push(eig.eigenvalues[i].max(0.0));
    }
    let explained_variance_ratio = explained_variance
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    Pca {
        mean,
        components,
        explained_variance,
        explained_variance_ratio,
    }
}

impl Pca {
    /// Number of components.
    pub fn k(&self) -> usize {
        self.components.nrows()
    }

    /// The network configuration of this PCA for data like `samples`.
    pub fn network_config(&self, samples: &Samples) -> NetworkConfig {
        NetworkConfig {
            image: samples.image,
            reconstruction: Reconstruction::Mse,
            ..NetworkConfig::new(Objective::Pca, self.mean.len(), Vec::new(), self.k())
        }
    }

    /// The linear encoder/decoder pair as a network.
    pub fn network(&self, config: NetworkConfig) -> anyhow::Result<Network> {
        let (k, d) = self.components.shape();
        let f32s = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v as f32).collect::<Vec<_>>();
        let w = f32s(&mut self.components.transpose().iter().copied());
        let wt = f32s(&mut self.components.iter().copied());
        let enc_bias: Vec<f32> = (0..k)
            .map(|r| {
                -(0..d)
                    .map(|j| self.components[(r, j)] * self.mean[j])
                    .sum::<f64>() as f32
            })
            .collect();
        let dev = Device::Cpu;
        let tensors = HashMap::from([
            (
                "encoder.out.weight".to_string(),
                Tensor::from_vec(w, (k, d), &dev)?,
            ),
            (
                "encoder.out.bias".to_string(),
                Tensor::from_vec(enc_bias, k, &dev)?,
            ),
            (
                "decoder.0.weight".to_string(),
                Tensor::from_vec(wt, (d, k), &dev)?,
            ),
            (
                "decoder.0.bias".to_string(),
                Tensor::from_vec(f32s(&mut self.mean.iter().copied()), d, &dev)?,
            ),
        ]);
        Network::with_parameters(config, &tensors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn samples(n: usize, d: usize, x: Vec<f32>) -> Samples {
        Samples {
            name: "test".into(),
            n,
            dim: d,
            x,
            labels: None,
            image: None,
        }
    }

    /// Data with independent coordinates of standard deviations 3, 2, 1,
    /// 0.5 rotated by a known orthogonal matrix: PCA must recover the
    /// rotated axes in order, and its components must equal the right
    /// singular vectors of the centred data (an independent algorithm).
    #[test]
    fn components_are_the_top_eigenvectors_of_the_covariance() {
        let (n, d) = (4000, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut z = vec![0f64; n * d];
        crate::density::sample::fill_standard_normal(&mut rng, &mut z);
        let sd = [3.0, 2.0, 1.0, 0.5];
        let q = nalgebra::Matrix4::new(
            0.5, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.5, -0.5, -0.5, 0.5,
        );
        let mut x = Vec::with_capacity(n * d);
        for row in z.chunks(d) {
            for j in 0..d {
                x.push((1.0 + (0..d).map(|i| row[i] * sd[i] * q[(i, j)]).sum::<f64>()) as f32);
            }
        }
        let data = samples(n, d, x);
        let pca = fit_pca(&data, 3).unwrap();
        for r in 0..3 {
            let dot: f64 = (0..d).map(|j| pca.components[(r, j)] * q[(r, j)]).sum();
            assert!(dot.abs() > 0.99, "component {r}: |cos| = {}", dot.abs());
        }
        let ev = &pca.explained_variance;
        assert!(ev[0] > ev[1] && ev[1] > ev[2]);
        assert!((ev[0] / 9.0 - 1.0).abs() < 0.1, "{ev:?}");
        // Right singular vectors of the centred data.
        let mut m = DMatrix::from_row_iterator(n, d, data.x.iter().map(|&v| v as f64));
        for (j, mut col) in m.column_iter_mut().enumerate() {
            col.add_scalar_mut(-pca.mean[j]);
        }
        let svd = m.svd(false, true);
        let vt = svd.v_t.unwrap();
        let mut by_value: Vec<usize> = (0..d).collect();
        by_value.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
        for (r, &i) in by_value.iter().take(3).enumerate() {
            let dot: f64 = (0..d).map(|j| pca.components[(r, j)] * vt[(i, j)]).sum();
            assert!(
                (dot.abs() - 1.0).abs() < 1e-9,
                "component {r} vs SVD: {dot}"
            );
            let var = svd.singular_values[i].powi(2) / (n as f64 - 1.0);
            assert!((var - ev[r]).abs() < 1e-9 * var.max(1.0));
        }
    }

    #[test]
    fn the_network_projects_and_reconstructs() {
        let data = samples(4, 2, vec![0.0, 0.0, 2.0, 2.0, 1.0, 1.0, 3.0, 3.0]);
        let pca = fit_pca(&data, 1).unwrap();
        let net = pca.network(pca.network_config(&data)).unwrap();
        let x = Tensor::from_slice(&data.x, (4, 2), &Device::Cpu).unwrap();
        let (z, _) = net.encode(&x).unwrap();
        let back = net
            .decode(&z)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in back.iter().zip(&data.x) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!((pca.explained_variance_ratio[0] - 1.0).abs() < 1e-12);
        assert!(fit_pca(&data, 3).is_err());
        assert!(fit_pca(&data, 0).is_err());
    }
}
