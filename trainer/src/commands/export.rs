//! `tinygen export`, `tinygen decode` and `tinygen sample`: deploy a run's
//! decoder (or encoder) and run it with the runtime crate.

use std::path::{Path, PathBuf};

use clap::Args;
use tinygen_runtime::qnetwork::QNetwork;
use tinygen_runtime::{ModelKind, Network as RtNetwork};

use super::DataArgs;
use crate::data::images::Split;
use crate::host::{self, AlignedBytes, NetworkFile, NetworkRows};
use crate::io::{write_atomic, write_output};
use crate::nn::export::{
    Part, calibration_rows, error_against_f32, export_int8, export_tgm, read_latent_mixture,
    verify_tgm,
};
use crate::nn::fit::DataSource;
use crate::nn::network::Network;
use crate::nn::plots::square_image_grid;
use crate::nn::run::load_run;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The runtime's model file.
    Tgm,
    /// An ONNX graph (IR 8, opset 13); needs the `onnx` cargo feature.
    Onnx,
}

/// Arguments of `tinygen export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Run folder written by `tinygen fit pca|ae|vae|swae`.
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
    /// the run's training data); `.tgm` only.
    #[arg(long, value_enum)]
    pub quantize: Option<Quantize>,
    /// Training rows the int8 activation ranges are measured on (the first
    /// rows of the run's training data).
    #[arg(long, default_value_t = 1000, requires = "quantize")]
    pub calibration_rows: usize,
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
    let (config, net, _) = load_run(&args.run)?;
    let data = match args.part {
        Part::Decoder => Vec::new(),
        Part::Encoder => DataSource::of_run(&config).load_split(Split::Test)?.x,
    };
    match (args.format, args.quantize) {
        (Format::Tgm, None) => export_runtime_file(args, &net, &data),
        (Format::Tgm, Some(Quantize::Int8)) => {
            let train = DataSource::of_run(&config).load_split(Split::Train)?.x;
            export_int8_file(args, &net, &data, &train)
        }
        (Format::Onnx, None) => export_onnx_file(args, &net, &data),
        (Format::Onnx, Some(_)) => {
            anyhow::bail!("--quantize writes .tgm files only (--format tgm)")
        }
    }
}

fn export_int8_file(
    args: &ExportArgs,
    net: &Network,
    data: &[f32],
    train: &[f32],
) -> anyhow::Result<()> {
    let latent = read_latent_mixture(&args.run)?;
    let calibration = calibration_rows(net, args.part, train, args.calibration_rows)?;
    let (bytes, quantized) = export_int8(net, args.part, latent.as_ref(), &calibration)?;
    let (worst, mean) = error_against_f32(net, args.part, &bytes, data)?;
    if !(worst.is_finite() && mean.is_finite()) {
        anyhow::bail!("the int8 network's outputs are not finite; nothing written");
    }
    write_atomic(&args.out, &bytes)?;
    let f32_bytes = export_tgm(net, args.part, latent.as_ref())?.len();
    let file = AlignedBytes::new(&bytes);
    let rt = QNetwork::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let calibrated = match args.part {
        Part::Decoder => format!(
            "{} latent codes of training rows and as many prior draws",
            quantized.calibration_rows / 2
        ),
        Part::Encoder => format!("{} training rows", quantized.calibration_rows),
    };
    println!(
        "wrote {} ({} bytes, {:.1}x smaller than f32's {f32_bytes}): int8 {} {} -> {}, {} layers, \
         {} multiply-accumulates per call, activation buffers 2 x {} bytes; ranges calibrated \
         (min/max) on {calibrated}; against candle's f32 on the check inputs: max abs error \
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
    );
    Ok(())
}

fn export_runtime_file(args: &ExportArgs, net: &Network, data: &[f32]) -> anyhow::Result<()> {
    let latent = read_latent_mixture(&args.run)?;
    let bytes = export_tgm(net, args.part, latent.as_ref())?;
    let worst = verify_tgm(net, args.part, &bytes, data, TOLERANCE)?;
    write_atomic(&args.out, &bytes)?;
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

#[cfg(feature = "onnx")]
fn export_onnx_file(args: &ExportArgs, net: &Network, data: &[f32]) -> anyhow::Result<()> {
    use crate::nn::export::{check_close, dense_layers, reference_outputs};
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
    /// Decoder model file (with a latent prior).
    #[arg(long)]
    pub model: PathBuf,
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

/// Runs `tinygen sample`: draws from the prior and decodes with the runtime
/// crate, the same draws a board seeded alike makes.
pub fn run_sample(args: &SampleArgs) -> anyhow::Result<()> {
    let samples = host::sample_file(&args.model, args.n, args.seed)?;
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
