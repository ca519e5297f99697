//! One sample-quality measure for every generative model: the Fréchet
//! distance between the features of generated and real rows (FID's
//! formula, Heusel et al. 2017, with a small classifier in place of
//! Inception), and the sliced 2-Wasserstein distance in data space.
//!
//! The features are the last hidden layer of a classifier stored as a
//! runtime encoder file (rows in, class logits out; the
//! `models/mnist-classifier` that [`train_classifier`] wrote), so figures
//! stay comparable as long as that file does not change.

use anyhow::{Context, bail, ensure};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Module, ParamsAdamW, VarBuilder, VarMap};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
use tinygen_runtime::{Activation, Network as RtNetwork};

use super::adam::Adam;
use super::export::DenseLayer;
use crate::data::images::Samples;
use crate::divergence::sliced_wasserstein;
use crate::host::AlignedBytes;

/// Directions of the sliced 2-Wasserstein distance.
const SW_PROJECTIONS: usize = 200;

/// The hidden layers of a classifier file, run on the host in f64.
pub struct FeatureExtractor {
    /// The hidden layers.
    layers: Vec<DenseLayer>,
    /// The classifier's last layer (logits), for its accuracy.
    head: DenseLayer,
}

impl FeatureExtractor {
    /// The extractor of a classifier model file (an encoder of at least
    /// two layers whose hidden activations are relu, leaky relu or tanh).
    pub fn from_file(bytes: &[u8]) -> anyhow::Result<Self> {
        let file = AlignedBytes::new(bytes);
        let net = RtNetwork::from_bytes(file.as_bytes())
            .map_err(|e| anyhow::anyhow!("the classifier file: {e}"))?;
        let mut layers: Vec<DenseLayer> = net
            .layer_weights()
            .map(|(layer, w, b)| DenseLayer {
                inputs: usize::from(layer.inputs),
                outputs: usize::from(layer.outputs),
                weight: w.to_vec(),
                bias: b.to_vec(),
                activation: layer.activation,
            })
            .collect();
        let Some(head) = layers.pop() else {
            bail!("the classifier has no layers");
        };
        ensure!(!layers.is_empty(), "the classifier needs a hidden layer");
        Ok(Self { layers, head })
    }

    /// Values per input row.
    pub fn input_dim(&self) -> usize {
        self.layers[0].inputs
    }

    /// Features of each row of `rows` (row-major): the last hidden layer.
    pub fn features(&self, rows: &[f32]) -> anyhow::Result<DMatrix<f64>> {
        let d = self.input_dim();
        ensure!(
            rows.len().is_multiple_of(d) && !rows.is_empty(),
            "{} values are not whole rows of {d}",
            rows.len()
        );
        let n = rows.len() / d;
        let mut h = DMatrix::from_row_iterator(n, d, rows.iter().map(|&v| f64::from(v)));
        for layer in &self.layers {
            h = affine(&h, layer);
            h.apply(|v| *v = activate(layer.activation, *v));
        }
        Ok(h)
    }

    /// The classifier's predicted class of each row of `rows`.
    pub fn classify(&self, rows: &[f32]) -> anyhow::Result<Vec<usize>> {
        let logits = affine(&self.features(rows)?, &self.head);
        Ok(logits
            .row_iter()
            .map(|r| r.transpose().argmax().0)
            .collect())
    }
}

/// `x W^T + b` of a layer, in f64.
fn affine(x: &DMatrix<f64>, layer: &DenseLayer) -> DMatrix<f64> {
    let w = DMatrix::from_row_iterator(
        layer.outputs,
        layer.inputs,
        layer.weight.iter().map(|&v| f64::from(v)),
    );
    let mut y = x * w.transpose();
    for mut row in y.row_iter_mut() {
        for (v, &b) in row.iter_mut().zip(&layer.bias) {
            *v += f64::from(b);
        }
    }
    y
}

fn activate(a: Activation, v: f64) -> f64 {
    match a {
        Activation::Identity => v,
        Activation::Relu => v.max(0.0),
        Activation::LeakyRelu => {
            if v > 0.0 {
                v
            } else {
                0.01 * v
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
    }
}

/// The Fréchet distance between Gaussians fitted to the rows of `a` and of
/// `b`: `|m_a - m_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a^1/2 C_b C_a^1/2)^1/2)`
/// (sample covariances with n - 1; square roots by symmetric
/// eigendecomposition, negative eigenvalues of rounding set to 0).
pub fn frechet_distance(a: &DMatrix<f64>, b: &DMatrix<f64>) -> anyhow::Result<f64> {
    ensure!(
        a.ncols() == b.ncols() && a.nrows() >= 2 && b.nrows() >= 2,
        "the Fréchet distance needs two sets of at least 2 rows of equal width"
    );
    let (ma, ca) = mean_cov(a);
    let (mb, cb) = mean_cov(b);
    let root_a = psd_sqrt(&ca);
    let cross = psd_sqrt(&(&root_a * &cb * &root_a));
    let d = (ma - mb).norm_squared() + ca.trace() + cb.trace() - 2.0 * cross.trace();
    ensure!(d.is_finite(), "the Fréchet distance is not finite");
    Ok(d.max(0.0))
}

fn mean_cov(x: &DMatrix<f64>) -> (nalgebra::DVector<f64>, DMatrix<f64>) {
    let n = x.nrows() as f64;
    let mean = x.row_mean().transpose();
    let mut centred = x.clone();
    for mut row in centred.row_iter_mut() {
        row -= mean.transpose();
    }
    let cov = centred.transpose() * &centred / (n - 1.0);
    (mean, cov)
}

/// The square root of a symmetric positive semi-definite matrix.
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eig = sym.symmetric_eigen();
    let roots = eig.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// The quality of generated rows against real ones.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quality {
    /// Fréchet distance between the classifier features (lower is better).
    pub frechet: f64,
    /// Sliced 2-Wasserstein distance in data space (square root of the
    /// mean over 200 directions of the squared 1-D distances).
    pub sliced_wasserstein: f64,
    /// Rows of each set compared.
    pub rows: usize,
}

/// The [`Quality`] of `generated` against `real` (row-major, as many rows
/// of the classifier's input width each; `seed` draws the directions).
pub fn quality(
    extractor: &FeatureExtractor,
    generated: &[f32],
    real: &[f32],
    seed: u64,
) -> anyhow::Result<Quality> {
    ensure!(
        generated.len() == real.len(),
        "{} generated values against {} real ones: compare as many rows",
        generated.len(),
        real.len()
    );
    ensure!(
        generated.iter().all(|v| v.is_finite()),
        "the generated rows hold NaN or infinite values"
    );
    let d = extractor.input_dim();
    let frechet = frechet_distance(&extractor.features(generated)?, &extractor.features(real)?)?;
    let n = real.len() / d;
    let g = DMatrix::from_row_iterator(n, d, generated.iter().map(|&v| f64::from(v)));
    let r = DMatrix::from_row_iterator(n, d, real.iter().map(|&v| f64::from(v)));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sw = sliced_wasserstein(&g, &r, SW_PROJECTIONS, &mut rng)?.sqrt();
    Ok(Quality {
        frechet,
        sliced_wasserstein: sw,
        rows: n,
    })
}

/// Trains a classifier `input -> hidden (relu) -> classes` on labelled
/// rows with cross-entropy (Adam, batches of 128, `epochs` passes, seeded)
/// and returns it as a runtime encoder file (logits out).
pub fn train_classifier(
    train: &Samples,
    hidden: usize,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<Vec<u8>> {
    let labels = train
        .labels
        .as_ref()
        .context("the classifier needs labelled rows")?;
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    ensure!(
        classes >= 2 && hidden >= 1,
        "need 2 classes and a hidden layer"
    );
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let l1 = candle_nn::linear(train.dim, hidden, vb.pp("0"))?;
    let l2 = candle_nn::linear(hidden, classes, vb.pp("1"))?;
    let mut adam = Adam::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    );
    let x = Tensor::from_slice(&train.x, (train.n, train.dim), &Device::Cpu)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<u32> = (0..train.n as u32).collect();
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for idx in order.chunks(128) {
            let index = Tensor::new(idx, &Device::Cpu)?;
            let xb = x.index_select(&index, 0)?;
            let yb: Vec<u32> = idx.iter().map(|&i| labels[i as usize]).collect();
            let logits = l2.forward(&l1.forward(&xb)?.relu()?)?;
            let loss = candle_nn::loss::cross_entropy(
                &logits,
                &Tensor::new(yb.as_slice(), &Device::Cpu)?,
            )?;
            ensure!(
                loss.to_scalar::<f32>()?.is_finite(),
                "training the classifier diverged"
            );
            adam.backward_step(&loss)?;
        }
    }
    let weights = |l: &candle_nn::Linear| -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            l.weight().flatten_all()?.to_vec1::<f32>()?,
            l.bias().context("bias")?.to_vec1::<f32>()?,
        ))
    };
    let (w1, b1) = weights(&l1)?;
    let (w2, b2) = weights(&l2)?;
    DecoderParams {
        role: Role::Encoder,
        latent: classes,
        layers: vec![
            LayerParams {
                inputs: train.dim,
                outputs: hidden,
                activation: Activation::Relu,
                weight: &w1,
                bias: &b1,
            },
            LayerParams {
                inputs: hidden,
                outputs: classes,
                activation: Activation::Identity,
                weight: &w2,
                bias: &b2,
            },
        ],
        prior: PriorParams::None,
    }
    .encode()
    .map_err(|e| anyhow::anyhow!("cannot encode the classifier: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::{Split, load_samples};

    /// Gaussians with known parameters: the distance of a set to itself is
    /// 0; to a shifted copy, the squared shift; between N(0, I) and
    /// N(0, 4I) in k dimensions, k (1 - 2)^2 = k (up to sampling).
    #[test]
    fn frechet_distance_closed_forms() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let normal = |n: usize, k: usize, scale: f64, rng: &mut ChaCha8Rng| {
            let mut v = vec![0f64; n * k];
            crate::density::sample::fill_standard_normal(rng, &mut v);
            DMatrix::from_row_iterator(n, k, v.into_iter().map(|x| x * scale))
        };
        let a = normal(20_000, 3, 1.0, &mut rng);
        assert!(frechet_distance(&a, &a).unwrap() < 1e-9);
        let shifted = a.map(|v| v + 0.5);
        let d = frechet_distance(&a, &shifted).unwrap();
        assert!((d - 3.0 * 0.25).abs() < 1e-9, "{d}");
        let b = normal(20_000, 3, 2.0, &mut rng);
        let d = frechet_distance(&a, &b).unwrap();
        assert!((d - 3.0).abs() < 0.15, "{d}");
        assert!(frechet_distance(&a, &normal(1, 3, 1.0, &mut rng)).is_err());
    }

    /// A classifier trained on the digits classifies their test split, and
    /// its features tell the digits from noise: the test rows are closer
    /// to the training rows than uniform noise is.
    #[test]
    fn a_classifier_on_the_digits_separates_digits_from_noise() {
        let train = load_samples("digits", None, Split::Train, None).unwrap();
        let test = load_samples("digits", None, Split::Test, None).unwrap();
        let file = train_classifier(&train, 32, 60, 0).unwrap();
        let extractor = FeatureExtractor::from_file(&file).unwrap();
        let predicted = extractor.classify(&test.x).unwrap();
        let labels = test.labels.as_ref().unwrap();
        let right = predicted
            .iter()
            .zip(labels)
            .filter(|(p, l)| **p == **l as usize)
            .count();
        assert!(right as f64 / test.n as f64 > 0.9, "{right} of {}", test.n);
        let n = test.n;
        let real = &train.x[..n * 64];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let noise: Vec<f32> = (0..n * 64)
            .map(|_| rand::Rng::random::<f32>(&mut rng))
            .collect();
        let good = quality(&extractor, &test.x, real, 0).unwrap();
        let bad = quality(&extractor, &noise, real, 0).unwrap();
        assert!(good.frechet < 0.2 * bad.frechet, "{good:?} vs {bad:?}");
        assert!(good.sliced_wasserstein < bad.sliced_wasserstein);
        assert!(quality(&extractor, &noise[..64], real, 0).is_err());
    }
}
