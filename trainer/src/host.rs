//! The runtime on the host: model files held 4-byte aligned, as the runtime
//! reads them in place, and the runtime's calls run over many rows (in
//! parallel), each row giving exactly what the device computes for it.
//! `tinygen score`, `decode`, `sample` and `detect`, export checks, detector
//! fits and the firmware's test cases all run the runtime through here.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail, ensure};
use rayon::prelude::*;
use tinygen_runtime::detector::DetectorScratch;
use tinygen_runtime::diffusion::Sampler;
use tinygen_runtime::qnetwork::QScratch;
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{
    AnyModel, Decoder, Detector, Error, ModelKind, Scratch, Shape, Xoshiro128PlusPlus,
};

use crate::data::Dataset;
use crate::fast_gmm;
use crate::fast_network::FastNetwork;
use crate::fast_qnetwork::FastQNetwork;

/// What to add to "the data has `given` columns, the model reads
/// `expected`": where the data has more, the flags that leave columns out.
pub fn surplus_columns_hint(given: usize, expected: usize) -> &'static str {
    if given > expected {
        " (leave columns out with --label-column or --drop-columns)"
    } else {
        ""
    }
}

/// The runtime's error opening the model file `path` (its contents
/// `bytes`); a file of another kind than the command reads also names the
/// command that reads it, and one of another length than its header says
/// gives both lengths.
pub fn open_error(path: &Path, bytes: &[u8], e: Error) -> anyhow::Error {
    let hint = match e {
        Error::WrongKind { found, .. } => match found {
            ModelKind::Gmm | ModelKind::Kde => {
                " (a density: `tinygen score` gives its log-densities)"
            }
            ModelKind::Detector => " (a detector: `tinygen detect` gives its scores and alarms)",
            ModelKind::Recipe => {
                " (a recipe: the device learns a detector from it; `tinygen info` describes it)"
            }
            ModelKind::Diffusion => " (a diffusion model: `tinygen sample` draws from it)",
            ModelKind::Decoder
            | ModelKind::Encoder
            | ModelKind::DecoderInt8
            | ModelKind::EncoderInt8 => {
                " (a network: `tinygen decode` runs it, `tinygen sample` samples a decoder)"
            }
        }
        .to_string(),
        Error::LengthMismatch => match tinygen_runtime::format::claimed_len(bytes) {
            Ok(claimed) if claimed != bytes.len() => format!(
                " (its header says {claimed} bytes, the file has {}: {})",
                bytes.len(),
                if claimed > bytes.len() {
                    "cut short?"
                } else {
                    "something appended?"
                }
            ),
            _ => String::new(),
        },
        _ => String::new(),
    };
    anyhow::anyhow!("{}: {e}{hint}", path.display())
}

/// Largest activation width the host-side runtime calls support.
pub const HOST_WIDTH: usize = 4096;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 256;

/// Model file bytes held at a 4-byte aligned address, as the runtime needs
/// to read weights in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignedBytes {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes` into an aligned buffer.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// Reads a whole file into an aligned buffer.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model file {}", path.display()))?;
        Ok(Self::new(&bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }
}

/// Runs a model on row-major `inputs` (rows of [`AnyModel::input_len`]):
/// [`AnyModel::output_len`] values per row, the log-density of a density,
/// the anomaly score of a detector (with buffers for neural parts up to
/// [`HOST_WIDTH`] wide), a network's output. Densities and networks run on
/// the host's fast paths ([`crate::fast_gmm`], [`crate::fast_network`],
/// [`crate::fast_qnetwork`]): the same values, bit for bit.
pub fn run_rows(model: &AnyModel<'_>, inputs: &[f32]) -> anyhow::Result<Vec<f32>> {
    let (i, o) = (model.input_len(), model.output_len());
    ensure!(
        i > 0 && inputs.len().is_multiple_of(i),
        "{} values are not whole rows of {i}",
        inputs.len()
    );
    let mut out = vec![0f32; inputs.len() / i * o];
    // The host's fast paths: the same values, bit for bit.
    match model {
        AnyModel::Network(net) => {
            FastNetwork::new(net)?.forward_batch(inputs, &mut out)?;
            return Ok(out);
        }
        AnyModel::Density(gmm) => {
            fast_gmm::log_density_batch(gmm, inputs, &mut out)?;
            return Ok(out);
        }
        // Where the fast path is fast; else the runtime below.
        AnyModel::QNetwork(net) => {
            if let Some(fast) = FastQNetwork::where_fast(net) {
                fast.forward_batch(inputs, &mut out)?;
                return Ok(out);
            }
        }
        _ => {}
    }
    out.par_chunks_mut(ROWS_PER_TASK * o)
        .zip(inputs.par_chunks(ROWS_PER_TASK * i))
        .try_for_each(|(out, rows)| match model {
            AnyModel::Detector(detector) => {
                let mut scratch = Box::new(DetectorScratch::<HOST_WIDTH>::new());
                for (y, x) in out.iter_mut().zip(rows.chunks_exact(i)) {
                    *y = detector.score_in(x, &mut scratch)?;
                }
                Ok(())
            }
            // Run above, on the fast paths.
            AnyModel::Network(_) | AnyModel::Density(_) => {
                Err(Error::InvalidShape(Shape::Internal))
            }
            AnyModel::QNetwork(net) => {
                let mut scratch = Box::new(QScratch::<HOST_WIDTH>::new());
                for (y, x) in out.chunks_exact_mut(o).zip(rows.chunks_exact(i)) {
                    net.forward(x, y, &mut scratch)?;
                }
                Ok(())
            }
            AnyModel::Diffusion(_) => {
                let mut scratch = Box::new(Scratch::<HOST_WIDTH>::new());
                for (y, x) in out.chunks_exact_mut(o).zip(rows.chunks_exact(i)) {
                    model.eval(x, y, &mut scratch)?;
                }
                Ok(())
            }
        })
        .map_err(|e| anyhow!("runtime: {e}"))?;
    Ok(out)
}

/// [`run_rows`] on a model file's bytes (any alignment).
pub fn run_file(file: &[u8], inputs: &[f32]) -> anyhow::Result<Vec<f32>> {
    let file = AlignedBytes::new(file);
    let model = AnyModel::from_bytes(file.as_bytes()).map_err(|e| anyhow!("model: {e}"))?;
    run_rows(&model, inputs)
}

/// The terms of a detector's combined score, before centring and scaling,
/// for each row of `inputs`, row-major: three for a neural part (density,
/// reconstruction, latent), two for a second density (each `-ln p`).
pub fn detector_terms(detector: &Detector<'_>, inputs: &[f32]) -> anyhow::Result<Vec<f32>> {
    let len = detector.input_len();
    let width = match (detector.has_neural(), detector.has_second_density()) {
        (true, _) => 3,
        (false, true) => 2,
        (false, false) => anyhow::bail!("the detector has one density: its score has no terms"),
    };
    ensure!(
        len > 0 && inputs.len().is_multiple_of(len),
        "inputs are not whole rows of {len}"
    );
    let mut out = vec![0f32; inputs.len() / len * width];
    out.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(inputs.par_chunks(ROWS_PER_TASK * len))
        .try_for_each(|(out, rows)| {
            let mut scratch = Box::new(DetectorScratch::<HOST_WIDTH>::new());
            for (y, x) in out.chunks_exact_mut(width).zip(rows.chunks_exact(len)) {
                match detector.terms_in(x, &mut scratch)? {
                    Some(terms) => y.copy_from_slice(&terms),
                    None => y.copy_from_slice(
                        &detector
                            .density_terms(x)?
                            .ok_or(Error::InvalidShape(Shape::SecondDensity))?,
                    ),
                }
            }
            Ok::<_, Error>(())
        })
        .map_err(|e| anyhow!("runtime: {e}"))?;
    Ok(out)
}

/// Rows a network model file computed: `width` values per row, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRows {
    /// The outputs, row-major.
    pub values: Vec<f32>,
    /// Values per row.
    pub width: usize,
    /// The file's kind: a decoder or an encoder, f32 or int8.
    pub kind: ModelKind,
}

/// A decoder or encoder model file, read and checked.
#[derive(Debug, Clone)]
pub struct NetworkFile {
    path: PathBuf,
    bytes: AlignedBytes,
}

impl NetworkFile {
    /// Reads the model file at `path`; an error if it is not a network.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let file = Self {
            path: path.to_path_buf(),
            bytes: AlignedBytes::read(path)?,
        };
        file.network()?;
        Ok(file)
    }

    /// The network, f32 or int8.
    fn network(&self) -> anyhow::Result<AnyModel<'_>> {
        let bytes = self.bytes.as_bytes();
        match AnyModel::from_bytes(bytes).map_err(|e| open_error(&self.path, bytes, e))? {
            model @ (AnyModel::Network(_) | AnyModel::QNetwork(_)) => Ok(model),
            other => bail!(
                "{} is a {} model, not a decoder or an encoder",
                self.path.display(),
                other.kind()
            ),
        }
    }

    /// The network's output for each row of `data` (`data_name` names it
    /// in errors), as the device computes it.
    pub fn run(&self, data: &Dataset, data_name: &Path) -> anyhow::Result<NetworkRows> {
        let net = self.network()?;
        if data.cols != net.input_len() {
            bail!(
                "{} has {} columns but the model takes {} values per row{}",
                data_name.display(),
                data.cols,
                net.input_len(),
                surplus_columns_hint(data.cols, net.input_len())
            );
        }
        Ok(NetworkRows {
            values: run_rows(&net, &data.to_f32())?,
            width: net.output_len(),
            kind: net.kind(),
        })
    }

    /// The int8 pass of an int8 network on already quantized rows: each
    /// value of `data` must be an integer in `-128..=127`; the outputs are
    /// the last int8 tensor's values
    /// ([`tinygen_runtime::QNetwork::forward_i8`]).
    pub fn run_i8(&self, data: &Dataset, data_name: &Path) -> anyhow::Result<NetworkRows> {
        let name = data_name.display();
        let AnyModel::QNetwork(net) = self.network()? else {
            bail!(
                "{} is an f32 network: int8 input and output need an int8 file \
                 (tinygen export --quantize int8)",
                self.path.display()
            );
        };
        let (i, o) = (net.input_dim(), net.output_dim());
        if data.cols != i {
            bail!(
                "{name} has {} columns but the model takes {i} values per row{}",
                data.cols,
                surplus_columns_hint(data.cols, i)
            );
        }
        let inputs = data
            .values
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if v.fract() == 0.0 && (-128.0..=127.0).contains(&v) {
                    Ok(v as i8)
                } else {
                    Err(anyhow!(
                        "{name}: row {}, column {}: {v} is not an int8 value (an integer in -128..=127)",
                        k / i + 1,
                        k % i + 1
                    ))
                }
            })
            .collect::<anyhow::Result<Vec<i8>>>()?;
        let mut out = vec![0i8; inputs.len() / i.max(1) * o];
        out.par_chunks_mut(ROWS_PER_TASK * o)
            .zip(inputs.par_chunks(ROWS_PER_TASK * i))
            .try_for_each(|(out, rows)| {
                let mut scratch = Box::new(QScratch::<HOST_WIDTH>::new());
                for (y, x) in out.chunks_exact_mut(o).zip(rows.chunks_exact(i)) {
                    net.forward_i8(x, y, &mut scratch)?;
                }
                Ok::<(), Error>(())
            })
            .map_err(|e| anyhow!("runtime: {e}"))?;
        Ok(NetworkRows {
            values: out.into_iter().map(f32::from).collect(),
            width: o,
            kind: net.kind(),
        })
    }
}

/// `n` samples of the model file at `path`: draws from a decoder's latent
/// prior, decoded, or a diffusion model's samples (by `sampler`, else the
/// file's default); the same draws a board makes whose Xoshiro128++
/// generator is seeded with `seed`, one sample after the other.
pub fn sample_file(
    path: &Path,
    n: usize,
    seed: u64,
    sampler: Option<Sampler>,
) -> anyhow::Result<NetworkRows> {
    let file = AlignedBytes::read(path)?;
    let fail = |e: Error| open_error(path, file.as_bytes(), e);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let model = AnyModel::from_bytes(file.as_bytes()).map_err(fail)?;
    ensure!(
        sampler.is_none() || model.kind() == ModelKind::Diffusion,
        "{} is a {} model: only diffusion models take a sampler (--sampler, --steps)",
        path.display(),
        model.kind()
    );
    let width = model.output_len();
    let mut values = vec![0f32; n * width];
    match model {
        AnyModel::Diffusion(m) => {
            let sampler = sampler.unwrap_or(m.spec().sampler);
            let mut work = vec![0f32; m.work_len()];
            for row in values.chunks_mut(width) {
                m.sample_in(&mut rng, sampler, row, &mut work)
                    .map_err(|e| anyhow!("sampling failed: {e}"))?;
            }
        }
        AnyModel::QNetwork(q) if model.kind() == ModelKind::DecoderInt8 => {
            if let Some(fast) = FastQNetwork::where_fast(&q) {
                // The draws `QNetwork::sample` makes, in its order (the
                // pass draws nothing), then decoded together.
                let mut latents = vec![0f32; n * q.latent_dim()];
                for z in latents.chunks_mut(q.latent_dim().max(1)) {
                    q.prior()
                        .sample(&mut rng, z)
                        .map_err(|e| anyhow!("sampling failed: {e}"))?;
                }
                fast.forward_batch(&latents, &mut values)?;
            } else {
                let mut scratch = Box::new(QScratch::<HOST_WIDTH>::new());
                for row in values.chunks_mut(width) {
                    q.sample(&mut rng, row, &mut scratch)
                        .map_err(|e| anyhow!("sampling failed: {e}"))?;
                }
            }
        }
        _ => {
            let dec = Decoder::<HOST_WIDTH>::from_bytes(file.as_bytes()).map_err(fail)?;
            let mut scratch = Box::new(Scratch::<HOST_WIDTH>::new());
            for row in values.chunks_mut(width) {
                dec.sample(&mut rng, row, &mut scratch)
                    .map_err(|e| anyhow!("sampling failed: {e}"))?;
            }
        }
    }
    Ok(NetworkRows {
        values,
        width,
        kind: model.kind(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sample_file` on an int8 decoder (drawn first, decoded together on
    /// the fast path) gives the runtime's `QNetwork::sample`, row after
    /// row from the same generator, bit for bit.
    #[test]
    fn int8_samples_are_the_runtimes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/mnist-vae-int8-decoder/model.tgm");
        let (n, seed) = (37, 5);
        let got = sample_file(&path, n, seed, None).unwrap();
        let file = AlignedBytes::read(&path).unwrap();
        let net = tinygen_runtime::QNetwork::from_bytes(file.as_bytes()).unwrap();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
        let mut scratch = Box::new(QScratch::<HOST_WIDTH>::new());
        let mut want = vec![0f32; n * net.output_dim()];
        for row in want.chunks_mut(net.output_dim()) {
            net.sample(&mut rng, row, &mut scratch).unwrap();
        }
        assert_eq!(got.width, net.output_dim());
        assert!(
            got.values
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits())
                && got.values.len() == want.len()
        );
    }

    #[test]
    fn aligned_bytes_round_trip_and_alignment() {
        for len in 0..9 {
            let data: Vec<u8> = (0..len as u8).collect();
            let a = AlignedBytes::new(&data);
            assert_eq!(a.as_bytes(), &data[..]);
            assert_eq!(a.as_bytes().as_ptr() as usize % 4, 0);
        }
    }
}
