//! Helpers shared by the cross-crate tests in `tests/`.

use std::path::PathBuf;

use serde_json::Value;

/// The JSON fixtures of a directory, sorted by path: `$env_var` when it is
/// set (CI points it at freshly generated fixtures), otherwise the committed
/// `tests/fixtures/<committed>`. Fails unless at least `min` are found.
pub fn json_fixtures(env_var: &str, committed: &str, min: usize) -> Vec<(String, Value)> {
    let dir = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(committed)
        });
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures in {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.display().to_string(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= min,
        "expected at least {min} fixtures in {}",
        dir.display()
    );
    out
}
