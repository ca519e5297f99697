//! `tinygen export`, `tinygen decode` and `tinygen sample`: deploy a run's
//! decoder (or encoder) and run it with the runtime crate.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tinygen_runtime::diffusion::{Diffusion, Sampler};
use tinygen_runtime::qnetwork::QNetwork;
use tinygen_runtime::{ModelKind, Network as RtNetwork};

use super::DataArgs;
use crate::c_source;
use crate::data::images::Split;
use crate::host::{self, AlignedBytes, NetworkFile, NetworkRows};
use crate::io::{write_atomic, write_output};
use crate::nn::export::{
    Part, calibration_rows, check_close, error_against_f32, export_int8, export_tgm,
    read_latent_mixture, verify_tgm,
};
use crate::nn::fit::DataSource;
use crate::nn::network::Network;
use crate::nn::plots::square_image_grid;
use crate::nn::quantize::QuantOptions;
use crate::nn::run::load_run;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The runtime's model file.
    Tgm,
    /// An ONNX graph (IR 8, opset 13); needs the `onnx` cargo feature.
    Onnx,
    /// A C header holding the model file as a 4-byte aligned `const
    /// uint8_t` array, for the C API (`tg_model_open`).
    C,
    /// A TensorFlow Lite flatbuffer (float32, or with `--quantize int8`
    /// TFLite's full-integer graph with float input and output).
    Tflite,
}

/// Arguments of `tinygen export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Run folder written by `tinygen fit pca|ae|vae|swae|gan`, or a model
    /// file (.tgm, any kind) to write as C (`--format c`).
    pub run: PathBuf,
    /// Which network to export.
    #[arg(long, value_enum, default_value_t = Part::Decoder)]
    pub part: Part,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Tgm)]
    pub format: Format,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Quantize the network: int8 (TensorFlow Lite's scheme: per-channel
    /// symmetric weights, per-tensor activations calibrated by min/max on
    /// the run's training data); `.tgm`, C or TFLite.
    #[arg(long, value_enum)]
    pub quantize: Option<Quantize>,
    /// Training rows the int8 activation ranges are measured on (the first
    /// rows of the run's training data).
    #[arg(long, default_value_t = 1000, requires = "quantize")]
    pub calibration_rows: usize,
    /// One int8 weight scale per layer instead of one per output channel
    /// (8 bytes less per output in the file; rows with small weights get
    /// coarser steps).
    #[arg(long, requires = "quantize")]
    pub per_tensor: bool,
    /// Run the last layer's sigmoid or tanh in f32 on its dequantized int8
    /// pre-activation (TFLite's FULLY_CONNECTED -> DEQUANTIZE -> LOGISTIC)
    /// instead of by int8 table: outputs off the 1/256 grid (never exactly
    /// 0), at one f32 sigmoid or tanh per output.
    #[arg(long, requires = "quantize")]
    pub f32_output: bool,
    /// Name of the C array (`--format c`; default: the output file's
    /// name, made a C identifier).
    #[arg(long)]
    pub name: Option<String>,
}

/// Number formats a network can be quantized to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Quantize {
    /// 8-bit integers.
    Int8,
}

/// Largest absolute difference allowed between the export and candle.
const TOLERANCE: f32 = 1e-5;

/// Runs `tinygen export`: writes the file only after it reproduces candle's
/// outputs on 64 inputs to 1e-5 (the `.tgm` through the runtime crate, the
/// ONNX file through tract-onnx).
pub fn run_export(args: &ExportArgs) -> anyhow::Result<()> {
    if args.run.is_file() {
        return export_model_file(args);
    }
    let (config, net, _) = load_run(&args.run)?;
    if crate::nn::diffusion::settings(&net).is_ok() {
        return export_diffusion_file(args, &net);
    }
    let data = match args.part {
        Part::Decoder => Vec::new(),
        Part::Encoder => DataSource::of_run(&config).load_split(Split::Test)?.x,
    };
    match (args.format, args.quantize) {
        (Format::Tgm | Format::C, None) => export_runtime_file(args, &net, &data),
        (Format::Tgm | Format::C, Some(Quantize::Int8)) => {
            let train = DataSource::of_run(&config).load_split(Split::Train)?.x;
            export_int8_file(args, &net, &data, &train)
        }
        (Format::Onnx, None) => export_onnx_file(args, &net, &data),
        (Format::Onnx, Some(_)) => {
            anyhow::bail!("--quantize writes .tgm, C or TFLite files (--format tgm, c or tflite)")
        }
        (Format::Tflite, quantize) => {
            let train = match quantize {
                Some(Quantize::Int8) => DataSource::of_run(&config).load_split(Split::Train)?.x,
                None => Vec::new(),
            };
            export_tflite_file(args, &net, &data, &train)
        }
    }
}

/// Writes the model file `bytes` as `--format` says: the file itself, or
/// a C header holding it (named by `--name`, else after the output file).
fn write_model(args: &ExportArgs, bytes: &[u8], source: &str) -> anyhow::Result<()> {
    match args.format {
        Format::C => {
            let name = match &args.name {
                Some(name) => name.clone(),
                None => c_source::c_identifier(
                    &args
                        .out
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
            };
            anyhow::ensure!(
                c_source::is_c_identifier(&name),
                "--name {name:?} is not a C identifier"
            );
            let header = c_source::model_header(&name, bytes, source)?;
            write_atomic(&args.out, header.as_bytes())
        }
        _ => write_atomic(&args.out, bytes),
    }
}

/// `tinygen export MODEL.tgm --format c`: a model file of any kind as a C
/// header, after the runtime has checked it.
fn export_model_file(args: &ExportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.format == Format::C,
        "{} is a model file: only --format c converts one (a run folder exports a network)",
        args.run.display()
    );
    anyhow::ensure!(
        args.quantize.is_none(),
        "--quantize applies to a run folder's network, not to a model file"
    );
    let bytes =
        std::fs::read(&args.run).with_context(|| format!("cannot read {}", args.run.display()))?;
    let source = args.run.file_name().map_or_else(
        || args.run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    write_model(args, &bytes, &source)?;
    let summary = c_source::summary(&bytes)?;
    println!(
        "wrote {} ({} model bytes as a C array): {}",
        args.out.display(),
        bytes.len(),
        summary.join("; ")
    );
    Ok(())
}

fn export_int8_file(
    args: &ExportArgs,
    net: &Network,
    data: &[f32],
    train: &[f32],
) -> anyhow::Result<()> {
    let latent = read_latent_mixture(&args.run)?;
    let calibration = calibration_rows(net, args.part, train, args.calibration_rows)?;
    let (bytes, quantized) = export_int8(
        net,
        args.part,
        latent.as_ref(),
        &calibration,
        quant_options(args),
    )?;
    let (worst, mean) = error_against_f32(net, args.part, &bytes, data)?;
    if !(worst.is_finite() && mean.is_finite()) {
        anyhow::bail!("the int8 network's outputs are not finite; nothing written");
    }
    write_model(args, &bytes, &run_source(args))?;
    let f32_bytes = export_tgm(net, args.part, latent.as_ref())?.len();
    let file = AlignedBytes::new(&bytes);
    let rt = QNetwork::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let calibrated = match args.part {
        Part::Decoder if !net.has_encoder() => {
            format!("{} prior draws", quantized.calibration_rows)
        }
        Part::Decoder => format!(
            "{} latent codes of training rows and as many prior draws",
            quantized.calibration_rows / 2
        ),
        Part::Encoder => format!("{} training rows", quantized.calibration_rows),
    };
    println!(
        "wrote {} ({} bytes, {:.1}x smaller than f32's {f32_bytes}): int8 {} {} -> {}, {} layers, \
         {} multiply-accumulates per call, activation buffers 2 x {} bytes; weight scales per \
         {}; output activation in {}; ranges calibrated (min/max) on {calibrated}; against candle's f32 on the check inputs: max abs error \
         {worst:.4}, mean {mean:.5}",
        args.out.display(),
        bytes.len(),
        f32_bytes as f64 / bytes.len() as f64,
        format!("{:?}", args.part).to_lowercase(),
        rt.input_dim(),
        rt.output_dim(),
        quantized.layers.len(),
        rt.macs(),
        rt.hidden_width(),
        if args.per_tensor {
            "layer"
        } else {
            "output channel"
        },
        if args.f32_output { "f32" } else { "int8" },
    );
    Ok(())
}

/// The int8 options `--per-tensor` and `--f32-output` choose.
fn quant_options(args: &ExportArgs) -> QuantOptions {
    QuantOptions::from_flags(args.per_tensor, args.f32_output)
}

/// `--format tflite`: the network as a TFLite flatbuffer, written only
/// after `tinygen import` reads it back to the same network and the
/// runtime, running what it read, matches candle (to 1e-5 in f32; as the
/// int8 `.tgm` export reports it in int8).
fn export_tflite_file(
    args: &ExportArgs,
    net: &Network,
    data: &[f32],
    train: &[f32],
) -> anyhow::Result<()> {
    use crate::import::{Imported, Int8Network, tflite, tflite_writer};
    use crate::nn::export::dense_layers;
    use crate::nn::quantize::quantize_with;

    let network = match args.quantize {
        None => Imported::F32(dense_layers(net, args.part)?),
        Some(Quantize::Int8) => {
            let calibration = calibration_rows(net, args.part, train, args.calibration_rows)?;
            let layers = dense_layers(net, args.part)?;
            let quantized = quantize_with(&layers, &calibration, quant_options(args))?;
            Imported::Int8(Int8Network::from(&quantized))
        }
    };
    let flat = tflite_writer::write(&network)?;
    let read = tflite::import(&flat).context("the written TFLite file does not read back")?;
    anyhow::ensure!(
        read == network,
        "the written TFLite file reads back as another network"
    );
    let file = read.encode(args.part.role())?;
    let check = match args.quantize {
        None => format!(
            "matches candle to {:.2e}",
            verify_tgm(net, args.part, &file, data, TOLERANCE)?
        ),
        Some(_) => {
            let (worst, mean) = error_against_f32(net, args.part, &file, data)?;
            anyhow::ensure!(
                worst.is_finite() && mean.is_finite(),
                "the int8 network's outputs are not finite; nothing written"
            );
            format!("against candle's f32: max abs error {worst:.4}, mean {mean:.5}")
        }
    };
    write_atomic(&args.out, &flat)?;
    let (inputs, outputs) = network.widths();
    println!(
        "wrote {} ({} bytes, TFLite {}): {inputs} -> {outputs}; read back by tinygen import, {check}",
        args.out.display(),
        flat.len(),
        if args.quantize.is_some() {
            "full-integer int8, float input and output"
        } else {
            "float32"
        },
    );
    Ok(())
}

/// What a run's export comes from, for the C header's comment.
fn run_source(args: &ExportArgs) -> String {
    let quantized = if args.quantize.is_some() { "int8 " } else { "" };
    format!(
        "the {quantized}{} of the run {}",
        format!("{:?}", args.part).to_lowercase(),
        args.run.display()
    )
}

fn export_runtime_file(args: &ExportArgs, net: &Network, data: &[f32]) -> anyhow::Result<()> {
    let latent = read_latent_mixture(&args.run)?;
    let bytes = export_tgm(net, args.part, latent.as_ref())?;
    let worst = verify_tgm(net, args.part, &bytes, data, TOLERANCE)?;
    write_model(args, &bytes, &run_source(args))?;
    let file = AlignedBytes::new(&bytes);
    let rt = RtNetwork::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "wrote {} ({} bytes): {} {} -> {}, {} layers, {} parameters, {} multiply-accumulates per call, \
         activation buffers 2 x {} floats ({} bytes), prior {}; matches candle to {worst:.2e}",
        args.out.display(),
        bytes.len(),
        match rt.kind() {
            ModelKind::Encoder => "encoder",
            _ => "decoder",
        },
        rt.input_dim(),
        rt.output_dim(),
        rt.layers().len(),
        rt.parameters(),
        rt.macs(),
        rt.hidden_width(),
        8 * rt.hidden_width(),
        rt.prior().prior().name(),
    );
    Ok(())
}

/// A diffusion run's model file, written only after the runtime's noise
/// predictions match candle's on 64 noisy rows at random timesteps.
fn export_diffusion_file(args: &ExportArgs, net: &Network) -> anyhow::Result<()> {
    use rand::{Rng, SeedableRng};
    use tinygen_runtime::Diffusion;

    anyhow::ensure!(
        args.part == Part::Decoder,
        "a diffusion model has no encoder: export it whole (--part decoder, the default)"
    );
    anyhow::ensure!(
        matches!(args.format, Format::Tgm | Format::C) && args.quantize.is_none(),
        "a diffusion model exports as an f32 .tgm file or C header (--format tgm or c)"
    );
    let bytes = crate::nn::diffusion::export(net)?;
    let file = AlignedBytes::new(&bytes);
    let model = Diffusion::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dim = model.dim();
    let steps = u32::from(model.spec().steps);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut draws = crate::nn::network::Draws::new(7);
    let x = draws.normal(64, dim)?;
    let ts: Vec<u32> = (0..64).map(|_| rng.random_range(1..=steps)).collect();
    let expected = net
        .predict_noise(&x, &ts)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let rows = x.flatten_all()?.to_vec1::<f32>()?;
    let width = model.predictor_width();
    let (mut a, mut b) = (vec![0f32; width], vec![0f32; width]);
    let mut got = vec![0f32; 64 * dim];
    for ((row, out), &t) in rows.chunks(dim).zip(got.chunks_mut(dim)).zip(&ts) {
        model
            .predict_noise(row, t, out, &mut a, &mut b)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let worst = check_close("the exported noise predictor", &got, &expected, TOLERANCE)?;
    write_model(args, &bytes, &run_source(args))?;
    let spec = model.spec();
    println!(
        "wrote {} ({} bytes): diffusion over {dim} values, {} training steps, predictor {} -> {dim}          ({} layers, {} parameters), {} multiply-accumulates per step, work buffer {} floats          ({} bytes); default sampler {} steps, eta {}; matches candle to {worst:.2e}",
        args.out.display(),
        bytes.len(),
        spec.steps,
        dim + model.embedding_dim(),
        model.predictor().layers().len(),
        model.predictor().parameters(),
        model.macs_per_step(),
        model.work_len(),
        4 * model.work_len(),
        spec.sampler.steps,
        spec.sampler.eta,
    );
    Ok(())
}

#[cfg(feature = "onnx")]
fn export_onnx_file(args: &ExportArgs, net: &Network, data: &[f32]) -> anyhow::Result<()> {
    use crate::nn::export::{dense_layers, reference_outputs};
    use crate::nn::onnx::{IR_VERSION, OPSET_VERSION, export_onnx, io_names, run_tract};

    let layers = dense_layers(net, args.part)?;
    let part = format!("{:?}", args.part).to_lowercase();
    let widths: Vec<String> = std::iter::once(layers[0].inputs)
        .chain(layers.iter().map(|l| l.outputs))
        .map(|w| w.to_string())
        .collect();
    // The latent prior, named as in the runtime file, goes into the doc
    // string so a user of the ONNX file knows what to feed the decoder.
    let latent = read_latent_mixture(&args.run)?;
    let tgm = AlignedBytes::new(&export_tgm(net, args.part, latent.as_ref())?);
    let rt = RtNetwork::from_bytes(tgm.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let prior = match args.part {
        Part::Decoder => format!("; latent prior {}", rt.prior().prior().name()),
        Part::Encoder => String::new(),
    };
    let doc = format!(
        "tinygen {} {part} {}{prior}",
        net.config.kind().name(),
        widths.join("-"),
    );
    let bytes = export_onnx(&layers, args.part, &doc)?;
    let (inputs, expected) = reference_outputs(net, args.part, data)?;
    let got = run_tract(&bytes, &inputs, layers[0].inputs)?;
    let worst = check_close(
        "the ONNX file run by tract-onnx",
        &got,
        &expected,
        TOLERANCE,
    )?;
    write_atomic(&args.out, &bytes)?;
    let (input, output) = io_names(args.part);
    println!(
        "wrote {} ({} bytes): ONNX IR {IR_VERSION}, opset {OPSET_VERSION}, {part} {input}[batch, {}] -> \
         {output}[batch, {}], {} layers; tract-onnx matches candle to {worst:.2e}",
        args.out.display(),
        bytes.len(),
        layers[0].inputs,
        layers[layers.len() - 1].outputs,
        layers.len(),
    );
    Ok(())
}

#[cfg(not(feature = "onnx"))]
fn export_onnx_file(_: &ExportArgs, _: &Network, _: &[f32]) -> anyhow::Result<()> {
    anyhow::bail!(
        "this tinygen was built without ONNX export; rebuild with the `onnx` feature \
         (cargo install --path trainer --features onnx, or cargo run -p tinygen --features onnx -- export ...)"
    )
}

/// Arguments of `tinygen decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Decoder (or encoder) model file.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output CSV (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Int8 in and out (int8 files only): the data holds the network's
    /// quantized input (integers in -128..=127, with the file's input scale
    /// and zero point, `tinygen info` shows them) and the output is the last
    /// int8 tensor, not dequantized.
    #[arg(long)]
    pub int8: bool,
}

fn write_rows(out: Option<&Path>, rows: &NetworkRows) -> anyhow::Result<()> {
    let prefix = if matches!(rows.kind, ModelKind::Encoder | ModelKind::EncoderInt8) {
        "z"
    } else {
        "x"
    };
    let mut csv = (0..rows.width)
        .map(|j| format!("{prefix}{j}"))
        .collect::<Vec<_>>()
        .join(",");
    csv.push('\n');
    for row in rows.values.chunks(rows.width) {
        let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    write_output(out, csv.as_bytes())
}

/// Runs `tinygen decode`: one output row per input row, as CSV with a header.
pub fn run_decode(args: &DecodeArgs) -> anyhow::Result<()> {
    let model = NetworkFile::read(&args.model)?;
    let data = args.data.load()?;
    let rows = if args.int8 {
        model.run_i8(&data, &args.data.data)?
    } else {
        model.run(&data, &args.data.data)?
    };
    write_rows(args.out.as_deref(), &rows)
}

/// Arguments of `tinygen sample`.
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// Decoder model file (with a latent prior) or diffusion model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Diffusion models: ancestral DDPM steps or deterministic DDIM steps
    /// (default: the file's sampler).
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,
    /// Diffusion models: denoising steps, 1 to the model's T (default: T
    /// for ddpm, the file's for ddim).
    #[arg(long)]
    pub steps: Option<u16>,
    /// Number of samples.
    #[arg(short, default_value_t = 64)]
    pub n: usize,
    /// Seed of the device's generator (Xoshiro128++), as on the board.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output: a PNG grid of images (.png), or CSV rows otherwise.
    #[arg(long)]
    pub out: PathBuf,
}

/// A diffusion model's sampler on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerKind {
    /// Ancestral sampling (eta 1, DDPM's posterior variance).
    Ddpm,
    /// Deterministic DDIM (eta 0).
    Ddim,
}

/// The sampler `tinygen sample` asks for: `kind` and `steps` over the
/// defaults of the diffusion model file `model` (none when neither is
/// given).
fn sampler(args: &SampleArgs) -> anyhow::Result<Option<Sampler>> {
    if args.sampler.is_none() && args.steps.is_none() {
        return Ok(None);
    }
    let file = AlignedBytes::read(&args.model)?;
    let Ok(model) = Diffusion::from_bytes(file.as_bytes()) else {
        anyhow::bail!(
            "--sampler and --steps apply to diffusion models; {} is not one",
            args.model.display()
        );
    };
    let spec = model.spec();
    let sampler = match args.sampler {
        Some(SamplerKind::Ddpm) => Sampler::ddpm(args.steps.unwrap_or(spec.steps)),
        Some(SamplerKind::Ddim) => Sampler::ddim(args.steps.unwrap_or(spec.sampler.steps)),
        None => Sampler {
            steps: args.steps.unwrap_or(spec.sampler.steps),
            ..spec.sampler
        },
    };
    anyhow::ensure!(
        sampler.steps >= 1 && sampler.steps <= spec.steps,
        "--steps must lie in 1..={} (the model's training steps)",
        spec.steps
    );
    Ok(Some(sampler))
}

/// Runs `tinygen sample`: draws from the prior and decodes with the runtime
/// crate (or samples a diffusion model), the same draws a board seeded
/// alike makes.
pub fn run_sample(args: &SampleArgs) -> anyhow::Result<()> {
    let samples = host::sample_file(&args.model, args.n, args.seed, sampler(args)?)?;
    let is_png = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        square_image_grid(&args.out, &samples.values, samples.width)?;
        println!("wrote {} samples to {}", args.n, args.out.display());
        Ok(())
    } else {
        write_rows(Some(&args.out), &samples)
    }
}
