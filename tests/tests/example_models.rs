//! The example models in `models/` still give their committed outputs: each
//! directory's `model.tgm` parses with today's runtime and, run on its
//! `inputs.csv`, writes exactly the committed `expected.csv` (and, for
//! decoders, `samples.csv`), byte for byte. A format change that forgets to
//! regenerate them (`cargo xtask models`) fails here, not on a user's board.

use std::path::Path;

#[test]
fn example_models_give_their_committed_outputs() {
    let models = xtask::root().join("models");
    let out = xtask::target_dir().join("example-models-check");
    std::fs::remove_dir_all(&out).ok();
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&models).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("model.tgm").is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let model = std::fs::read(dir.join("model.tgm")).unwrap();
        let inputs = read_values(&dir.join("inputs.csv"));
        let fresh = out.join(&name);
        xtask::write_case(&fresh, &model, &inputs)
            .unwrap_or_else(|e| panic!("models/{name}: {e:#}"));
        for file in ["expected.csv", "samples.csv"] {
            let committed = dir.join(file);
            if committed.exists() || fresh.join(file).exists() {
                assert_eq!(
                    std::fs::read_to_string(fresh.join(file)).ok(),
                    std::fs::read_to_string(&committed).ok(),
                    "models/{name}/{file} differs from what the runtime computes \
                     (regenerate with cargo xtask models)"
                );
            }
        }
        checked.push(name);
    }
    checked.sort();
    for name in ["cardio-gmm", "mnist-vae-decoder", "mnist-vae-int8-decoder"] {
        assert!(
            checked.iter().any(|c| c == name),
            "{name} not checked: {checked:?}"
        );
    }
}

/// Every value of a headerless CSV of numbers, row after row.
fn read_values(path: &Path) -> Vec<f32> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .flat_map(|line| line.split(','))
        .map(|v| v.trim().parse::<f32>().unwrap())
        .collect()
}
