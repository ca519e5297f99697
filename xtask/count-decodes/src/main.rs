//! The decodes that `cargo xtask bench-arm` counts: the two example
//! decoder shapes (16-128-784 and 20-400-784, VAE-initialised weights) in
//! int8 and f32, one row and 16 rows, by the runtime and by the host fast
//! path with each kernel this CPU runs. Before each region it prints
//! `region LABEL` on stderr; the counting QEMU plugin prints `icount N` when
//! the region ends. Every fast-path result is checked against the
//! runtime's, bit for bit. (16 rows: the fast path runs them on the calling
//! thread, so the count is one thread's.)

use rand::SeedableRng;
use tinygen::fast_network::FastNetwork;
use tinygen::fast_qnetwork::{FastQNetwork, Kernel};
use tinygen::host::AlignedBytes;
use tinygen::import::{Imported, Int8Network, tflite, tflite_writer};
use tinygen::nn::config::{NetworkConfig, Objective};
use tinygen::nn::export::{Part, dense_layers, export_tgm};
use tinygen::nn::network::Network;
use tinygen::nn::prior::Prior;
use tinygen::nn::quantize::{QuantOptions, quantize_with};
use tinygen_runtime::{QNetwork, QScratch, Scratch};

/// Rows of the batch regions.
const ROWS: usize = 16;

/// Where a counted region starts.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinygen_bench_start() {
    std::hint::black_box(1u32);
}

/// Where a counted region ends (another body, so that the two stay apart).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinygen_bench_end() {
    std::hint::black_box(2u64);
}

fn region(label: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("region {label}");
    tinygen_bench_start();
    let result = f();
    tinygen_bench_end();
    result
}

fn same(a: &[f32], b: &[f32]) -> anyhow::Result<()> {
    let same = a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
    anyhow::ensure!(same, "the fast path differs from the runtime");
    Ok(())
}

fn runtime_error(e: tinygen_runtime::Error) -> anyhow::Error {
    anyhow::anyhow!("runtime: {e}")
}

fn main() -> anyhow::Result<()> {
    region("empty", || Ok(()))?;
    for (latent, hidden) in [(16, 128), (20, 400)] {
        let config = NetworkConfig {
            image: Some((28, 28)),
            ..NetworkConfig::new(Objective::VAE, 784, vec![hidden], latent)
        };
        let net = Network::new(config, 0)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let calibration = Prior::Gaussian.sample(1000, latent, None, &mut rng);
        let layers = dense_layers(&net, Part::Decoder)?;
        let quantized = quantize_with(&layers, &calibration, QuantOptions::default())?;
        let flat = tflite_writer::write(&Imported::Int8(Int8Network::from(&quantized)))?;
        let file = tflite::import(&flat)?.encode(Part::Decoder.role())?;
        let bytes = AlignedBytes::new(&file);
        let qnet = QNetwork::from_bytes(bytes.as_bytes()).map_err(runtime_error)?;
        let file = export_tgm(&net, Part::Decoder, None)?;
        let f32_bytes = AlignedBytes::new(&file);
        let fnet =
            tinygen_runtime::Network::from_bytes(f32_bytes.as_bytes()).map_err(runtime_error)?;
        let zs = Prior::Gaussian.sample(ROWS, latent, None, &mut rng);
        let mut qscratch = Box::new(QScratch::<1024>::new());
        let mut scratch = Box::new(Scratch::<1024>::new());
        for rows in [1, ROWS] {
            let (zs, name) = (
                &zs[..rows * latent],
                format!("{latent}-{hidden}-784 {rows}"),
            );
            let mut want = vec![0f32; rows * 784];
            region(&format!("int8 {name} runtime"), || {
                for (z, out) in zs.chunks(latent).zip(want.chunks_mut(784)) {
                    qnet.forward(z, out, &mut qscratch).map_err(runtime_error)?;
                }
                Ok(())
            })?;
            for kernel in Kernel::available() {
                let fast = FastQNetwork::with_kernel(&qnet, kernel)?;
                let mut got = vec![0f32; rows * 784];
                fast.forward_batch(zs, &mut got)?; // first-call allocations
                region(&format!("int8 {name} {}", kernel.name()), || {
                    fast.forward_batch(zs, &mut got)
                })?;
                same(&got, &want)?;
            }
            region(&format!("f32 {name} runtime"), || {
                for (z, out) in zs.chunks(latent).zip(want.chunks_mut(784)) {
                    fnet.forward(z, out, &mut scratch).map_err(runtime_error)?;
                }
                Ok(())
            })?;
            let fast = FastNetwork::new(&fnet)?;
            let mut got = vec![0f32; rows * 784];
            fast.forward_batch(zs, &mut got)?;
            region(&format!("f32 {name} fast path"), || {
                fast.forward_batch(zs, &mut got)
            })?;
            same(&got, &want)?;
        }
    }
    Ok(())
}
