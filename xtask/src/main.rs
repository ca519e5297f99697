//! `cargo xtask <task>`: the steps plain cargo can't express.
//!
//! * `demo`   fit a mixture and a stream detector on bundled data, inspect
//!   and score with them, train a VAE on the bundled digits and export its
//!   decoder, and check all of it on the five emulated cores (the device
//!   also samples digits and prints one): the main job, end to end.
//! * `test`   every test: the workspace's tests (QEMU parity on every core
//!   included) and a no_std build of the runtime for each core's target.
//! * `qemu [CASES_DIR] [--core CORE..] [--count]`  build the firmware with
//!   the cases in CASES_DIR (default `models/`) and run it under QEMU on
//!   each core (default the Cortex-M4F; `--core m0,m3,m4f,m33,rv32` for
//!   every core); with `--count`, the exact instructions of each case's call.
//! * `bench-mcu`  exact instructions per call (mixtures, KDE, detectors,
//!   decoder) on the Cortex-M4F and on every other core, and firmware size.
//! * `bench-host [--scaling]` EM time per iteration and scoring throughput
//!   against scikit-learn on the same data, in one run; with `--scaling`,
//!   EM's time and memory over N, D and K (from a release build, as
//!   `bench-decode`).
//! * `bench-anomaly [--suite odds|dev|fresh|pmlb|categorical] [--part
//!   choice|confirmation|all] [--neural] [--m4f] [--on-device]` mean ROC-AUC of tinygen's
//!   detectors over the 17 ODDS sets with PyOD's splits against the
//!   published table, or over the development suite of `data/anomaly-dev/`
//!   (or the held-out suites of `data/anomaly-fresh/`, `data/anomaly-pmlb/`
//!   and `data/anomaly-categorical/`) in both protocols against scikit-learn
//!   (needs ../shared or TINYGEN_SHARED); with `--m4f` instead each set's
//!   default detector scored on the Cortex-M4F, instructions per score;
//!   with `--on-device` the detectors a device learns itself (novelty).
//! * `bench-decode` host latency of decodes (batch 1 and 64): the
//!   runtime crate and its host fast path against tract-onnx and candle
//!   (f32) and the LiteRT interpreter (int8, each fast-path kernel the CPU
//!   runs) on the same weights, in one run, from a release build.
//! * `bench-arm` exact instructions of the host's decodes on an Arm
//!   (aarch64) host under QEMU's user mode: the runtime and the fast path's
//!   kernels, SDOT among them (needs gcc-aarch64-linux-gnu and qemu-user).
//! * `bench-neural [--quality]` VAE training steps per second against
//!   PyTorch on the same MNIST batches and threads, in one run; with
//!   `--quality` also the 10-epoch MNIST VAE and the ring-prior SWAE
//!   (needs MNIST in data/mnist or ../shared, and torch for the python in
//!   TINYGEN_TORCH_PYTHON).
//! * `models` regenerate the example models in `models/`.
//! * `c-cases DIR --out FILE`  write the C firmware's cases source for the
//!   case directories in DIR.
//! * `c-firmware [CASES_DIR] [--core m4f,m0]`  build the C firmware
//!   (capi/examples/cmake, through CMake) with the cases, run it under QEMU,
//!   and print its flash beside the Rust firmware's for the same cases.

mod alloc;
mod bench_anomaly;
mod bench_arm;
mod bench_decode;
mod bench_host;
mod bench_mcu;
mod bench_neural;
mod c_firmware;
mod demo;
mod models;
mod process;
mod qemu;
mod test_all;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// tinygen's build, test and benchmark tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Fit, score, detect, train a VAE, and check it all on five emulated cores.
    Demo,
    /// Every test, including the QEMU firmware parity test.
    Test,
    /// Build the firmware with the cases in a directory and run it under QEMU.
    Qemu {
        /// Directory of cases (model.tgm, inputs.csv, expected.csv each); default `models/`.
        cases: Option<PathBuf>,
        /// Cores to run on (repeat, or comma-separated); default m4f.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "m4f")]
        core: Vec<xtask::Core>,
        /// Also count the exact instructions of each case's first call (QEMU plugin).
        #[arg(long)]
        count: bool,
    },
    /// Exact instructions per call on every emulated core, and firmware size.
    BenchMcu,
    /// EM and scoring speed against scikit-learn, in one run.
    BenchHost {
        /// Instead: EM time per iteration and peak memory over N, D and K.
        #[arg(long)]
        scaling: bool,
    },
    /// Mean ROC-AUC of the detectors on the 17 ODDS sets or the development suite.
    BenchAnomaly {
        /// odds: the 17 ODDS sets against the published table; dev: the
        /// sets of data/anomaly-dev, both protocols, against scikit-learn;
        /// fresh, pmlb, categorical: the same for the held-out sets of
        /// data/anomaly-fresh, data/anomaly-pmlb and data/anomaly-categorical.
        #[arg(long, value_enum, default_value = "odds")]
        suite: bench_anomaly::Suite,
        /// dev: which part of the suite.
        #[arg(long, value_enum, default_value = "all")]
        part: bench_anomaly::Part,
        /// odds: also the default detector with autoencoder scores (f32 and int8; about 30 minutes).
        #[arg(long)]
        neural: bool,
        /// Instead of the ROC-AUC tables: each set's default detector file
        /// (the split where a score costs most) scored on the Cortex-M4F
        /// under QEMU, exact instructions per score.
        #[arg(long)]
        m4f: bool,
        /// Instead of the ROC-AUC tables: the detectors a device learns
        /// itself from a recipe (K = 1 and 4, alone and as the pair), in
        /// the novelty protocol, on sets of at most 64 features.
        #[arg(long, conflicts_with = "m4f")]
        on_device: bool,
    },
    /// Host decode latency at batch 1 and 64: runtime and fast path against
    /// tract, candle and LiteRT (from a release build).
    BenchDecode,
    /// Exact instructions of the host's decodes on an Arm (aarch64) host,
    /// under QEMU's user mode.
    BenchArm,
    /// VAE training steps per second against PyTorch.
    BenchNeural {
        /// Also train the 10-epoch MNIST VAE and the ring-prior SWAE.
        #[arg(long)]
        quality: bool,
    },
    /// Regenerate the example models in `models/`.
    Models {
        /// Only this one: cardio-gmm, mnist-vae-decoder (with its int8
        /// sibling) or mnist-classifier.
        #[arg(long)]
        only: Option<String>,
    },
    /// Write the C firmware's cases source for a directory of cases.
    CCases {
        /// Directory of cases (model.tgm, inputs.csv, expected.csv each).
        cases: PathBuf,
        /// The C source to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build the C firmware with the cases in a directory, run it under
    /// QEMU, and compare its flash with the Rust firmware's.
    CFirmware {
        /// Directory of cases; default `models/`.
        cases: Option<PathBuf>,
        /// Cores to run on: m4f, m0 (comma-separated); default both.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "m4f,m0")]
        core: Vec<xtask::Core>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Demo => demo::demo(),
        Task::Test => test_all::test(),
        Task::Qemu { cases, core, count } => {
            let cases = cases.unwrap_or_else(|| xtask::root().join("models"));
            if count {
                bench_mcu::count(&cases, &core)
            } else {
                qemu::qemu(&cases, &core)
            }
        }
        Task::BenchMcu => bench_mcu::bench_mcu(),
        Task::BenchHost { scaling: false } => bench_host::bench_host(),
        Task::BenchHost { scaling: true } => bench_host::bench_scaling(),
        Task::BenchAnomaly {
            suite,
            part,
            neural,
            m4f,
            on_device,
        } => bench_anomaly::bench_anomaly(suite, part, neural, m4f, on_device),
        Task::BenchDecode => bench_decode::bench_decode(),
        Task::BenchArm => bench_arm::bench_arm(),
        Task::BenchNeural { quality } => bench_neural::bench_neural(quality),
        Task::Models { only } => models::models(only.as_deref()),
        Task::CCases { cases, out } => c_firmware::c_cases(&cases, &out),
        Task::CFirmware { cases, core } => c_firmware::c_firmware(
            &cases.unwrap_or_else(|| xtask::root().join("models")),
            &core,
        ),
    }
}
