//! The `tinygen` command line: parses arguments and dispatches.

use clap::{Parser, Subcommand};
use tinygen::commands::{data, detect, eval_anomaly, fit_detector, fit_gmm, fit_kde, info, score};

/// Train small generative models on a desktop and run them on microcontrollers.
#[derive(Debug, Parser)]
#[command(name = "tinygen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fit a model to data and write a .tgm model file.
    #[command(subcommand)]
    Fit(FitCommand),
    /// Evaluate models.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Describe a model file: kind, dimensions, sizes, CRC.
    Info(info::InfoArgs),
    /// Anomaly scores and alarms of a detector (CSV `score,anomaly`), using the runtime crate.
    Detect(detect::DetectArgs),
    /// Score data with a model (log-density per row, as CSV), using the runtime crate.
    Score(score::ScoreArgs),
    /// Get data sets (downloaded or imported, checksum-verified).
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// MNIST: download the four IDX files (or import them with --from) into --dir.
    Mnist(data::MnistArgs),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Anomaly detection with the PyOD protocol over given train/test splits.
    Anomaly(eval_anomaly::EvalAnomalyArgs),
}

#[derive(Debug, Subcommand)]
enum FitCommand {
    /// Gaussian mixture by EM (scikit-learn semantics) or gradient descent.
    Gmm(fit_gmm::FitGmmArgs),
    /// Gaussian kernel density estimate (scipy's gaussian_kde semantics).
    Kde(fit_kde::FitKdeArgs),
    /// Anomaly detector: (window features,) a mixture and a calibrated alarm threshold.
    Detector(fit_detector::FitDetectorArgs),
}

fn main() -> std::process::ExitCode {
    // Behave like other command-line tools when output is piped into a
    // program that stops reading (`tinygen score ... | head`): end quietly.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at start-up,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Fit(FitCommand::Gmm(args)) => fit_gmm::run(args),
        Command::Fit(FitCommand::Kde(args)) => fit_kde::run(args),
        Command::Fit(FitCommand::Detector(args)) => fit_detector::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Eval(EvalCommand::Anomaly(args)) => eval_anomaly::run(args),
        Command::Info(args) => info::run(args),
        Command::Score(args) => score::run(args),
        Command::Data(DataCommand::Mnist(args)) => data::run_mnist(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
