//! Detectors that learn "normal" on the device: the recipe `tinygen fit
//! detector --on-device-recipe` writes, and the runtime's learner
//! ([`tinygen_runtime::learn`]) run on the host over the inputs a device
//! would see, in order. It is the device's code, so the host learns the
//! bytes the device learns.

use anyhow::{Context, bail, ensure};
use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe, RecipeSpec};
use tinygen_runtime::{Detector, Error};

use crate::host::AlignedBytes;

/// What the learner made of a stream of inputs.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The learned detector file, as the device writes it.
    pub file: Vec<u8>,
    /// Inputs taken (learning and calibration).
    pub taken: usize,
    /// Inputs refused (NaN or infinite values), skipped as the device
    /// skips them.
    pub refused: usize,
}

impl Learned {
    /// The learned detector.
    pub fn detector<'a>(&self, aligned: &'a AlignedBytes) -> anyhow::Result<Detector<'a>> {
        Detector::from_bytes(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Runs the device's learner for `recipe` over `inputs` (whole points or
/// windows, in the order a device would see them) until it is done.
pub fn learn_on_host(recipe: &RecipeSpec, inputs: &[f32]) -> anyhow::Result<Learned> {
    let bytes = recipe
        .encode()
        .map_err(|_| anyhow::anyhow!("invalid recipe: {:?}", recipe.check().err()))?;
    let file = AlignedBytes::new(&bytes);
    let recipe = Recipe::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = recipe.spec();
    let mut state = vec![0.0f64; spec.state_len().context("recipe too large")?];
    let mut features = vec![0.0f32; spec.features_len().context("recipe too large")?];
    let mut scores = vec![0.0f32; spec.scores_len().context("recipe too large")?];
    let file_len = spec.detector_len().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = vec![0u32; file_len.div_ceil(4)];
    let buffers = Buffers {
        state: &mut state,
        features: &mut features,
        scores: &mut scores,
        file: bytemuck::cast_slice_mut(&mut out),
    };
    let mut learner = Learner::new(&recipe, buffers).map_err(|e| anyhow::anyhow!("{e}"))?;
    let needed = spec.learn as usize + spec.calibrate as usize;
    let (mut taken, mut refused) = (0, 0);
    for input in inputs.chunks_exact(spec.input_len()) {
        match learner.observe(input) {
            Ok(Progress::Done) => {
                taken += 1;
                break;
            }
            Ok(_) => taken += 1,
            Err(Error::NonFiniteInput) => refused += 1,
            Err(Error::NotPositiveDefinite) => bail!(
                "a learned covariance is not positive definite (collinear features over \
                 the learning inputs, or a component without points): raise --reg-covar"
            ),
            Err(e) => bail!("learning failed: {e}"),
        }
    }
    ensure!(
        learner.progress() == Progress::Done,
        "the recipe learns from {} inputs and calibrates on {}: {needed} valid inputs needed, \
         the data has {taken}",
        spec.learn,
        spec.calibrate
    );
    let file = learner.file().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec();
    Ok(Learned {
        file,
        taken,
        refused,
    })
}

#[cfg(test)]
mod tests {
    use nalgebra::DMatrix;
    use tinygen_runtime::detector::Features;
    use tinygen_runtime::gmm::Covariance;

    use super::*;
    use crate::density::gmm::{EmOptions, fit_em};
    use crate::density::standardize::Standardizer;

    /// Correlated 4-D points from a fixed generator.
    fn points(n: usize) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        (0..n)
            .flat_map(|_| {
                let a: f32 = rng.random_range(-1.0..1.0);
                let b: f32 = rng.random_range(-1.0..1.0);
                let c: f32 = rng.random_range(-1.0..1.0);
                [3.0 + a, 10.0 * (a + 0.5 * b), -2.0 + 0.1 * c, a - b + c]
            })
            .collect()
    }

    /// The learned detector's `-score` is, within `tolerance` (relative),
    /// the log-density of the trainer's EM fit to the same first `learn`
    /// rows of `x` (4-D), standardized as the device standardizes.
    fn assert_matches_em(
        detector: &Detector<'_>,
        x: &[f32],
        learn: usize,
        opts: &EmOptions,
        tolerance: f32,
    ) {
        let rows = DMatrix::from_fn(learn, 4, |i, j| f64::from(x[4 * i + j]));
        let standardizer = Standardizer::fit(&rows);
        let (em, _) = fit_em(&standardizer.apply(&rows), opts, &mut |_, _, _| {}).unwrap();
        let em_file = em.params(Some(standardizer.encoded())).encode().unwrap();
        let em_file = AlignedBytes::new(&em_file);
        let gmm = tinygen_runtime::Gmm::from_bytes(em_file.as_bytes()).unwrap();
        for p in x.chunks_exact(4) {
            let (a, b) = (-detector.score(p).unwrap(), gmm.log_density(p).unwrap());
            assert!(
                (a - b).abs() <= tolerance * b.abs().max(1.0),
                "{:?}: {a} vs {b}",
                opts.covariance
            );
        }
    }

    #[test]
    fn the_device_learns_what_em_fits_with_one_component() {
        let (learn, calibrate) = (300, 50);
        let x = points(learn + calibrate + 20);
        for covariance in [Covariance::Full, Covariance::Diag, Covariance::Spherical] {
            let recipe = RecipeSpec {
                features: Features::Identity,
                dim: 4,
                covariance,
                components: 1,
                iterations: 0,
                seed: 0,
                reg_covar: 1e-3,
                alarm_rate: 0.1,
                learn: learn as u32,
                calibrate: calibrate as u32,
                second_reg_covar: None,
            };
            let learned = learn_on_host(&recipe, &x).unwrap();
            assert_eq!((learned.taken, learned.refused), (learn + calibrate, 0));
            let aligned = AlignedBytes::new(&learned.file);
            let detector = learned.detector(&aligned).unwrap();

            let opts = EmOptions {
                components: 1,
                covariance,
                reg_covar: 1e-3,
                ..EmOptions::default()
            };
            assert_matches_em(&detector, &x, learn, &opts, 1e-4);
            // About the alarm rate of the calibration inputs alarm.
            let alarms = x[4 * learn..4 * (learn + calibrate)]
                .chunks_exact(4)
                .filter(|p| detector.is_anomaly(p).unwrap())
                .count();
            assert_eq!(alarms, 5, "{covariance:?}");
        }
    }

    #[test]
    fn the_device_mixture_matches_em_on_the_same_rows() {
        // Two separated groups: EM from any reasonable start finds them.
        let (learn, calibrate) = (400, 40);
        let x: Vec<f32> = points(learn + calibrate)
            .chunks_exact(4)
            .enumerate()
            .flat_map(|(i, p)| {
                let shift = if i % 3 == 0 { 8.0 } else { 0.0 };
                [p[0] + shift, p[1], p[2] - shift, p[3]]
            })
            .collect();
        for covariance in [Covariance::Full, Covariance::Diag] {
            let recipe = RecipeSpec {
                features: Features::Identity,
                dim: 4,
                covariance,
                components: 2,
                iterations: 100,
                seed: 3,
                reg_covar: 1e-3,
                alarm_rate: 0.1,
                learn: learn as u32,
                calibrate: calibrate as u32,
                second_reg_covar: None,
            };
            let learned = learn_on_host(&recipe, &x).unwrap();
            let aligned = AlignedBytes::new(&learned.file);
            let detector = learned.detector(&aligned).unwrap();
            let opts = EmOptions {
                components: 2,
                covariance,
                reg_covar: 1e-3,
                tol: 1e-10,
                max_iter: 500,
                ..EmOptions::default()
            };
            assert_matches_em(&detector, &x, learn, &opts, 1e-3);
        }
    }

    #[test]
    fn bad_inputs_are_skipped_and_short_data_is_an_error() {
        let recipe = RecipeSpec {
            features: Features::Identity,
            dim: 4,
            covariance: Covariance::Full,
            components: 1,
            iterations: 0,
            seed: 0,
            reg_covar: 0.0,
            alarm_rate: 0.0,
            learn: 50,
            calibrate: 10,
            second_reg_covar: None,
        };
        let mut x = points(61);
        x[4 * 7 + 2] = f32::NAN;
        let learned = learn_on_host(&recipe, &x).unwrap();
        assert_eq!((learned.taken, learned.refused), (60, 1));
        let short = learn_on_host(&recipe, &x[..4 * 40]).unwrap_err();
        assert!(
            short.to_string().contains("60 valid inputs needed"),
            "{short}"
        );
        // Collinear features without regularisation.
        let collinear: Vec<f32> = x
            .chunks_exact(4)
            .flat_map(|p| [p[0], 2.0 * p[0], p[2], p[3]])
            .collect();
        let err = learn_on_host(&recipe, &collinear).unwrap_err();
        assert!(err.to_string().contains("--reg-covar"), "{err}");
    }
}
