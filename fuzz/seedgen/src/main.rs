//! Writes small, valid model files of every kind (GMMs of each covariance,
//! KDEs, detectors with each feature map, with and without a neural part
//! (f32 and int8) or a second density,
//! decoders with each prior and activation, encoders) into the directory
//! given as the only argument, each prefixed with the `model` fuzz target's
//! control byte 0 (keep the header, fix up length and CRC).

use std::path::{Path, PathBuf};

use tinygen_runtime::Activation;
use tinygen_runtime::ModelKind;
use tinygen_runtime::detector::{AutoencoderParams, Features, NeuralParams, SecondDensityParams};
use tinygen_runtime::diffusion::{DiffusionParams, Sampler, Schedule};
use tinygen_runtime::gmm::{Covariance, GmmParams, Standardizer};
use tinygen_runtime::learn::RecipeSpec;
use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
use tinygen_runtime::qnetwork::{FinalActivation, QLayerParams, QNetworkParams, QuantParams};

const COVARIANCES: [Covariance; 4] = [
    Covariance::Full,
    Covariance::Tied,
    Covariance::Diag,
    Covariance::Spherical,
];

/// Deterministic values in [-1, 1).
struct Values(u32);

impl Values {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        f64::from(self.0 >> 8) / f64::from(1u32 << 23) - 1.0
    }

    fn many(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }

    fn many_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next() as f32).collect()
    }
}

/// Upper (or lower) triangular factors with a positive diagonal, `k` of them.
fn triangular(v: &mut Values, k: usize, d: usize, upper: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(k * d * d);
    for _ in 0..k {
        for i in 0..d {
            for j in 0..d {
                out.push(if i == j {
                    1.0 + 0.5 * v.next().abs()
                } else if (j > i) == upper {
                    0.3 * v.next()
                } else {
                    0.0
                });
            }
        }
    }
    out
}

struct Mixture {
    covariance: Covariance,
    dim: usize,
    weights: Vec<f64>,
    means: Vec<f64>,
    precisions: Vec<f64>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    standardized: bool,
}

impl Mixture {
    fn new(
        v: &mut Values,
        covariance: Covariance,
        dim: usize,
        k: usize,
        standardized: bool,
    ) -> Self {
        let precisions = match covariance {
            Covariance::Full => triangular(v, k, dim, true),
            Covariance::Tied => triangular(v, 1, dim, true),
            Covariance::Diag => (0..k * dim).map(|_| 1.0 + v.next().abs()).collect(),
            Covariance::Spherical => (0..k).map(|_| 1.0 + v.next().abs()).collect(),
        };
        Self {
            covariance,
            dim,
            weights: (0..k).map(|_| 1.0 + v.next().abs()).collect(),
            means: v.many(k * dim),
            precisions,
            mean: v.many(dim),
            scale: (0..dim).map(|_| 0.5 + v.next().abs()).collect(),
            standardized,
        }
    }

    fn params(&self) -> GmmParams<'_> {
        GmmParams {
            covariance: self.covariance,
            dim: self.dim,
            weights: &self.weights,
            means: &self.means,
            precisions_cholesky: &self.precisions,
            standardizer: self.standardized.then_some(Standardizer {
                mean: &self.mean,
                scale: &self.scale,
            }),
        }
    }
}

/// Weights and biases of an MLP with the given widths.
struct Mlp {
    widths: Vec<usize>,
    activations: Vec<Activation>,
    weights: Vec<Vec<f32>>,
    biases: Vec<Vec<f32>>,
}

/// An int8 network with deterministic weights, per-channel multipliers
/// and tensors at scale 1/16 (zero point 3).
struct QMlp {
    widths: Vec<usize>,
    activations: Vec<Activation>,
    weights: Vec<Vec<i8>>,
    biases: Vec<Vec<i32>>,
    multipliers: Vec<Vec<i32>>,
    shifts: Vec<Vec<i32>>,
}

impl QMlp {
    fn new(v: &mut Values, widths: &[usize], activations: &[Activation]) -> Self {
        let pairs = widths.windows(2);
        let ints = |v: &mut Values, n: usize, scale: f64| -> Vec<f64> {
            v.many(n).into_iter().map(|x| (x * scale).round()).collect()
        };
        Self {
            widths: widths.to_vec(),
            activations: activations.to_vec(),
            weights: pairs
                .clone()
                .map(|w| {
                    ints(v, w[0] * w[1], 127.0)
                        .iter()
                        .map(|&x| x as i8)
                        .collect()
                })
                .collect(),
            biases: pairs
                .clone()
                .map(|w| ints(v, w[1], 2000.0).iter().map(|&x| x as i32).collect())
                .collect(),
            multipliers: pairs
                .clone()
                .map(|w| vec![(1 << 30) + (1 << 28); w[1]])
                .collect(),
            shifts: pairs.map(|w| vec![-6; w[1]]).collect(),
        }
    }

    fn params(&self, role: Role) -> QNetworkParams<'_> {
        let params = QuantParams {
            scale: 1.0 / 16.0,
            zero_point: 3,
        };
        QNetworkParams {
            role,
            input: params,
            layers: (0..self.widths.len() - 1)
                .map(|i| QLayerParams {
                    inputs: self.widths[i],
                    outputs: self.widths[i + 1],
                    activation: self.activations[i % self.activations.len()],
                    weight: &self.weights[i],
                    bias: &self.biases[i],
                    multiplier: &self.multipliers[i],
                    shift: &self.shifts[i],
                    output: params,
                })
                .collect(),
            prior: PriorParams::None,
            final_activation: FinalActivation::Int8,
        }
    }
}

impl Mlp {
    fn new(v: &mut Values, widths: &[usize], activations: &[Activation]) -> Self {
        let pairs = widths.windows(2);
        Self {
            widths: widths.to_vec(),
            activations: activations.to_vec(),
            weights: pairs.clone().map(|w| v.many_f32(w[0] * w[1])).collect(),
            biases: pairs.map(|w| v.many_f32(w[1])).collect(),
        }
    }

    fn params<'p>(&'p self, role: Role, prior: PriorParams<'p>) -> DecoderParams<'p> {
        let layers = (0..self.widths.len() - 1)
            .map(|i| LayerParams {
                inputs: self.widths[i],
                outputs: self.widths[i + 1],
                activation: self.activations[i % self.activations.len()],
                weight: &self.weights[i],
                bias: &self.biases[i],
            })
            .collect();
        let latent = match role {
            Role::Decoder => self.widths[0],
            Role::Encoder => *self.widths.last().unwrap(),
        };
        DecoderParams {
            role,
            latent,
            layers,
            prior,
        }
    }
}

fn write(dir: &Path, name: &str, file: Result<Vec<u8>, tinygen_runtime::Error>) {
    let file = file.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let mut seed = vec![0u8];
    seed.extend_from_slice(&file);
    std::fs::write(dir.join(format!("gen-{name}.seed")), seed).unwrap();
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: seedgen DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let v = &mut Values(0x1234_5678);

    for covariance in COVARIANCES {
        for (dim, k, standardized) in [(1, 1, false), (3, 2, true), (5, 3, false), (8, 2, true)] {
            let m = Mixture::new(v, covariance, dim, k, standardized);
            let name = format!("gmm-{}-d{dim}-k{k}", covariance.name());
            write(&dir, &name, m.params().encode());
        }
    }
    for (dim, points) in [(2, 5), (4, 3), (6, 4)] {
        let m = Mixture::new(v, Covariance::Tied, dim, points, dim != 4);
        write(
            &dir,
            &format!("kde-d{dim}-n{points}"),
            m.params().encode_as(ModelKind::Kde),
        );
    }

    for (i, (features, dim, covariance)) in [
        (Features::Identity, 3, Covariance::Full),
        (
            Features::WindowStats {
                channels: 2,
                length: 5,
            },
            8,
            Covariance::Diag,
        ),
        (
            Features::RawWindow {
                channels: 2,
                length: 2,
            },
            4,
            Covariance::Spherical,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let recipe = RecipeSpec {
            features,
            dim,
            covariance,
            components: 1 + i as u32,
            iterations: 3,
            seed: i as u64,
            reg_covar: [0.0, 0.1, 1.0][i],
            alarm_rate: 0.1,
            learn: 4 + i as u32,
            calibrate: 3,
            // The first recipe/1-like, the others pairs.
            second_reg_covar: (i > 0).then_some(0.01),
        };
        write(&dir, &format!("recipe-{i}"), recipe.encode());
    }

    // Diffusion models: 3 values, embedding 2 or 4, one hidden layer, a
    // linear and a cosine schedule, with and without clipping.
    for (i, (embedding, schedule, clip)) in [
        (
            2,
            Schedule::Linear {
                beta_start: 0.01,
                beta_end: 0.2,
            },
            true,
        ),
        (4, Schedule::Cosine { offset: 0.008 }, false),
    ]
    .into_iter()
    .enumerate()
    {
        let alpha_bar = schedule.alpha_bar(6).expect("a valid schedule");
        let inputs = 3 + embedding;
        let w1: Vec<f32> = (0..4 * inputs).map(|k| (k as f32 * 0.37).sin()).collect();
        let w2: Vec<f32> = (0..3 * 4).map(|k| (k as f32 * 0.53).cos()).collect();
        let params = DiffusionParams {
            embedding,
            schedule,
            alpha_bar: &alpha_bar,
            clip,
            sampler: Sampler::ddim(3),
            layers: vec![
                LayerParams {
                    inputs,
                    outputs: 4,
                    activation: Activation::Tanh,
                    weight: &w1,
                    bias: &[0.1, -0.1, 0.0, 0.2],
                },
                LayerParams {
                    inputs: 4,
                    outputs: 3,
                    activation: Activation::Identity,
                    weight: &w2,
                    bias: &[0.0, 0.0, 0.0],
                },
            ],
            scale: &[0.5, 0.5, 0.5],
            offset: &[0.5, 0.5, 0.5],
            skip: clip.then_some((&[0.1, -0.2, 0.3][..], &[0.5, 1.0, 0.0][..])),
        };
        write(&dir, &format!("diffusion-{i}"), params.encode());
    }

    let features = [
        (Features::Identity, 3),
        (
            Features::WindowStats {
                channels: 2,
                length: 5,
            },
            8,
        ),
        (
            Features::RawWindow {
                channels: 2,
                length: 3,
            },
            6,
        ),
    ];
    for (i, (features, dim)) in features.into_iter().enumerate() {
        // The last one has a KDE (a tied mixture) as its density.
        let (kind, m) = if i == 2 {
            let m = Mixture::new(v, Covariance::Tied, dim, 3, true);
            (ModelKind::Kde, m)
        } else {
            (
                ModelKind::Gmm,
                Mixture::new(v, COVARIANCES[i], dim, 2, i != 1),
            )
        };
        let name = format!("detector-{i}");
        write(&dir, &name, m.params().encode_detector(kind, features, 1.5));
        // With a second density (the default detector's shape).
        let second = Mixture::new(v, COVARIANCES[(i + 2) % 4], dim, 2, true);
        let pair = SecondDensityParams {
            kind: ModelKind::Gmm,
            density: second.params(),
            center: [1.0, -2.0],
            scale: [0.5, 3.0],
        };
        write(
            &dir,
            &format!("detector-{i}-pair"),
            m.params().encode_pair_detector(kind, features, 0.5, &pair),
        );

        let latent = 2;
        let encoder = Mlp::new(
            v,
            &[dim, 4, latent],
            &[Activation::Relu, Activation::Identity],
        );
        let decoder = Mlp::new(
            v,
            &[latent, 4, dim],
            &[Activation::Tanh, Activation::Sigmoid],
        );
        let latent_density = Mixture::new(v, COVARIANCES[(i + 1) % 4], latent, 2, false);
        let mean = v.many_f32(dim);
        let inv_scale: Vec<f32> = (0..dim).map(|_| 0.5 + v.next().abs() as f32).collect();
        let neural = NeuralParams {
            mean: &mean,
            inv_scale: &inv_scale,
            autoencoder: AutoencoderParams::F32 {
                encoder: encoder.params(Role::Encoder, PriorParams::None),
                decoder: decoder.params(Role::Decoder, PriorParams::None),
            },
            latent: latent_density.params(),
            center: [0.1, 0.2, -0.3],
            scale: [1.0, 2.0, 0.5],
        };
        write(
            &dir,
            &format!("detector-{i}-neural"),
            m.params()
                .encode_neural_detector(kind, features, 0.5, Some(&neural)),
        );
        let qencoder = QMlp::new(
            v,
            &[dim, 4, latent],
            &[Activation::Relu, Activation::Identity],
        );
        let qdecoder = QMlp::new(
            v,
            &[latent, 4, dim],
            &[Activation::Tanh, Activation::Sigmoid],
        );
        let neural_int8 = NeuralParams {
            autoencoder: AutoencoderParams::Int8 {
                encoder: qencoder.params(Role::Encoder),
                decoder: qdecoder.params(Role::Decoder),
            },
            ..neural.clone()
        };
        write(
            &dir,
            &format!("detector-{i}-neural-int8"),
            m.params()
                .encode_neural_detector(kind, features, 0.5, Some(&neural_int8)),
        );
    }

    let activations = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Tanh,
        Activation::Sigmoid,
    ];
    let mix_weights = [1.0, 2.0, 0.5];
    let mix_means = v.many(3 * 2);
    let mix_cholesky = triangular(v, 3, 2, false);
    let priors = [
        ("none", PriorParams::None),
        ("gaussian", PriorParams::Gaussian),
        ("uniform", PriorParams::Uniform),
        ("circle", PriorParams::Circle),
        ("ring", PriorParams::Ring { noise: 0.1 }),
        (
            "mixture",
            PriorParams::Mixture {
                weights: &mix_weights,
                means: &mix_means,
                cholesky: &mix_cholesky,
            },
        ),
    ];
    for (i, (name, prior)) in priors.into_iter().enumerate() {
        let widths: &[usize] = match i % 3 {
            0 => &[2, 3],
            1 => &[2, 5, 4],
            _ => &[2, 6, 3, 7],
        };
        let mlp = Mlp::new(v, widths, &activations[i % 5..]);
        write(
            &dir,
            &format!("decoder-{name}"),
            mlp.params(Role::Decoder, prior).encode(),
        );
    }
    for (i, widths) in [&[3usize, 2][..], &[4, 6, 2], &[7, 5, 3, 2]]
        .into_iter()
        .enumerate()
    {
        let mlp = Mlp::new(v, widths, &activations[i..]);
        let prior = if i == 1 {
            PriorParams::Gaussian
        } else {
            PriorParams::None
        };
        write(
            &dir,
            &format!("encoder-{i}"),
            mlp.params(Role::Encoder, prior).encode(),
        );
    }
}
