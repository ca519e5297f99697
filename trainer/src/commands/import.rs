//! `tinygen import`: a TensorFlow Lite or ONNX network as a runtime model file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tinygen_runtime::AnyModel;

use super::export::Quantize;
use crate::host::AlignedBytes;
use crate::import::{Imported, Int8Network, tflite};
use crate::io::write_atomic;
use crate::nn::export::Part;
use crate::nn::quantize::{QuantOptions, quantize_with};

/// Arguments of `tinygen import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The network: a TFLite flatbuffer (.tflite), float or full-integer
    /// int8, as TensorFlow's converter writes it; or an ONNX MLP (.onnx) as
    /// `torch.onnx.export` writes it (needs the `onnx` cargo feature).
    pub model: PathBuf,
    /// Output model file (.tgm).
    #[arg(long)]
    pub out: PathBuf,
    /// The kind to write: a decoder (`decode`; `sample` needs a prior,
    /// which an imported network has none of) or an encoder.
    #[arg(long, value_enum, default_value_t = Part::Decoder)]
    pub part: Part,
    /// Quantize a float network to int8 (TensorFlow Lite's scheme, as
    /// `tinygen export --quantize int8`), calibrated on `--calibration`.
    #[arg(long, value_enum, requires = "calibration")]
    pub quantize: Option<Quantize>,
    /// CSV of input rows (no header) the int8 activation ranges are
    /// measured on (min/max).
    #[arg(long, requires = "quantize")]
    pub calibration: Option<PathBuf>,
    /// One int8 weight scale per layer instead of one per output.
    #[arg(long, requires = "quantize")]
    pub per_tensor: bool,
    /// The last sigmoid or tanh in f32 on the int8 pre-activation.
    #[arg(long, requires = "quantize")]
    pub f32_output: bool,
}

/// Reads the network in `path`, TFLite or ONNX by its content.
fn read(path: &Path) -> anyhow::Result<Imported> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if tflite::is_tflite(&bytes) {
        return tflite::import(&bytes);
    }
    #[cfg(feature = "onnx")]
    if crate::import::onnx::is_onnx(&bytes) {
        return crate::import::onnx::import(path);
    }
    let onnx = if cfg!(feature = "onnx") {
        "an ONNX model"
    } else {
        "ONNX (with the `onnx` cargo feature)"
    };
    anyhow::bail!("not a TFLite file (no TFL3 identifier) or {onnx}")
}

/// Runs `tinygen import`.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let mut imported = read(&args.model).with_context(|| args.model.display().to_string())?;
    if let (Some(Quantize::Int8), Some(calibration)) = (args.quantize, &args.calibration) {
        let Imported::F32(layers) = &imported else {
            anyhow::bail!("the network is int8 already; --quantize takes a float one");
        };
        let rows = crate::data::load(calibration, &Default::default())
            .with_context(|| format!("calibration rows {}", calibration.display()))?;
        let width = layers.first().map_or(0, |l| l.inputs);
        anyhow::ensure!(
            rows.cols == width,
            "calibration rows of {} values for a network of {width} inputs",
            rows.cols
        );
        let rows: Vec<f32> = rows.values.iter().map(|&v| v as f32).collect();
        let options = QuantOptions::from_flags(args.per_tensor, args.f32_output);
        let quantized = quantize_with(layers, &rows, options)?;
        imported = Imported::Int8(Int8Network::from(&quantized));
    }
    let file = imported.encode(args.part.role())?;
    let check = AlignedBytes::new(&file);
    let model = AnyModel::from_bytes(check.as_bytes())
        .map_err(|e| anyhow::anyhow!("the written file does not parse: {e}"))?;
    write_atomic(&args.out, &file)?;
    let (inputs, outputs) = imported.widths();
    let what = match &imported {
        Imported::F32(layers) => format!("f32, {} layers", layers.len()),
        Imported::Int8(net) => format!(
            "int8 (TFLite's arithmetic), {} layers, {} input and {} output",
            net.network.layers.len(),
            if net.float_input { "float" } else { "int8" },
            if net.float_output { "float" } else { "int8" },
        ),
    };
    println!(
        "wrote {} ({} bytes, {}): {inputs} -> {outputs}, {what}, {} multiply-accumulates per call",
        args.out.display(),
        file.len(),
        model.header().kind,
        model.macs()
    );
    Ok(())
}
