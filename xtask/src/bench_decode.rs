//! `cargo xtask bench-decode`: host decode latency, runtime vs tract vs candle.

#[cfg(feature = "onnx")]
use crate::process::median_seconds;
#[cfg(not(feature = "onnx"))]
use crate::process::{cargo, run};
#[cfg(not(feature = "onnx"))]
use xtask::root;

/// Host latency of one decode (batch 1), same weights, one run: the runtime
/// crate (what the board runs, here compiled for the host), tract-onnx
/// running the exported ONNX file, and candle. Needs the `onnx` feature; without it,
/// reruns itself with it.
#[cfg(not(feature = "onnx"))]
pub(crate) fn bench_decode() -> anyhow::Result<()> {
    run(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "xtask",
            "--features",
            "onnx",
            "--",
            "bench-decode",
        ])
        .current_dir(root()))
}

#[cfg(feature = "onnx")]
pub(crate) fn bench_decode() -> anyhow::Result<()> {
    use candle_core::{Device, Tensor};
    use tinygen::nn::config::{NetworkConfig, Objective};
    use tinygen::nn::export::{Part, dense_layers, export_tgm};
    use tinygen::nn::network::Network;
    use tinygen::nn::onnx::{TractPlan, export_onnx};
    use tinygen_runtime::{Network as RtNetwork, Scratch};

    println!(
        "| decoder | MACs | runtime (us) | tract-onnx (us) | candle (us) | tract / runtime | candle / runtime |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (latent, hidden) in [(16, 128), (20, 400)] {
        let config = NetworkConfig {
            image: Some((28, 28)),
            ..NetworkConfig::new(Objective::VAE, 784, vec![hidden], latent)
        };
        let net = Network::new(config, 0)?;
        let bytes = tinygen::host::AlignedBytes::new(&export_tgm(&net, Part::Decoder, None)?);
        let rt = RtNetwork::from_bytes(bytes.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let onnx = export_onnx(&dense_layers(&net, Part::Decoder)?, Part::Decoder, "bench")?;
        let tract = TractPlan::new(&onnx, 1, latent)?;
        let z: Vec<f32> = (0..latent).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut out = vec![0f32; 784];
        let mut scratch = Box::new(Scratch::<512>::new());
        let reps = 2000;
        let runtime = median_seconds(|| {
            for _ in 0..reps {
                rt.forward(std::hint::black_box(&z), &mut out, &mut scratch)
                    .expect("decode");
            }
        }) / reps as f64;
        let tract_s = median_seconds(|| {
            for _ in 0..reps {
                std::hint::black_box(tract.run(std::hint::black_box(&z)).expect("tract"));
            }
        }) / reps as f64;
        let zt = Tensor::from_slice(&z, (1, latent), &Device::Cpu)?;
        let candle = median_seconds(|| {
            for _ in 0..reps {
                std::hint::black_box(net.decode(&zt).expect("decode"));
            }
        }) / reps as f64;
        println!(
            "| {latent}-{hidden}-784 | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            rt.macs(),
            runtime * 1e6,
            tract_s * 1e6,
            candle * 1e6,
            tract_s / runtime,
            candle / runtime
        );
    }
    Ok(())
}
