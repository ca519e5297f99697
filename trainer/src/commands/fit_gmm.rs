//! `tinygen fit gmm`: fit a Gaussian mixture and write a `.tgm` model.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use nalgebra::DMatrix;
use tinygen_runtime::gmm::Covariance;

use super::{DataArgs, MixtureArgs};
use crate::density::gmm::{Components, EmOptions, EmReport, GaussianMixture, Init, fit_em_select};
use crate::density::gmm_gd::{GdOptions, fit_gd};
use crate::density::standardize::Standardizer;
use crate::io::write_atomic;

/// Covariance structure on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CovarianceArg {
    /// A full covariance matrix per component.
    Full,
    /// One full covariance matrix shared by all components.
    Tied,
    /// A diagonal covariance per component.
    Diag,
    /// One variance per component.
    Spherical,
}

impl From<CovarianceArg> for Covariance {
    fn from(c: CovarianceArg) -> Self {
        match c {
            CovarianceArg::Full => Covariance::Full,
            CovarianceArg::Tied => Covariance::Tied,
            CovarianceArg::Diag => Covariance::Diag,
            CovarianceArg::Spherical => Covariance::Spherical,
        }
    }
}

/// Initialisation on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// Hard labels of a k-means run.
    Kmeans,
    /// One-hot responsibilities at k-means++ seeds.
    #[value(name = "kmeans++")]
    KmeansPlusPlus,
    /// Random responsibilities.
    Random,
}

/// Fitting method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Expectation-maximisation (scikit-learn semantics).
    Em,
    /// Gradient descent on the negative log-likelihood with Adam (candle).
    Gd,
}

/// Arguments of `tinygen fit gmm`.
#[derive(Debug, Clone, Args)]
pub struct FitGmmArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub mixture: MixtureArgs,
    /// Initialisation of the responsibilities.
    #[arg(long, value_enum, default_value_t = InitArg::Kmeans)]
    pub init: InitArg,
    /// Number of initialisations (EM); the best log-likelihood wins.
    #[arg(long, default_value_t = 1)]
    pub n_init: usize,
    /// Maximum number of EM iterations.
    #[arg(long, default_value_t = 100)]
    pub max_iter: usize,
    /// Convergence threshold on the change of the mean log-likelihood.
    #[arg(long, default_value_t = 1e-3)]
    pub tol: f64,
    /// Seed for every random choice (results are deterministic per seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Standardize features (train mean and population std); the device
    /// then applies the same transform to raw values.
    #[arg(long)]
    pub standardize: bool,
    /// Fitting method.
    #[arg(long, value_enum, default_value_t = Method::Em)]
    pub method: Method,
    /// Learning rate of Adam (--method gd).
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Number of full-batch Adam steps (--method gd).
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    /// Output model file (.tgm), written atomically.
    #[arg(long)]
    pub out: PathBuf,
    /// Print only the summary, not every iteration.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `tinygen fit gmm`.
pub fn run(args: &FitGmmArgs) -> anyhow::Result<()> {
    crate::io::check_model_out(&args.out)?;
    let data = args.data.load()?;
    let gmm = args.mixture.gmm(args.seed);
    let raw = DMatrix::from_row_slice(data.rows, data.cols, &data.values);
    let standardizer = args.standardize.then(|| Standardizer::fit(&raw));
    let x = match &standardizer {
        Some(s) => s.apply(&raw),
        None => raw,
    };
    eprintln!(
        "fitting a {} {} Gaussian mixture by {} on {} rows x {} features{}",
        match gmm.components {
            Components::Fixed(k) => format!("{k}-component"),
            Components::Bic { min, max } => format!("{min}..{max}-component (by BIC)"),
        },
        Covariance::from(args.mixture.covariance).name(),
        match args.method {
            Method::Em => "EM",
            Method::Gd => "gradient descent",
        },
        data.rows,
        data.cols,
        if args.standardize {
            " (standardized)"
        } else {
            ""
        }
    );
    let quiet = args.quiet;
    let mut log = |iter: usize, ll: f64, change: f64| {
        if !quiet {
            eprintln!("  iter {iter:>4}  mean log-likelihood {ll:>14.6}  change {change:>12.3e}");
        }
    };
    let (model, report) = match args.method {
        Method::Em => {
            let opts = EmOptions {
                init: match args.init {
                    InitArg::Kmeans => Init::KMeans,
                    InitArg::KmeansPlusPlus => Init::KMeansPlusPlus,
                    InitArg::Random => Init::Random,
                },
                n_init: args.n_init,
                max_iter: args.max_iter,
                tol: args.tol,
                reg_covar: gmm.reg.value(x.nrows(), x.ncols()),
                ..gmm.em.clone()
            };
            let (model, report, tried) = fit_em_select(&x, gmm.components, &opts, &mut log)?;
            if tried.len() > 1 {
                for (k, bic) in &tried {
                    println!("K = {k:>2}: BIC {bic:.4}");
                }
                println!("chose K = {} (lowest BIC)", model.components());
            }
            (model.retain_components(gmm.min_weight), report)
        }
        Method::Gd => {
            let Components::Fixed(components) = gmm.components else {
                bail!("--method gd needs a fixed number of components");
            };
            let opts = GdOptions {
                components,
                covariance: args.mixture.covariance.into(),
                lr: args.lr,
                steps: args.steps,
                seed: args.seed,
            };
            fit_gd(&x, &opts, &mut log)?
        }
    };
    print_summary(&model, &report, &x);
    let bytes = model
        .params(standardizer.as_ref().map(Standardizer::encoded))
        .encode()
        .context("cannot encode the model")?;
    write_atomic(&args.out, &bytes)?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

fn print_summary(model: &GaussianMixture, report: &EmReport, x: &DMatrix<f64>) {
    if report.converged {
        println!("converged after {} iterations", report.n_iter);
    } else {
        println!(
            "did NOT converge in {} iterations (raise --max-iter or --tol)",
            report.n_iter
        );
    }
    let mean_ll = model.score_samples(x).iter().sum::<f64>() / x.nrows() as f64;
    println!("mean log-likelihood {mean_ll:.6}");
    println!(
        "BIC {:.4}  AIC {:.4}  ({} free parameters)",
        model.bic(x),
        model.aic(x),
        model.n_parameters()
    );
}
