//! The C API (capi/) from outside: its static library for the host and
//! every core defines every function `tinygen.h` declares and has no
//! reachable panic; a C program on the host gets an error code for every
//! misuse; and the C firmware's case runner, built for the host by the
//! CMake example, gives the Rust runtime's outputs bit for bit.
//!
//! Needs gcc (and cmake for the CMake build); the microcontroller targets
//! are checked where rustup has them, and must be with
//! TINYGEN_REQUIRE_QEMU=1 (CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use tinygen::c_source::model_header;

/// The symbol the library's panic handler calls: it is never defined, so
/// the LTO'd library references it only if a panic is reachable.
const PANIC_MARKER: &str = "tinygen_capi_has_a_reachable_panic";

/// The functions `tinygen.h` declares.
fn declared_functions() -> Vec<String> {
    let header = std::fs::read_to_string(xtask::root().join("capi/include/tinygen.h")).unwrap();
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
        .filter_map(|l| {
            let name = l.split('(').next()?.rsplit([' ', '*']).next()?;
            (name.starts_with("tg_") && l.contains('(')).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn require(missing: &str) {
    assert!(
        std::env::var_os("TINYGEN_REQUIRE_QEMU").is_none_or(|v| v != "1"),
        "TINYGEN_REQUIRE_QEMU=1 but {missing}"
    );
    eprintln!("SKIPPED: {missing}");
}

#[test]
fn the_library_defines_every_function_and_has_no_reachable_panic_on_every_target() {
    let functions = declared_functions();
    assert!(functions.len() >= 15, "{functions:?}");
    for name in [
        "tg_model_open",
        "tg_strerror",
        "tg_log_density",
        "tg_decode",
    ] {
        assert!(
            functions.iter().any(|f| f == name),
            "{name} missing from tinygen.h"
        );
    }
    let mut targets = vec![None];
    if let Some(missing) = xtask::qemu_missing() {
        require(&format!("the microcontroller targets: {missing}"));
    } else {
        targets.extend(xtask::Core::ALL.map(|c| Some(c.target())));
    }
    let nm = xtask::llvm_tool("llvm-nm").unwrap();
    for target in targets {
        let lib = xtask::build_capi(target).unwrap();
        let out = Command::new(&nm).arg(&lib).output().unwrap();
        assert!(out.status.success());
        let symbols = String::from_utf8_lossy(&out.stdout);
        let target = target.unwrap_or("the host");
        assert!(
            !symbols.contains(PANIC_MARKER),
            "a panic is reachable in the C API built for {target}"
        );
        for f in &functions {
            assert!(
                symbols.lines().any(|l| l.ends_with(&format!(" T {f}"))),
                "{f} is not defined in the library built for {target}"
            );
        }
        println!(
            "{target}: {} ({} bytes), {} functions, no panic path",
            lib.display(),
            std::fs::metadata(&lib).unwrap().len(),
            functions.len()
        );
    }
}

/// The runtime's golden model files (one of each kind).
fn golden(name: &str) -> Vec<u8> {
    std::fs::read(xtask::root().join(format!("runtime/tests/golden/{name}.tgm"))).unwrap()
}

const GOLDEN: [&str; 8] = [
    "gmm",
    "kde",
    "detector",
    "detector_int8",
    "decoder",
    "encoder",
    "decoder_int8",
    "encoder_int8",
];

fn work_dir(name: &str) -> PathBuf {
    let dir = xtask::target_dir().join(name);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(program: &Path) -> String {
    let out = Command::new(program).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn misuse_from_c_is_an_error_code() {
    let lib = xtask::build_capi(None).unwrap();
    let dir = work_dir("capi-host-checks");
    // The models as `tinygen export --format c` writes them.
    for name in GOLDEN.iter().chain(&["recipe"]) {
        let header = model_header(name, &golden(name), &format!("{name}.tgm")).unwrap();
        std::fs::write(dir.join(format!("{name}.h")), header).unwrap();
    }
    let program = dir.join("host_checks");
    let status = Command::new("gcc")
        .args([
            "-std=c11",
            "-pedantic",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O1",
            "-g",
        ])
        .arg("-I")
        .arg(xtask::root().join("capi/include"))
        .arg("-I")
        .arg(&dir)
        .arg(xtask::root().join("capi/tests/c/host_checks.c"))
        .arg(&lib)
        .args(["-lm", "-o"])
        .arg(&program)
        .status()
        .unwrap();
    assert!(status.success(), "host_checks.c did not build");
    let stdout = run(&program);
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}

#[test]
fn the_c_case_runner_on_the_host_gives_the_runtimes_outputs() {
    if !xtask::has_program("cmake") {
        require("cmake is not installed (apt-get install cmake)");
        return;
    }
    let dir = work_dir("capi-host-cases");
    let cases = dir.join("cases");
    let mut expected = Vec::new();
    for name in GOLDEN {
        let bytes = golden(name);
        let file = tinygen::host::AlignedBytes::new(&bytes);
        let model = tinygen_runtime::AnyModel::from_bytes(file.as_bytes()).unwrap();
        let (d, o) = (model.input_len(), model.output_len());
        let rows = 16;
        let points: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 29 % 17) as f32 - 8.0) / 5.0)
            .collect();
        xtask::write_case(&cases.join(name), &bytes, &points).unwrap();
        let values = rows * o;
        expected.push(format!(
            "case {name}: {values} values, {values} bit-exact, 0 mismatches"
        ));
        if matches!(name, "decoder" | "decoder_int8") {
            expected.push(format!(
                "case {name}: 2 samples from the prior, 0 values differ from the host"
            ));
        }
    }
    let source = dir.join("cases.c");
    xtask::write_c_cases(&cases, &source).unwrap();
    let build = dir.join("build");
    let example = xtask::root().join("capi/examples/cmake");
    let status = Command::new("cmake")
        .arg("-S")
        .arg(&example)
        .arg("-B")
        .arg(&build)
        .arg("-DTINYGEN_CORE=host")
        .arg(format!("-DTINYGEN_CASES={}", source.display()))
        .arg(format!(
            "-DTINYGEN_CARGO_TARGET_DIR={}",
            xtask::target_dir().join("capi").display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "cmake could not configure the example");
    let status = Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .status()
        .unwrap();
    assert!(status.success(), "the example did not build for the host");
    let stdout = run(&build.join("tinygen_cases"));
    for line in expected {
        assert!(stdout.contains(&line), "missing {line:?}:\n{stdout}");
    }
    assert!(stdout.contains("c firmware: all checks passed"), "{stdout}");
}
