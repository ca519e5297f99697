//! `tinygen import`: a TensorFlow Lite network as a runtime model file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tinygen_runtime::AnyModel;

use crate::host::AlignedBytes;
use crate::import::{Imported, tflite};
use crate::io::write_atomic;
use crate::nn::export::Part;

/// Arguments of `tinygen import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The network: a TFLite flatbuffer (.tflite), float or full-integer
    /// int8, as TensorFlow's converter writes it.
    pub model: PathBuf,
    /// Output model file (.tgm).
    #[arg(long)]
    pub out: PathBuf,
    /// The kind to write: a decoder (`decode`, and `sample` needs a prior,
    /// which an imported network has none of) or an encoder.
    #[arg(long, value_enum, default_value_t = Part::Decoder)]
    pub part: Part,
}

/// Runs `tinygen import`.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    anyhow::ensure!(
        tflite::is_tflite(&bytes),
        "{}: not a TFLite file (no TFL3 identifier)",
        args.model.display()
    );
    let imported = tflite::import(&bytes).with_context(|| format!("{}", args.model.display()))?;
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
            net.layers.len(),
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
