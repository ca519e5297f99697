//! The `tinygen` command line: parses arguments and dispatches.

use clap::{Parser, Subcommand};
use tinygen::commands::{
    data, detect, eval_anomaly, eval_run, export, fit_detector, fit_gmm, fit_kde, fit_neural,
    fit_pca, import, info, quality, recipe, score,
};

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
    /// Evaluate a neural run (`tinygen eval RUN --data ...`) or anomaly detectors.
    Eval(EvalArgs),
    /// Describe a model file: kind, dimensions, sizes, CRC.
    Info(info::InfoArgs),
    /// Write a recipe for a detector that learns "normal" on the device,
    /// from its input shape and settings alone (no data).
    Recipe(recipe::RecipeArgs),
    /// Anomaly scores and alarms of a detector (CSV `score,anomaly`), using the runtime crate.
    Detect(detect::DetectArgs),
    /// Export a run's decoder or encoder as a runtime model file or ONNX.
    Export(export::ExportArgs),
    /// Import a network from a TFLite or ONNX file as a runtime model file.
    Import(import::ImportArgs),
    /// Run a decoder (or encoder) model file on each row of a CSV, using the runtime crate.
    Decode(export::DecodeArgs),
    /// Draw samples from a decoder model file's prior, as the device does.
    Sample(export::SampleArgs),
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

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    #[command(flatten)]
    run: Option<eval_run::EvalRunArgs>,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Anomaly detection with the PyOD protocol over given train/test splits.
    Anomaly(eval_anomaly::EvalAnomalyArgs),
    /// Sample quality: Fréchet distance of classifier features and sliced
    /// Wasserstein distance against the test split.
    Quality(quality::EvalQualityArgs),
}

#[derive(Debug, Subcommand)]
enum FitCommand {
    /// Gaussian mixture by EM (scikit-learn semantics) or gradient descent.
    Gmm(fit_gmm::FitGmmArgs),
    /// Gaussian kernel density estimate (scipy's gaussian_kde semantics).
    Kde(fit_kde::FitKdeArgs),
    /// Anomaly detector: (window features,) a mixture and a calibrated alarm threshold.
    Detector(fit_detector::FitDetectorArgs),
    /// Principal component analysis (closed form; a linear encoder/decoder pair).
    Pca(fit_pca::FitPcaArgs),
    /// Autoencoder (optionally class-supervised, optionally with a latent GMM to generate).
    Ae(fit_neural::FitAeArgs),
    /// Variational autoencoder.
    Vae(fit_neural::FitVaeArgs),
    /// Sliced-Wasserstein autoencoder (optionally semi-supervised).
    Swae(fit_neural::FitSwaeArgs),
    /// Generative adversarial network (MLP generator and discriminator).
    Gan(fit_neural::FitGanArgs),
    /// Denoising diffusion model (DDPM with an MLP noise predictor).
    Diffusion(fit_neural::FitDiffusionArgs),
    /// Classifier whose hidden layer gives the features of `eval quality`.
    Classifier(quality::FitClassifierArgs),
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
        Command::Fit(FitCommand::Pca(args)) => fit_pca::run(args),
        Command::Fit(FitCommand::Ae(args)) => fit_neural::run_ae(args),
        Command::Fit(FitCommand::Vae(args)) => fit_neural::run_vae(args),
        Command::Fit(FitCommand::Swae(args)) => fit_neural::run_swae(args),
        Command::Fit(FitCommand::Gan(args)) => fit_neural::run_gan(args),
        Command::Fit(FitCommand::Diffusion(args)) => fit_neural::run_diffusion(args),
        Command::Fit(FitCommand::Classifier(args)) => quality::run_fit(args),
        Command::Detect(args) => detect::run(args),
        Command::Eval(EvalArgs {
            command: Some(EvalCommand::Anomaly(args)),
            ..
        }) => eval_anomaly::run(args),
        Command::Eval(EvalArgs {
            command: Some(EvalCommand::Quality(args)),
            ..
        }) => quality::run_eval(args),
        Command::Eval(EvalArgs {
            run: Some(args), ..
        }) => eval_run::run(args),
        Command::Eval(_) => Err(anyhow::anyhow!(
            "give a run folder (tinygen eval RUN --data ...) or a subcommand (tinygen eval anomaly ...)"
        )),
        Command::Info(args) => info::run(args),
        Command::Recipe(args) => recipe::run(args),
        Command::Score(args) => score::run(args),
        Command::Export(args) => export::run_export(args),
        Command::Import(args) => import::run(args),
        Command::Decode(args) => export::run_decode(args),
        Command::Sample(args) => export::run_sample(args),
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
