//! `tinygen info`: describe a model file, or the model file at the start of
//! a dump of a device's flash page.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use tinygen_runtime::detector::{AutoencoderSpec, Features};
use tinygen_runtime::diffusion::Schedule;
use tinygen_runtime::format::{self, ModelKind, read_header};
use tinygen_runtime::gmm::Covariance;
use tinygen_runtime::learn::Recipe;
use tinygen_runtime::{Activation, AnyModel};

use super::Readable;
use crate::host::AlignedBytes;
use crate::io::write_atomic;

/// Arguments of `tinygen info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Model file (.tgm), or a dump of the flash page a device wrote one to
    /// (the file at its start; the bytes after it are ignored).
    pub model: PathBuf,
    /// Also write the model file alone (checked first) to this path: a
    /// detector learned on a device, pulled from its flash dump.
    #[arg(long, value_name = "FILE")]
    pub extract: Option<PathBuf>,
}

/// Runs `tinygen info`: checks the file as the runtime does and prints its summary.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let input = AlignedBytes::read(&args.model)?;
    let all = input.as_bytes();
    let bytes = match format::file_in(all) {
        Ok(file) => file,
        Err(_) if !all.is_empty() && all.iter().all(|&b| b == 0xFF) => bail!(
            "{}: erased flash ({} bytes of 0xFF), no model file",
            args.model.display(),
            all.len()
        ),
        // The whole input, for the runtime's own error.
        Err(_) => all,
    };
    if read_header(bytes).is_ok_and(|h| h.kind == ModelKind::Recipe) {
        recipe_info(args, bytes, all.len())?;
    } else {
        model_info(args, bytes, all.len())?;
    }
    if let Some(path) = &args.extract {
        write_atomic(path, bytes)?;
        println!("extracted   {} bytes to {}", bytes.len(), path.display());
    }
    Ok(())
}

/// The size line: the file's bytes, and where they sit in a larger input.
fn print_size(file: usize, input: usize) {
    if file == input {
        println!("bytes       {file}");
    } else {
        println!(
            "bytes       {file}, at the start of the input's {input} (the {} after it ignored)",
            input - file
        );
    }
}

/// `tinygen info` on a model of any kind but a recipe.
fn model_info(args: &InfoArgs, bytes: &[u8], input: usize) -> anyhow::Result<()> {
    let model =
        AnyModel::from_bytes(bytes).map_err(|e| crate::host::open_error(&args.model, bytes, e))?;
    let header = model.header();
    println!("file        {}", args.model.display());
    println!("kind        {}", header.kind);
    println!(
        "format      v{} (schema {:#010x})",
        header.version, header.schema
    );
    print_size(bytes.len(), input);
    println!("crc32       {:#010x}", header.crc);
    match model {
        AnyModel::Detector(detector) => {
            let spec = detector.spec();
            print_features(spec.features, detector.input_len());
            println!(
                "density     {} ({} components, {} covariance, standardized)",
                spec.density_kind,
                spec.density.components,
                spec.density.covariance.name()
            );
            fn widths(ends: impl Iterator<Item = (u16, u16)> + Clone) -> String {
                let first = ends.clone().next().map_or(0, |(i, _)| i);
                std::iter::once(first.to_string())
                    .chain(ends.map(|(_, o)| o.to_string()))
                    .collect::<Vec<_>>()
                    .join("-")
            }
            let autoencoder = |a: &AutoencoderSpec| match a {
                AutoencoderSpec::F32 { encoder, decoder } => {
                    let w = |n: &tinygen_runtime::network::NetworkSpec| {
                        widths(n.layers.as_slice().iter().map(|l| (l.inputs, l.outputs)))
                    };
                    (w(encoder), w(decoder), "f32")
                }
                AutoencoderSpec::Int8 { encoder, decoder } => {
                    let w = |n: &tinygen_runtime::qnetwork::QNetworkSpec| {
                        widths(n.layers.as_slice().iter().map(|l| (l.inputs, l.outputs)))
                    };
                    (w(encoder), w(decoder), "int8 (TFLite scheme)")
                }
            };
            match (&spec.neural, &spec.second) {
                (None, None) => println!(
                    "threshold   {} (alarm when -log p >= threshold)",
                    Readable(spec.threshold)
                ),
                (None, Some(second)) => {
                    println!(
                        "second      {} ({} components, {} covariance); score = sum of \
                         (-log p - center) / scale over both densities: center {:?}, scale {:?}",
                        second.kind,
                        second.density.components,
                        second.density.covariance.name(),
                        second.center,
                        second.scale
                    );
                    println!(
                        "threshold   {} (alarm when the combined score >= threshold)",
                        Readable(spec.threshold)
                    );
                }
                (Some(n), _) => {
                    let (encoder, decoder, format) = autoencoder(&n.autoencoder);
                    println!(
                        "autoencoder {format} encoder {encoder}, decoder {decoder}, latent mixture of {} component(s); \
                         score = sum of (term - center) / scale over -log p, reconstruction \
                         error, latent -log q: center {:?}, scale {:?}",
                        n.latent.components, n.center, n.scale
                    );
                    println!(
                        "threshold   {} (alarm when the combined score >= threshold)",
                        Readable(spec.threshold)
                    );
                    println!(
                        "ram         DetectorScratch<{}> ({} bytes); Detector::score uses its own up to width {}",
                        detector.neural_width(),
                        20 * detector.neural_width(),
                        tinygen_runtime::detector::NEURAL_WIDTH
                    );
                }
            }
            println!(
                "parameters  {} 4-byte values (f32, or int8 words)",
                detector.stored_values()
            );
            println!("macs        {} per score", detector.macs());
        }
        AnyModel::Network(net) => {
            let mut layers = net.input_dim().to_string();
            for layer in net.layers() {
                layers += &format!(" -> {} {}", layer.outputs, layer.activation.name());
            }
            println!("layers      {layers}");
            println!(
                "latent      {} ({} prior)",
                net.latent_dim(),
                net.prior().prior().name()
            );
            println!(
                "parameters  {} f32 values ({} with the prior)",
                net.parameters(),
                net.stored_values()
            );
            println!(
                "flash       {} bytes (the file, read in place)",
                bytes.len()
            );
            // A decoder also keeps the sampled latent code in a buffer.
            let width = if header.kind == ModelKind::Decoder {
                net.hidden_width().max(net.latent_dim())
            } else {
                net.hidden_width()
            };
            println!(
                "ram         no heap; 2 x {width} x 4 = {} bytes of activation buffers \
                 (Scratch<{width}>), plus the call's stack",
                8 * width
            );
            println!("macs        {} per sample", net.macs());
        }
        AnyModel::Diffusion(m) => {
            let spec = m.spec();
            let schedule = match spec.schedule {
                Schedule::Linear {
                    beta_start,
                    beta_end,
                } => format!("linear betas {beta_start:e} to {beta_end:e}"),
                Schedule::Cosine { offset } => format!("cosine (offset {offset})"),
                Schedule::Custom => "custom".to_string(),
            };
            let a = m.alpha_bar();
            println!(
                "data        {} values per sample ({})",
                m.dim(),
                if spec.clip {
                    "x0 predictions clipped to [-1, 1], then scaled to data"
                } else {
                    "scaled to data"
                }
            );
            println!(
                "schedule    {} steps, {schedule}; alpha_bar {:e} .. {:e}",
                spec.steps,
                a.first().copied().unwrap_or(0.0),
                a.last().copied().unwrap_or(0.0)
            );
            let net = m.predictor();
            let mut layers = format!("{} + {} time embedding", m.dim(), m.embedding_dim());
            for layer in net.layers() {
                layers += &format!(" -> {} {}", layer.outputs, layer.activation.name());
            }
            println!("predictor   {layers}");
            println!(
                "parameters  {} f32 values ({} with the schedule and output map)",
                net.parameters(),
                m.stored_values()
            );
            println!(
                "flash       {} bytes (the file, read in place)",
                bytes.len()
            );
            println!(
                "ram         no heap; {} f32 work values + {} output values = {} bytes, plus the call's stack",
                m.work_len(),
                m.dim(),
                4 * (m.work_len() + m.dim())
            );
            let sampler = spec.sampler;
            println!(
                "sampler     {} steps, eta {} (default; tinygen sample --sampler ddpm|ddim --steps S)",
                sampler.steps, sampler.eta
            );
            println!(
                "macs        {} per step; {} per sample by the default sampler, {} by DDPM over all {} steps",
                m.macs_per_step(),
                m.macs_per_step() * usize::from(sampler.steps),
                m.macs_per_step() * usize::from(spec.steps),
                spec.steps
            );
        }
        AnyModel::QNetwork(net) => {
            let input = net.input_params();
            println!(
                "scheme      int8 (TensorFlow Lite's): symmetric weights, asymmetric activations, \
                 int32 accumulators, fixed-point requantization"
            );
            println!(
                "input       {} values, quantized with scale {:e}, zero point {}",
                net.input_dim(),
                input.scale,
                input.zero_point
            );
            for (i, layer) in net.layers().enumerate() {
                let table = if net.activation_table(i).is_some() {
                    format!(
                        ", then a 256-entry table to scale {:e}, zero point {}",
                        layer.activated.scale, layer.activated.zero_point
                    )
                } else if matches!(layer.activation, Activation::Sigmoid | Activation::Tanh) {
                    ", then dequantized and activated in f32".to_string()
                } else {
                    String::new()
                };
                println!(
                    "layer {i}     {} -> {} {}, {} weight scales, output scale {:e}, zero point {}{table}",
                    layer.inputs,
                    layer.outputs,
                    layer.activation.name(),
                    if layer.per_channel {
                        "per-channel"
                    } else {
                        "one"
                    },
                    layer.output.scale,
                    layer.output.zero_point
                );
            }
            println!(
                "flash       {} bytes (the file, read in place; {} bytes of weights and parameters)",
                bytes.len(),
                net.stored_bytes()
            );
            let width = net.hidden_width();
            println!(
                "ram         no heap; 2 x {width} bytes of int8 activation buffers (QScratch<{width}>), \
                 plus the call's stack"
            );
            println!("macs        {} per call (int8 x int8 -> int32)", net.macs());
        }
        AnyModel::Density(gmm) => {
            let spec = gmm.spec();
            let kde = header.kind == ModelKind::Kde;
            println!("dimensions  {}", spec.dim);
            if kde {
                println!("points      {} (kernel centres)", spec.components);
                let kernel = match spec.covariance {
                    Covariance::Tied => "full",
                    _ => "diagonal",
                };
                println!("kernel      Gaussian, {kernel} bandwidth matrix");
            } else {
                println!("components  {}", spec.components);
                println!("covariance  {}", spec.covariance.name());
            }
            println!(
                "standardize {}",
                if spec.standardized {
                    "yes (folded into the weights)"
                } else {
                    "no"
                }
            );
            println!(
                "parameters  {} f32 values ({} bytes)",
                gmm.stored_values(),
                4 * gmm.stored_values()
            );
            let stack = match spec.covariance {
                Covariance::Full => "about 300 bytes",
                Covariance::Diag | Covariance::Spherical => "about 210 bytes",
                Covariance::Tied => "about 610 bytes, with a 256-byte projection buffer",
            };
            println!(
                "ram         no heap, weights read in place; stack per call on a Cortex-M4F {stack} \
                 (measured under QEMU); log_responsibilities also takes a caller buffer of {} bytes",
                4 * spec.components
            );
            println!(
                "macs        {} per log_density, plus {} exp and one ln",
                gmm.macs(),
                spec.components
            );
        }
    }
    Ok(())
}

/// The input line of a detector or a recipe.
fn print_features(features: Features, input_len: usize) {
    match features {
        Features::Identity => println!("input       {input_len} values"),
        Features::RawWindow { channels, length } => {
            println!("input       windows of {length} samples x {channels} channels, scored raw")
        }
        Features::WindowStats { channels, length } => println!(
            "input       windows of {length} samples x {channels} channels -> mean, std, min, max per channel"
        ),
    }
}

/// `tinygen info` on a recipe: what the device learns, from how many
/// inputs, in how much memory.
fn recipe_info(args: &InfoArgs, bytes: &[u8], input: usize) -> anyhow::Result<()> {
    let recipe =
        Recipe::from_bytes(bytes).map_err(|e| crate::host::open_error(&args.model, bytes, e))?;
    let (header, spec) = (recipe.header(), recipe.spec());
    println!("file        {}", args.model.display());
    println!(
        "kind        {} (a detector learned on the device)",
        header.kind
    );
    println!(
        "format      v{} (schema {:#010x})",
        header.version, header.schema
    );
    print_size(bytes.len(), input);
    println!("crc32       {:#010x}", header.crc);
    print_features(spec.features, spec.input_len());
    println!(
        "density     {} component(s) over {} features, {} covariance, standardized, reg-covar {}",
        spec.components,
        spec.dim,
        spec.covariance.name(),
        spec.reg_covar
    );
    if let Some(reg) = spec.second_reg_covar {
        println!(
            "second      the same with reg-covar {reg}; score: the sum of the two densities' \
             robust z-scores (constants from the calibration inputs)"
        );
    }
    if spec.components > 1 {
        println!(
            "fit         k-means++ (seed {}), then {} k-means and {} EM passes over the stored features",
            spec.seed, spec.iterations, spec.iterations
        );
    }
    println!(
        "learning    from the first {} inputs; threshold at alarm rate {} of the next {}",
        spec.learn, spec.alarm_rate, spec.calibrate
    );
    // A recipe that parsed passed its check: every length is known.
    if let Some(m) = spec.memory() {
        println!(
            "ram         {} bytes of state, {} of stored features, {} of scores, {} for the learned file",
            m.state, m.features, m.scores, m.file
        );
    }
    Ok(())
}
