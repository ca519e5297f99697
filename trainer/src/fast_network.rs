//! The host's fast path for f32 networks, bit-identical to the runtime.
//!
//! The runtime's numerics (`tinygen_runtime::network`) fix every output's
//! sum: from the bias, `acc += w[o][i] * x[i]` in ascending `i`, each
//! product and sum rounded (no fused multiply-add), then the runtime's own
//! activation. Those numerics leave the outputs independent, so SIMD lanes
//! can be outputs: [`FastNetwork`] copies each layer's weights into blocks
//! of [`LANES`] outputs whose weights for one input are adjacent (the last
//! block zero-padded), and its kernel adds one input's products to eight
//! outputs with one vector multiply and one vector add, for [`ROWS`] input
//! rows per pass over the weights (each weight is loaded once for all of
//! them). Every output sees the same operations in the same order as on
//! the board; only their scheduling differs. Batches run in parallel over
//! rows.

use anyhow::{anyhow, ensure};
use multiversion::multiversion;
use rayon::prelude::*;
use tinygen_runtime::{Activation, Network};

/// Outputs per SIMD block (eight f32 lanes: one AVX register).
pub const LANES: usize = 8;
/// Input rows that share one pass over the weights.
pub const ROWS: usize = 4;
/// Rows per parallel task.
const ROWS_PER_TASK: usize = 16;

type Block = [f32; LANES];

/// One layer in blocks of [`LANES`] outputs.
#[derive(Debug, Clone)]
struct FastLayer {
    inputs: usize,
    outputs: usize,
    activation: Activation,
    /// Block `k`, input `i`: the weights of outputs `8k..8k+8` for input `i`.
    weights: Vec<Block>,
    /// Block `k`: the biases of outputs `8k..8k+8`.
    biases: Vec<Block>,
}

/// An f32 network laid out for the host's SIMD units (see the module docs).
#[derive(Debug, Clone)]
pub struct FastNetwork {
    layers: Vec<FastLayer>,
}

impl FastNetwork {
    /// Copies a parsed network's layers into output blocks.
    pub fn new(network: &Network<'_>) -> anyhow::Result<Self> {
        let layers: Vec<FastLayer> = network
            .layer_weights()
            .map(|(layer, w, bias)| {
                let (inputs, outputs) = (usize::from(layer.inputs), usize::from(layer.outputs));
                let blocks = outputs.div_ceil(LANES);
                let mut weights = vec![[0.0; LANES]; blocks * inputs];
                let mut biases = vec![[0.0; LANES]; blocks];
                for o in 0..outputs {
                    let (k, lane) = (o / LANES, o % LANES);
                    biases[k][lane] = bias[o];
                    for i in 0..inputs {
                        weights[k * inputs + i][lane] = w[o * inputs + i];
                    }
                }
                FastLayer {
                    inputs,
                    outputs,
                    activation: layer.activation,
                    weights,
                    biases,
                }
            })
            .collect();
        ensure!(
            !layers.is_empty() && layers.len() == network.layers().len(),
            "the network's weights do not match its layers"
        );
        Ok(Self { layers })
    }

    /// Values per input row.
    pub fn input_dim(&self) -> usize {
        self.layers[0].inputs
    }

    /// Values per output row.
    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Runs row-major `inputs` (whole rows) into `outputs`, in parallel
    /// over rows: the values `Network::forward` gives, bit for bit. Rows
    /// with NaN or infinite values are an error, as on the device.
    pub fn forward_batch(&self, inputs: &[f32], outputs: &mut [f32]) -> anyhow::Result<()> {
        let (i, o) = (self.input_dim(), self.output_dim());
        let rows = inputs.len() / i;
        ensure!(
            inputs.len() == rows * i && outputs.len() == rows * o,
            "{} inputs and {} outputs are not whole rows of {i} and {o}",
            inputs.len(),
            outputs.len()
        );
        ensure!(
            inputs.iter().all(|v| v.is_finite()),
            "runtime: {}",
            tinygen_runtime::Error::NonFiniteInput
        );
        if rows <= ROWS_PER_TASK {
            self.forward_rows(inputs, outputs);
            return Ok(());
        }
        outputs
            .par_chunks_mut(ROWS_PER_TASK * o)
            .zip(inputs.par_chunks(ROWS_PER_TASK * i))
            .for_each(|(out, x)| self.forward_rows(x, out));
        Ok(())
    }

    /// One input row (the batch-1 call).
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> anyhow::Result<()> {
        self.forward_batch(input, output)
            .map_err(|e| anyhow!("{e}"))
    }

    /// The rows of one task, layer by layer through two buffers.
    fn forward_rows(&self, inputs: &[f32], outputs: &mut [f32]) {
        let rows = inputs.len() / self.input_dim();
        let mut src = inputs.to_vec();
        let mut dst = Vec::new();
        for layer in &self.layers {
            dst.clear();
            dst.resize(rows * layer.outputs, 0.0);
            for (x, y) in src
                .chunks(ROWS * layer.inputs)
                .zip(dst.chunks_mut(ROWS * layer.outputs))
            {
                layer_rows(layer, x, y);
            }
            std::mem::swap(&mut src, &mut dst);
        }
        outputs.copy_from_slice(&src);
    }
}

/// Up to [`ROWS`] rows of `x` through one layer into `y`.
fn layer_rows(layer: &FastLayer, x: &[f32], y: &mut [f32]) {
    let (n, m) = (layer.inputs, layer.outputs);
    let rows = x.len() / n;
    for (k, (block, bias)) in layer.weights.chunks_exact(n).zip(&layer.biases).enumerate() {
        let lanes = (m - k * LANES).min(LANES);
        let mut acc = [*bias; ROWS];
        if rows == ROWS {
            accumulate::<ROWS>(block, x, &mut acc);
        } else {
            for r in 0..rows {
                accumulate::<1>(block, &x[r * n..(r + 1) * n], &mut acc[r..r + 1]);
            }
        }
        for (r, a) in acc.iter().take(rows).enumerate() {
            let out = &mut y[r * m + k * LANES..r * m + k * LANES + lanes];
            for (slot, &v) in out.iter_mut().zip(a) {
                *slot = layer.activation.apply(v);
            }
        }
    }
}

/// `acc[r][l] += block[i][l] * x[r][i]` for ascending `i`: R rows of
/// inputs (`x` row-major) against one block of eight outputs.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn accumulate<const R: usize>(block: &[Block], x: &[f32], acc: &mut [Block]) {
    let n = block.len();
    let mut a: [Block; R] = [[0.0; LANES]; R];
    a.copy_from_slice(&acc[..R]);
    for (i, w) in block.iter().enumerate() {
        for (r, ar) in a.iter_mut().enumerate() {
            let xi = x[r * n + i];
            for l in 0..LANES {
                // Multiply, then add: two roundings, as on the board.
                ar[l] += w[l] * xi;
            }
        }
    }
    acc[..R].copy_from_slice(&a);
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
    use tinygen_runtime::{Network, Scratch};

    use super::*;
    use crate::host::AlignedBytes;

    /// A random network with the given widths and activations.
    fn network(widths: &[usize], activations: &[Activation], seed: u64) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let params: Vec<(Vec<f32>, Vec<f32>)> = widths
            .windows(2)
            .map(|w| {
                let scale = 1.0 / (w[0] as f32).sqrt();
                (
                    (0..w[0] * w[1])
                        .map(|_| rng.random_range(-scale..scale))
                        .collect(),
                    (0..w[1]).map(|_| rng.random_range(-0.5..0.5)).collect(),
                )
            })
            .collect();
        DecoderParams {
            role: Role::Decoder,
            latent: widths[0],
            layers: params
                .iter()
                .zip(widths.windows(2))
                .zip(activations)
                .map(|(((w, b), io), &activation)| LayerParams {
                    inputs: io[0],
                    outputs: io[1],
                    activation,
                    weight: w,
                    bias: b,
                })
                .collect(),
            prior: PriorParams::None,
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn the_fast_path_is_bit_identical_to_the_runtime() {
        use Activation::*;
        for (seed, widths, activations) in [
            (1, vec![16, 128, 784], vec![Relu, Sigmoid]),
            (2, vec![3, 5], vec![Tanh]),
            (3, vec![7, 9, 17, 1], vec![LeakyRelu, Identity, Sigmoid]),
            (4, vec![20, 8, 8], vec![Tanh, Relu]),
        ] {
            let bytes = AlignedBytes::new(&network(&widths, &activations, seed));
            let net = Network::from_bytes(bytes.as_bytes()).unwrap();
            let fast = FastNetwork::new(&net).unwrap();
            let (i, o) = (widths[0], *widths.last().unwrap());
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 10);
            // Batches that exercise whole and partial row groups and tasks.
            for rows in [1, 3, 4, 5, 37] {
                let x: Vec<f32> = (0..rows * i).map(|_| rng.random_range(-3.0..3.0)).collect();
                let mut fast_out = vec![0.0; rows * o];
                fast.forward_batch(&x, &mut fast_out).unwrap();
                let mut scratch = Box::new(Scratch::<1024>::new());
                let mut want = vec![0.0; o];
                for (r, row) in x.chunks_exact(i).enumerate() {
                    net.forward(row, &mut want, &mut scratch).unwrap();
                    for (a, b) in fast_out[r * o..(r + 1) * o].iter().zip(&want) {
                        assert_eq!(a.to_bits(), b.to_bits(), "{widths:?} row {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_rows_are_errors() {
        let bytes = AlignedBytes::new(&network(&[2, 3], &[Activation::Relu], 5));
        let net = Network::from_bytes(bytes.as_bytes()).unwrap();
        let fast = FastNetwork::new(&net).unwrap();
        let mut out = vec![0.0; 3];
        assert!(fast.forward(&[1.0, f32::NAN], &mut out).is_err());
        assert!(fast.forward(&[1.0, 2.0, 3.0], &mut out).is_err());
        assert!(fast.forward(&[1.0, 2.0], &mut out[..2]).is_err());
    }
}
