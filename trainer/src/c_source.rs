//! Model files as C source: a 4-byte aligned `const uint8_t` array that C
//! firmware compiles in (into flash) and opens with the C API's
//! `tg_model_open` (a recipe: starts a learner with `tg_learner_start`),
//! so that C users need no `include_bytes` or linker tricks. `tinygen
//! export --format c` writes [`model_header`]; the C firmware's test cases
//! use [`model_array`].

use std::fmt::Write as _;

use anyhow::{Context, anyhow, ensure};
use tinygen_runtime::AnyModel;
use tinygen_runtime::format::{ModelKind, read_header};
use tinygen_runtime::learn::Recipe;

use crate::host::AlignedBytes;

/// Defines `TINYGEN_MODEL_ATTRIBUTES` (once) and its use: 4-byte alignment
/// and no unused-variable warning with GCC and Clang; other compilers get
/// no attribute unless they define it (an unaligned array is then
/// `TG_ERR_MISALIGNED`, never a crash).
const ATTRIBUTES: &str = "\
#ifndef TINYGEN_MODEL_ATTRIBUTES
#if defined(__GNUC__) || defined(__clang__)
#define TINYGEN_MODEL_ATTRIBUTES __attribute__((aligned(4), unused))
#else
#define TINYGEN_MODEL_ATTRIBUTES /* define it to align the array to 4 bytes */
#endif
#endif
";

/// Whether `name` is a C identifier (ASCII letters, digits and `_`, not
/// starting with a digit).
pub fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A C identifier made from a file name: every other character becomes
/// `_`, and a leading digit gets a `_` before it.
pub fn c_identifier(stem: &str) -> String {
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// `static const uint8_t NAME[LEN] TINYGEN_MODEL_ATTRIBUTES = { ... };`
/// with the attribute's definition before it, 12 bytes a line.
pub fn model_array(name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    ensure!(is_c_identifier(name), "{name:?} is not a C identifier");
    let mut out = String::from(ATTRIBUTES);
    let _ = writeln!(
        out,
        "static const uint8_t {name}[{}] TINYGEN_MODEL_ATTRIBUTES = {{",
        bytes.len()
    );
    for line in bytes.chunks(12) {
        let values: Vec<String> = line.iter().map(|b| format!("0x{b:02x}")).collect();
        let _ = writeln!(out, "    {},", values.join(", "));
    }
    out.push_str("};\n");
    Ok(out)
}

/// A model's summary for a comment: kind, sizes, dimensions, cost and
/// what the C API needs (checked by the runtime, as `tinygen info` does).
pub fn summary(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let file = AlignedBytes::new(bytes);
    if let Ok(recipe) = Recipe::from_bytes(file.as_bytes()) {
        return recipe_summary(&recipe, bytes.len());
    }
    let model = AnyModel::from_bytes(file.as_bytes()).map_err(|e| anyhow!("model: {e}"))?;
    let header = model.header();
    let mut lines = vec![
        format!(
            "kind {}, format v{} (schema {:#010x}), crc32 {:#010x}",
            header.kind, header.version, header.schema, header.crc
        ),
        format!(
            "{} bytes; {} input values -> {} output value(s) per call, {} multiply-accumulates",
            bytes.len(),
            model.input_len(),
            model.output_len(),
            model.macs()
        ),
    ];
    let calls = match model {
        AnyModel::Density(_) => "tg_log_density".to_string(),
        AnyModel::Detector(d) => format!(
            "tg_detector_score, tg_detector_is_anomaly (threshold {}), tg_log_density",
            crate::commands::Readable(d.threshold())
        ),
        AnyModel::Network(n) => {
            let scratch = model.scratch_bytes();
            format!(
                "tg_decode{} with {scratch} bytes of scratch (tg_scratch_size)",
                if n.prior().prior().name() == "none" {
                    String::new()
                } else {
                    format!(", tg_sample (prior {})", n.prior().prior().name())
                }
            )
        }
        AnyModel::QNetwork(n) => {
            let scratch = model.scratch_bytes();
            format!(
                "tg_decode, tg_decode_i8{} with {scratch} bytes of scratch (tg_scratch_size)",
                if n.prior().prior().name() == "none" {
                    String::new()
                } else {
                    format!(", tg_sample (prior {})", n.prior().prior().name())
                }
            )
        }
        AnyModel::Diffusion(_) => format!(
            "tg_sample (the file's sampler), tg_diffusion_sample, tg_decode (one noise \
             prediction) with {} bytes of scratch (tg_scratch_size)",
            model.scratch_bytes()
        ),
    };
    lines.push(format!("C API: {calls}"));
    Ok(lines)
}

/// A recipe's summary: what it learns and the buffers its learner needs.
fn recipe_summary(recipe: &Recipe, len: usize) -> anyhow::Result<Vec<String>> {
    let spec = recipe.spec();
    let header = recipe.header();
    let state = spec.state_len().context("recipe state length")?;
    let features = spec.features_len().context("recipe features length")?;
    let scores = spec.scores_len().context("recipe scores length")?;
    let densities = if spec.second_reg_covar.is_some() {
        "a pair of densities"
    } else {
        "one density"
    };
    Ok(vec![
        format!(
            "kind {}, format v{} (schema {:#010x}), crc32 {:#010x}",
            header.kind, header.version, header.schema, header.crc
        ),
        format!(
            "{len} bytes; learns a detector ({densities}) of {} input values from the first {} \
             inputs, its threshold at alarm rate {} from the next {}",
            spec.input_len(),
            spec.learn,
            spec.alarm_rate,
            spec.calibrate
        ),
        format!(
            "C API: tg_learner_sizes, tg_learner_start (buffers: {state} doubles of state, \
             {features} floats of features, {scores} floats of scores, {} bytes of file), \
             tg_learner_observe, tg_learner_file",
            spec.detector_len().map_err(|e| anyhow!("recipe: {e}"))?
        ),
    ])
}

/// A whole `.h` file holding a model: a comment with its [`summary`], an
/// include guard, `<stdint.h>`, the [`model_array`] `name` and
/// `name_LEN`. The model is checked by the runtime first.
pub fn model_header(name: &str, bytes: &[u8], source: &str) -> anyhow::Result<String> {
    let summary = summary(bytes)?;
    let array = model_array(name, bytes)?;
    let guard = format!("{}_H", name.to_ascii_uppercase());
    let mut out = format!(
        "/*\n * {name}: a tinygen model file as a C array, written by `tinygen export --format c`\n * from {source}.\n *\n"
    );
    for line in summary {
        let _ = writeln!(out, " * {line}");
    }
    // A recipe starts a learner; every other kind opens as a model.
    let usage = if read_header(bytes).is_ok_and(|h| h.kind == ModelKind::Recipe) {
        format!(
            "tg_learner_memory need;\n *   tg_status s = tg_learner_sizes({name}, {name}_LEN, &need);\n \
             *   then tg_learner_start(&learner, {name}, {name}_LEN, ...) with buffers of those sizes"
        )
    } else {
        format!("tg_model m;\n *   tg_status s = tg_model_open(&m, {name}, {name}_LEN);")
    };
    let _ = write!(
        out,
        " *\n * Use with the C API (tinygen.h):\n *   {usage}\n */\n\
         #ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n{array}\n\
         #define {name}_LEN {}u\n\n#endif /* {guard} */\n",
        bytes.len()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_c_identifier("model_1"));
        assert!(is_c_identifier("_x"));
        assert!(!is_c_identifier("1x"));
        assert!(!is_c_identifier("a-b"));
        assert!(!is_c_identifier(""));
        assert_eq!(c_identifier("mnist-vae.decoder"), "mnist_vae_decoder");
        assert_eq!(c_identifier("2d"), "_2d");
    }

    #[test]
    fn the_array_holds_every_byte_in_order() {
        let bytes: Vec<u8> = (0..=255u8).chain([7, 0]).collect();
        let text = model_array("m", &bytes).unwrap();
        let body = text.split_once("= {").unwrap().1;
        let parsed: Vec<u8> = body
            .split(|c: char| c == ',' || c.is_whitespace() || c == '}' || c == ';')
            .filter(|t| !t.is_empty())
            .map(|t| u8::from_str_radix(t.trim_start_matches("0x"), 16).unwrap())
            .collect();
        assert_eq!(parsed, bytes);
        assert!(text.contains("static const uint8_t m[258] TINYGEN_MODEL_ATTRIBUTES"));
        assert!(model_array("not valid", &bytes).is_err());
    }

    #[test]
    fn a_recipe_header_names_the_learner_calls_and_its_buffers() {
        let recipe = include_bytes!("../../runtime/tests/golden/recipe.tgm");
        let header = model_header("recipe", recipe, "recipe.tgm").unwrap();
        // The golden recipe: 2 diag components over 8 window statistics
        // and the same with another regularisation, learning from 64
        // windows of 4 x 2 and calibrating on 16: 3 D + 2 K (2 + D + D)
        // + K (1 + D + D) doubles of state, 3 x 16 floats of scores.
        assert!(header.contains(
            "learns a detector (a pair of densities) of 8 input values from the first 64 inputs"
        ));
        assert!(header.contains(
            "tg_learner_start (buffers: 130 doubles of state, 512 floats of features, \
             48 floats of scores, 460 bytes of file)"
        ));
        assert!(header.contains("#define recipe_LEN 60u"));
        assert!(header.contains("tg_learner_sizes(recipe, recipe_LEN, &need);"));
        assert!(!header.contains("tg_model_open"));
        assert!(summary(&recipe[..40]).is_err());
    }
}
