//! `cargo xtask bench-decode`: host decode latency, runtime vs tract vs candle
//! (f32) and runtime vs LiteRT (int8).

#[cfg(feature = "onnx")]
use crate::process::median_seconds;
use crate::process::rerun_in_release;

/// Host latency of decodes at batch 1 and 64, same weights, one run: the
/// runtime crate (what the board runs, here compiled for the host), its
/// host fast path (`tinygen::fast_network`, bit-identical), tract-onnx
/// running the exported ONNX file, and candle. Runs from a release build
/// with the `onnx` feature (rerunning itself if this is not one).
pub(crate) fn bench_decode() -> anyhow::Result<()> {
    if let Some(done) = rerun_in_release(&["onnx"], cfg!(feature = "onnx")) {
        return done;
    }
    #[cfg(feature = "onnx")]
    return measure();
    #[cfg(not(feature = "onnx"))]
    anyhow::bail!("bench-decode needs the onnx feature")
}

#[cfg(feature = "onnx")]
fn measure() -> anyhow::Result<()> {
    use candle_core::{Device, Tensor};
    use tinygen::fast_network::FastNetwork;
    use tinygen::nn::export::{Part, dense_layers, export_tgm};
    use tinygen::nn::onnx::{TractPlan, export_onnx};
    use tinygen_runtime::{Network as RtNetwork, Scratch};

    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut batch_rows = Vec::new();
    println!(
        "Batch 1, microseconds per decode:\n\n| decoder | MACs | runtime | host fast path | tract-onnx | candle | tract / fast path | runtime / fast path |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (latent, hidden) in [(16, 128), (20, 400)] {
        let net = vae(latent, hidden)?;
        let bytes = tinygen::host::AlignedBytes::new(&export_tgm(&net, Part::Decoder, None)?);
        let rt = RtNetwork::from_bytes(bytes.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let fast = FastNetwork::new(&rt)?;
        let onnx = export_onnx(&dense_layers(&net, Part::Decoder)?, Part::Decoder, "bench")?;
        let tract = TractPlan::new(&onnx, 1, latent)?;
        let z: Vec<f32> = (0..latent).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut out = vec![0f32; 784];
        let mut scratch = Box::new(Scratch::<512>::new());
        // The fast path's numbers are the runtime's, bit for bit.
        let mut want = vec![0f32; 784];
        rt.forward(&z, &mut want, &mut scratch)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        fast.forward(&z, &mut out)?;
        anyhow::ensure!(
            out.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the fast path differs from the runtime"
        );
        let reps = 2000;
        let runtime = microseconds(reps, || {
            rt.forward(std::hint::black_box(&z), &mut out, &mut scratch)
                .expect("decode");
        });
        let fast_us = microseconds(reps, || {
            fast.forward(std::hint::black_box(&z), &mut out)
                .expect("decode");
        });
        let tract_us = microseconds(reps, || {
            std::hint::black_box(tract.run(std::hint::black_box(&z)).expect("tract"));
        });
        let zt = Tensor::from_slice(&z, (1, latent), &Device::Cpu)?;
        let candle = microseconds(reps, || {
            std::hint::black_box(net.decode(&zt).expect("decode"));
        });
        println!(
            "| {latent}-{hidden}-784 | {} | {runtime:.1} | {fast_us:.1} | {tract_us:.1} | {candle:.1} | {:.2} | {:.2} |",
            rt.macs(),
            tract_us / fast_us,
            runtime / fast_us,
        );

        // Batch 64: one thread each (tract runs on one), and the fast
        // path on every core.
        let rows = 64;
        let zs: Vec<f32> = (0..rows * latent)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let mut outs = vec![0f32; rows * 784];
        let tract64 = TractPlan::new(&onnx, rows, latent)?;
        let reps = 100;
        let fast_1 = one_thread.install(|| {
            microseconds(reps, || {
                fast.forward_batch(std::hint::black_box(&zs), &mut outs)
                    .expect("decode");
            })
        });
        let fast_all = microseconds(reps, || {
            fast.forward_batch(std::hint::black_box(&zs), &mut outs)
                .expect("decode");
        });
        let tract64_us = microseconds(reps, || {
            std::hint::black_box(tract64.run(std::hint::black_box(&zs)).expect("tract"));
        });
        let zt = Tensor::from_slice(&zs, (rows, latent), &Device::Cpu)?;
        let candle64 = microseconds(reps, || {
            std::hint::black_box(net.decode(&zt).expect("decode"));
        });
        batch_rows.push(format!(
            "| {latent}-{hidden}-784 | {fast_1:.0} | {fast_all:.0} | {tract64_us:.0} | {candle64:.0} | {:.2} | {:.2} |",
            tract64_us / fast_1,
            tract64_us / fast_all,
        ));
    }
    println!(
        "\nBatch 64, microseconds per batch:\n\n| decoder | host fast path, 1 thread | host fast path, {} threads | tract-onnx (1 thread) | candle | tract / fast path (1 thread) | tract / fast path (all) |",
        rayon::current_num_threads()
    );
    println!("|---|---|---|---|---|---|---|");
    for row in batch_rows {
        println!("{row}");
    }
    bench_int8()
}

/// The same decoders quantized to int8 (TFLite's scheme, per-channel,
/// sigmoid by table): the runtime crate against the LiteRT interpreter
/// (`scripts/bench_litert.py`, `TINYGEN_PYTHON` with `ai-edge-litert`)
/// running the TFLite file `export --format tflite --quantize int8` writes
/// for it, one thread each, and whether their outputs are the same.
/// The benchmarks' VAE, latent-hidden-784 (MNIST's images), weights as
/// initialised with seed 0 (speed does not depend on them).
#[cfg(feature = "onnx")]
fn vae(latent: usize, hidden: usize) -> anyhow::Result<tinygen::nn::network::Network> {
    use tinygen::nn::config::{NetworkConfig, Objective};
    let config = NetworkConfig {
        image: Some((28, 28)),
        ..NetworkConfig::new(Objective::VAE, 784, vec![hidden], latent)
    };
    tinygen::nn::network::Network::new(config, 0)
}

/// Microseconds per call of `call`, the median of three timings of `reps`
/// calls.
#[cfg(feature = "onnx")]
fn microseconds(reps: usize, mut call: impl FnMut()) -> f64 {
    median_seconds(|| {
        for _ in 0..reps {
            call();
        }
    }) / reps as f64
        * 1e6
}

#[cfg(feature = "onnx")]
fn bench_int8() -> anyhow::Result<()> {
    use rand::SeedableRng;
    use tinygen::fast_qnetwork::{FastQNetwork, Kernel};
    use tinygen::import::{Imported, Int8Network, tflite, tflite_writer};
    use tinygen::nn::export::{Part, dense_layers};
    use tinygen::nn::prior::Prior;
    use tinygen::nn::quantize::{QuantOptions, quantize_with};
    use tinygen_runtime::{QNetwork, QScratch};
    use xtask::root;

    let python = std::env::var("TINYGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = root().join("target/bench-decode");
    std::fs::create_dir_all(&dir)?;
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let rows = 64;
    let (mut batch_rows, mut kernel_rows) = (Vec::new(), Vec::new());
    println!(
        "\nInt8 (LiteRT: the TFLite file of the same int8 network, float input and output), batch 1, microseconds per decode:\n\n| decoder | MACs | runtime | host fast path | LiteRT (1 thread) | LiteRT / fast path | runtime / fast path | outputs identical |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (latent, hidden) in [(16, 128), (20, 400)] {
        let net = vae(latent, hidden)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let calibration = Prior::Gaussian.sample(1000, latent, None, &mut rng);
        let quantized = quantize_with(
            &dense_layers(&net, Part::Decoder)?,
            &calibration,
            QuantOptions::default(),
        )?;
        let network = Imported::Int8(Int8Network::from(&quantized));
        let flat = tflite_writer::write(&network)?;
        let file = tflite::import(&flat)?.encode(Part::Decoder.role())?;
        let bytes = tinygen::host::AlignedBytes::new(&file);
        let qnet = QNetwork::from_bytes(bytes.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let fast = FastQNetwork::new(&qnet)?;
        let model = dir.join(format!("decoder-{latent}-{hidden}-int8.tflite"));
        std::fs::write(&model, &flat)?;

        // 64 latent codes from the prior, other draws than the calibration's.
        let zs = Prior::Gaussian.sample(rows, latent, None, &mut rng);
        let mut ours = vec![0f32; rows * 784];
        let mut scratch = Box::new(QScratch::<1024>::new());
        for (z, out) in zs.chunks(latent).zip(ours.chunks_mut(784)) {
            qnet.forward(z, out, &mut scratch)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let mut fast_out = vec![0f32; rows * 784];
        fast.forward_batch(&zs, &mut fast_out)?;
        let same = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        anyhow::ensure!(
            same(&ours, &fast_out),
            "the fast path differs from the runtime"
        );

        // Every kernel this CPU runs, batch 1 and 64 on one thread.
        let mut kernel_times = Vec::new();
        for kernel in Kernel::available() {
            let fast = FastQNetwork::with_kernel(&qnet, kernel)?;
            let mut out = vec![0f32; rows * 784];
            fast.forward_batch(&zs, &mut out)?;
            anyhow::ensure!(same(&ours, &out), "the {} kernel differs", kernel.name());
            let (one, batch) = one_thread.install(|| {
                let mut k = 0;
                let one = microseconds(500, || {
                    k = (k + 1) % rows;
                    let z = &zs[k * latent..][..latent];
                    fast.forward(std::hint::black_box(z), &mut out[..784])
                        .expect("decode");
                });
                let batch = microseconds(20, || {
                    fast.forward_batch(std::hint::black_box(&zs), &mut out)
                        .expect("decode");
                });
                (one, batch)
            });
            kernel_times.push((kernel, one, batch));
        }

        let reps = 2000;
        // One latent code after the other, round the 64.
        let mut next_z = {
            let mut k = 0;
            move || {
                k = (k + 1) % rows;
                k * latent
            }
        };
        let runtime_1 = microseconds(reps, || {
            let z = &zs[next_z()..][..latent];
            qnet.forward(std::hint::black_box(z), &mut ours[..784], &mut scratch)
                .expect("decode");
        });
        let fast_1 = microseconds(reps, || {
            let z = &zs[next_z()..][..latent];
            fast.forward(std::hint::black_box(z), &mut fast_out[..784])
                .expect("decode");
        });
        let reps = 100;
        let runtime_batch = microseconds(reps, || {
            for (z, out) in zs.chunks(latent).zip(ours.chunks_mut(784)) {
                qnet.forward(std::hint::black_box(z), out, &mut scratch)
                    .expect("decode");
            }
        });
        let fast_batch_1 = one_thread.install(|| {
            microseconds(reps, || {
                fast.forward_batch(std::hint::black_box(&zs), &mut fast_out)
                    .expect("decode");
            })
        });
        let fast_batch_all = microseconds(reps, || {
            fast.forward_batch(std::hint::black_box(&zs), &mut fast_out)
                .expect("decode");
        });

        for (kernel, one, batch) in kernel_times {
            kernel_rows.push(format!(
                "| {latent}-{hidden}-784 | {} | {one:.1} | {batch:.0} | {:.2} | {:.2} |",
                kernel.name(),
                runtime_1 / one,
                runtime_batch / batch
            ));
        }

        let (inputs, outputs) = (dir.join("inputs.json"), dir.join("outputs.json"));
        let bits: Vec<u32> = zs.iter().map(|v| v.to_bits()).collect();
        std::fs::write(
            &inputs,
            serde_json::to_string(&serde_json::json!({"width": latent, "bits": bits}))?,
        )?;
        let out = std::process::Command::new(&python)
            .arg(root().join("scripts/bench_litert.py"))
            .args([&model, &inputs, &outputs])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "scripts/bench_litert.py failed (TINYGEN_PYTHON needs numpy and ai-edge-litert):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let times: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let litert_1 = times["batch_1_us"].as_f64().unwrap_or(f64::NAN);
        let litert_batch = times["batch_us"].as_f64().unwrap_or(f64::NAN);
        let theirs: serde_json::Value = serde_json::from_slice(&std::fs::read(&outputs)?)?;
        let theirs: Vec<f32> = theirs["bits"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_u64())
                    .map(|b| f32::from_bits(b as u32))
                    .collect()
            })
            .unwrap_or_default();
        fast.forward_batch(&zs, &mut fast_out)?;
        println!(
            "| {latent}-{hidden}-784 | {} | {runtime_1:.1} | {fast_1:.1} | {litert_1:.1} | {:.2} | {:.2} | {} |",
            qnet.macs(),
            litert_1 / fast_1,
            runtime_1 / fast_1,
            if same(&theirs, &fast_out) {
                "yes"
            } else {
                "no"
            },
        );
        batch_rows.push(format!(
            "| {latent}-{hidden}-784 | {runtime_batch:.0} | {fast_batch_1:.0} | {fast_batch_all:.0} | {litert_batch:.0} | {:.2} | {:.2} |",
            litert_batch / fast_batch_1,
            litert_batch / fast_batch_all,
        ));
    }
    println!(
        "\nInt8, batch 64, microseconds per batch (the runtime row by row, LiteRT in one call on one thread):\n\n| decoder | runtime | host fast path, 1 thread | host fast path, {} threads | LiteRT | LiteRT / fast path (1 thread) | LiteRT / fast path (all) |",
        rayon::current_num_threads()
    );
    println!("|---|---|---|---|---|---|---|");
    for row in batch_rows {
        println!("{row}");
    }
    println!(
        "\nInt8 host fast path by kernel (those this CPU runs; `FastQNetwork::new` takes the last), microseconds, one thread:\n\n| decoder | kernel | batch 1 | batch 64 | runtime / kernel, batch 1 | runtime / kernel, batch 64 |"
    );
    println!("|---|---|---|---|---|---|");
    for row in kernel_rows {
        println!("{row}");
    }
    Ok(())
}
