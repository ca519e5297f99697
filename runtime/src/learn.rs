//! Learning "normal" on the device: a detector that starts from a recipe
//! file and learns its density and its threshold from the first inputs
//! the device sees, with no heap.
//!
//! A recipe (kind [`ModelKind::Recipe`]) holds a detector's input
//! features and the hyper-parameters of its density: K components with a
//! full, diagonal or spherical covariance (tied too when K = 1, where it is
//! full), the regularisation added to their diagonals, the alarm rate, how
//! many inputs to learn from and to calibrate on, for K > 1 the number
//! of EM passes and the seed of their initialisation, and optionally a
//! second regularisation: the detector then has two densities, the same
//! mixture learned with each, and scores the sum of their robust z-scores
//! (`detector/6`'s second density; the trainer's default detector is such
//! a pair). A [`Learner`] then takes inputs one at a time:
//!
//! 1. **Learning** (the first `learn` inputs): the features of each input
//!    update, in f64, their running mean and co-moments (Welford's
//!    algorithm). With one component nothing else is kept: one streaming
//!    pass. With K > 1 the features are also stored, as f32, in the
//!    caller's feature buffer.
//! 2. After the last of them the standardization is fixed: per feature the
//!    mean and the population standard deviation (a constant feature gets
//!    scale 1, as scikit-learn's `StandardScaler`). With one component the
//!    density is the standardized covariance `C / n` plus `reg_covar` on
//!    its diagonal (diagonal: its diagonal; spherical: the diagonal's
//!    mean), factored in place (Cholesky factor `L`, then `X = L⁻¹`; the
//!    file stores `U = Xᵀ`, see [`crate::gmm`]). With K > 1 the stored
//!    features are standardized in place (rounded to f32) and initialised
//!    as scikit-learn's `kmeans` does: K seeds drawn by k-means++ with
//!    [`crate::Xoshiro128PlusPlus`] seeded with `seed`, `iterations` passes
//!    of Lloyd's k-means, and the M-step of the clusters. `iterations` EM
//!    passes follow, each an E-step over all stored rows (log-sum-exp
//!    responsibilities) accumulating the weighted sums, then scikit-learn's
//!    M-step (`n_k + 10 eps`, means, covariances from second moments plus
//!    `reg_covar`, factored as above).
//!    A second density is the same computation with `second_reg_covar`
//!    (with K > 1, from the same initialisation, before the first).
//!    The densities are written as a detector file (threshold `f32::MAX`)
//!    into the caller's buffer.
//! 3. **Calibration** (the next `calibrate` inputs): each is scored as
//!    [`Detector::score`] scores it with that file, into the caller's score
//!    buffer; with a second density, both terms `-ln p` and `-ln q`.
//! 4. With a second density, each term's centre and scale are measured
//!    over the calibration inputs ([`robust_z_constants`], the trainer's
//!    rule: median and IQR / 1.349) and the scores combined. The threshold
//!    is then set by [`threshold_at_rate`] (the trainer's rule) and the
//!    file is written again: a normal `detector/6` file that can be
//!    stored, read back after a reset ([`crate::format::file_in`] finds it
//!    at the start of the flash page it was written to), or pulled to the
//!    desktop.
//!
//! Every step is IEEE arithmetic (`+ - * /`, square roots), `libm`'s
//! logarithm and exponential and the integer generator, in a fixed order,
//! so the host (`tinygen fit detector --on-device-recipe`) and every device
//! learn the same bytes.
//!
//! Bad input: an input with NaN or infinite values, or of the wrong
//! length, is refused with its error and not counted. A covariance that
//! is not positive definite (collinear features and `reg_covar` 0, or a
//! component that lost its points) fails the input that completes learning
//! with [`Error::NotPositiveDefinite`], and parameters that do not fit in
//! f32 with `InvalidParameters`; the learner then stays failed (start a
//! new one). Calibration scores that are NaN (with a second density:
//! terms that are not finite) are refused like bad inputs; if the rate
//! picks an infinite score, the threshold is `f32::MAX`.
//!
//! Memory (the caller's, [`Buffers`]): [`RecipeSpec::state_len`] f64
//! values (`2 D + D (D + 1) / 2` for one full Gaussian, `3 D` for a
//! diagonal one; with K > 1, `3 D + 2 K (2 + D + F)`, F = `D (D + 1) / 2`
//! full or D otherwise; a second density adds F, or `K (1 + D + F)` with
//! K > 1), [`RecipeSpec::features_len`] f32 values (`learn · D` when
//! K > 1, none otherwise), [`RecipeSpec::scores_len`] f32 scores
//! (`calibrate`, three times that with a second density), and
//! [`RecipeSpec::detector_len`] bytes for the file, 4-byte aligned.
//!
//! Work: each learning input costs O(D²) (full) or O(D); the input that
//! completes learning with K > 1 runs the k-means and EM passes, about
//! `iterations · learn · K · (2 D + 2 F)` multiply-adds and `iterations ·
//! learn · K` exponentials (`iterations` is at most [`MAX_ITERATIONS`]),
//! and for full covariances about `iterations · K · D³ / 3` more for the
//! Cholesky factors and their inverses (the larger part when `learn` is
//! small against D), twice with a second density; the last calibration input sorts the
//! scores (O(n log n), each term once more with a second density).

use serde::{Deserialize, Serialize};

use crate::detector::{
    self, DetectorSpec, Features, MAX_FEATURES, SecondDensitySpec, robust_sum, robust_z_constants,
    threshold_at_rate,
};
use crate::features::{STATS, window_stats};
use crate::format::{self, Header, ModelKind};
use crate::gmm::{Covariance, GmmSpec, MixtureParams, write_values};
use crate::{Detector, Error, Gmm, Shape};
use factor::{invert_cholesky, tri};

/// Most EM passes a recipe may ask for (the learner's work is bounded).
pub const MAX_ITERATIONS: u32 = 1000;

const RECIPE: Error = Error::InvalidShape(Shape::Recipe);
const INTERNAL: Error = Error::InvalidShape(Shape::Internal);

/// Schema key of the recipe body (`recipe/2`: `recipe/1`'s spec and the
/// second density's regularisation).
pub const SCHEMA_KEY: u32 = format::schema_key(
    "recipe/2 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} dim:u32 \
     covariance:{full,tied,diag,spherical} components:u32 iterations:u32 seed:u64 \
     reg_covar:f64 alarm_rate:f64 learn:u32 calibrate:u32 \
     second_reg_covar:option<f64>} data: none",
);

/// Schema key of `recipe/1` files (one density), still read.
pub const SCHEMA_KEY_V1: u32 = format::schema_key(
    "recipe/1 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} dim:u32 \
     covariance:{full,tied,diag,spherical} components:u32 iterations:u32 seed:u64 \
     reg_covar:f64 alarm_rate:f64 learn:u32 calibrate:u32} data: none",
);

/// What a detector learns on the device, and from how many inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecipeSpec {
    /// Input transformation, as in a detector.
    pub features: Features,
    /// Features per input: the density's dimension D.
    pub dim: u32,
    /// Covariance structure of the learned components.
    pub covariance: Covariance,
    /// Number of components K (at most `learn`; tied only when 1).
    pub components: u32,
    /// EM passes when K > 1 (1 to [`MAX_ITERATIONS`]; unused when 1).
    pub iterations: u32,
    /// Seed of the k-means++ initialisation when K > 1.
    pub seed: u64,
    /// Added to the diagonal of the standardized covariance (at least 0).
    pub reg_covar: f64,
    /// Fraction of the calibration inputs allowed to alarm, in [0, 1).
    pub alarm_rate: f64,
    /// Inputs the density is learned from (at least 2).
    pub learn: u32,
    /// Inputs after those that set the threshold (at least 1).
    pub calibrate: u32,
    /// A second density: the same mixture learned with this
    /// regularisation (at least 0). The detector then scores the sum of
    /// both densities' robust z-scores, their constants measured on the
    /// calibration inputs. `None`: one density.
    pub second_reg_covar: Option<f64>,
}

/// `recipe/1`'s spec: today's without the second density.
#[derive(Deserialize)]
struct RecipeSpecV1 {
    features: Features,
    dim: u32,
    covariance: Covariance,
    components: u32,
    iterations: u32,
    seed: u64,
    reg_covar: f64,
    alarm_rate: f64,
    learn: u32,
    calibrate: u32,
}

impl RecipeSpecV1 {
    fn with(self, second_reg_covar: Option<f64>) -> RecipeSpec {
        let Self {
            features,
            dim,
            covariance,
            components,
            iterations,
            seed,
            reg_covar,
            alarm_rate,
            learn,
            calibrate,
        } = self;
        RecipeSpec {
            features,
            dim,
            covariance,
            components,
            iterations,
            seed,
            reg_covar,
            alarm_rate,
            learn,
            calibrate,
            second_reg_covar,
        }
    }
}

impl RecipeSpec {
    /// Checks that the counts and the parameters fit together.
    pub fn check(&self) -> Result<(), Error> {
        let d = self.dim as usize;
        let features_fit = match self.features {
            Features::Identity => true,
            Features::WindowStats { channels, length } => {
                length > 0
                    && (channels as usize).checked_mul(length as usize).is_some()
                    && (channels as usize).checked_mul(STATS.len()) == Some(d)
                    && d <= MAX_FEATURES
            }
            Features::RawWindow { channels, length } => {
                (channels as usize).checked_mul(length as usize) == Some(d)
            }
        };
        let k = self.components;
        let mixture_fits = k == 1
            || (k <= self.learn
                && (1..=MAX_ITERATIONS).contains(&self.iterations)
                && self.covariance != Covariance::Tied);
        if d == 0
            || k == 0
            || !mixture_fits
            || self.learn < 2
            || self.calibrate == 0
            || !features_fit
        {
            return Err(RECIPE);
        }
        let reg_ok = |r: f64| r >= 0.0 && r.is_finite();
        let regs_ok = reg_ok(self.reg_covar) && self.second_reg_covar.is_none_or(reg_ok);
        if !(regs_ok && (0.0..1.0).contains(&self.alarm_rate)) {
            return Err(Error::ParameterOutOfRange);
        }
        self.state_len().ok_or(RECIPE)?;
        self.features_len().ok_or(RECIPE)?;
        self.scores_len().ok_or(RECIPE)?;
        self.detector_len().map_err(|_| RECIPE)?;
        Ok(())
    }

    /// Values per input: a point, or a whole window.
    pub fn input_len(&self) -> usize {
        self.features
            .window()
            .map_or(self.dim as usize, |(channels, length)| channels * length)
    }

    /// f64 values of the learner's state (the module docs give the sum).
    pub fn state_len(&self) -> Option<usize> {
        Layout::of(self).map(|l| l.len)
    }

    /// f32 values of stored features: `learn · D` when K > 1, else 0.
    pub fn features_len(&self) -> Option<usize> {
        if self.components == 1 {
            return Some(0);
        }
        (self.learn as usize).checked_mul(self.dim as usize)
    }

    /// f32 values of calibration scores: `calibrate`, or `3 · calibrate`
    /// with a second density (both terms, and room to sort one).
    pub fn scores_len(&self) -> Option<usize> {
        let terms = if self.second_reg_covar.is_some() {
            3
        } else {
            1
        };
        (self.calibrate as usize).checked_mul(terms)
    }

    /// Bytes of each buffer the learner needs ([`Buffers`]); `None` if a
    /// length overflows.
    pub fn memory(&self) -> Option<BufferBytes> {
        Some(BufferBytes {
            state: self.state_len()?.checked_mul(8)?,
            features: self.features_len()?.checked_mul(4)?,
            scores: self.scores_len()?.checked_mul(4)?,
            file: self.detector_len().ok()?,
        })
    }

    /// The spec of the detector this recipe learns, with `threshold` (and,
    /// with a second density, centres 0 and scales 1).
    pub fn detector_spec(&self, threshold: f32) -> DetectorSpec {
        let density = GmmSpec {
            dim: self.dim,
            components: self.components,
            covariance: self.covariance,
            standardized: true,
        };
        DetectorSpec {
            features: self.features,
            threshold,
            density_kind: ModelKind::Gmm,
            density,
            neural: None,
            second: self.second_reg_covar.map(|_| SecondDensitySpec {
                kind: ModelKind::Gmm,
                density,
                center: [0.0; 2],
                scale: [1.0; 2],
            }),
        }
    }

    /// Bytes of the learned detector file.
    pub fn detector_len(&self) -> Result<usize, Error> {
        let spec = self.detector_spec(f32::MAX);
        format::file_len(&spec, self.detector_values().ok_or(RECIPE)?)
    }

    /// 4-byte values of the learned detector's data: each density's.
    fn detector_values(&self) -> Option<usize> {
        let one = self.detector_spec(f32::MAX).density.stored_values()?;
        let densities = if self.second_reg_covar.is_some() {
            2
        } else {
            1
        };
        one.checked_mul(densities)
    }

    /// Encodes the recipe as a model file of kind `recipe`.
    #[cfg(feature = "alloc")]
    pub fn encode(&self) -> Result<alloc::vec::Vec<u8>, Error> {
        self.check().map_err(|_| Error::InvalidParameters)?;
        format::write(ModelKind::Recipe, SCHEMA_KEY, self, &[])
    }
}

/// Bytes of the buffers a [`Learner`] needs ([`RecipeSpec::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferBytes {
    /// The learner's f64 state.
    pub state: usize,
    /// Stored f32 features (0 for one component).
    pub features: usize,
    /// f32 calibration scores.
    pub scores: usize,
    /// The learned detector file.
    pub file: usize,
}

impl BufferBytes {
    /// All four buffers together (saturating).
    pub fn total(&self) -> usize {
        self.state
            .saturating_add(self.features)
            .saturating_add(self.scores)
            .saturating_add(self.file)
    }
}

/// A recipe read from a model file.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    header: Header,
    spec: RecipeSpec,
}

impl Recipe {
    /// Parses and validates a recipe file (`recipe/2` or `recipe/1`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let file = format::open(bytes)?;
        let old = file.header().schema == SCHEMA_KEY_V1;
        let schema = if old { SCHEMA_KEY_V1 } else { SCHEMA_KEY };
        let (header, v1, second_reg_covar, data) =
            file.read_extended::<RecipeSpecV1, Option<f64>>(&[ModelKind::Recipe], schema, !old)?;
        let spec = v1.with(second_reg_covar);
        if !data.is_empty() {
            return Err(Error::InvalidShape(Shape::DataLength));
        }
        spec.check()?;
        Ok(Self { header, spec })
    }

    /// The checked file header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The recipe.
    pub fn spec(&self) -> RecipeSpec {
        self.spec
    }
}

/// Where a [`Learner`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Progress {
    /// Learning the density: inputs still to learn from.
    Learning {
        /// Inputs to go before the density is fixed.
        remaining: usize,
    },
    /// Setting the threshold: inputs still to score.
    Calibrating {
        /// Inputs to go before the threshold is set.
        remaining: usize,
    },
    /// The detector is learned ([`Learner::file`], [`Learner::detector`]);
    /// further inputs are ignored.
    Done,
}

/// Where the learner's state keeps what (offsets in f64 values): the mean
/// (D), the scale (D; while learning, the latest input's deviations from
/// the old mean), the co-moments (one full or tied Gaussian: the packed
/// lower triangle, row by row, which becomes the factor `X`; otherwise the
/// diagonal). With K > 1 then the mixture: weights (K), means (K·D),
/// factors (K·F), the E-step's sums (K, K·D, K·F), K log-responsibilities
/// and K log-normalisers, F being one component's factor length. Last,
/// with a second density, its parameters: one factor (F) with one
/// component, else weights, means and factors (K (1 + D + F)).
#[derive(Debug, Clone, Copy)]
struct Layout {
    d: usize,
    k: usize,
    /// Length of one component's factor.
    f: usize,
    /// Length of the co-moments.
    moments: usize,
    /// Length of the mixture being learned with its sums (0 for K = 1).
    mixture: usize,
    /// Everything, the second density's parameters last.
    len: usize,
}

impl Layout {
    fn of(spec: &RecipeSpec) -> Option<Self> {
        let (d, k) = (spec.dim as usize, spec.components as usize);
        let f = factor::factor_len(d, spec.covariance)?;
        let moments = if k == 1 { f } else { d };
        let mixture = if k == 1 {
            0
        } else {
            // weights, means, factors; the sums likewise; log-responsibilities
            // and log-normalisers.
            let one = d.checked_add(f)?.checked_add(2)?;
            k.checked_mul(one)?.checked_mul(2)?
        };
        let second = match spec.second_reg_covar {
            None => 0,
            Some(_) if k == 1 => f,
            Some(_) => k.checked_mul(d.checked_add(f)?.checked_add(1)?)?,
        };
        let len = d
            .checked_mul(2)?
            .checked_add(moments)?
            .checked_add(mixture)?
            .checked_add(second)?;
        Some(Self {
            d,
            k,
            f,
            moments,
            mixture,
            len,
        })
    }
}

/// The caller's memory for a [`Learner`].
#[derive(Debug)]
pub struct Buffers<'b> {
    /// At least [`RecipeSpec::state_len`] values.
    pub state: &'b mut [f64],
    /// At least [`RecipeSpec::features_len`] values (none for one component).
    pub features: &'b mut [f32],
    /// At least [`RecipeSpec::scores_len`] values.
    pub scores: &'b mut [f32],
    /// At least [`RecipeSpec::detector_len`] bytes, 4-byte aligned (see
    /// [`crate::Aligned`]).
    pub file: &'b mut [u8],
}

/// A detector learning on the device from a [`Recipe`] (see the module
/// docs), in the caller's buffers.
///
/// ```
/// # #[cfg(feature = "alloc")] {
/// use tinygen_runtime::detector::Features;
/// use tinygen_runtime::gmm::Covariance;
/// use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe, RecipeSpec};
/// use tinygen_runtime::{Aligned, Detector, format};
///
/// // The trainer writes the recipe (`tinygen recipe`, or `fit detector --on-device-recipe`).
/// let spec = RecipeSpec {
///     features: Features::Identity,
///     dim: 2,
///     covariance: Covariance::Full,
///     components: 1,
///     iterations: 0,
///     seed: 0,
///     reg_covar: 0.01,
///     alarm_rate: 0.1,
///     learn: 40,
///     calibrate: 20,
///     second_reg_covar: None,
/// };
/// let bytes = spec.encode().unwrap();
/// let mut flash = Aligned([0u8; 64]);
/// flash.0[..bytes.len()].copy_from_slice(&bytes);
/// let recipe = Recipe::from_bytes(&flash.0[..bytes.len()]).unwrap();
///
/// // The device: its buffers, sized by the recipe.
/// // The file buffer is a flash page here, erased (all 0xFF).
/// let (mut state, mut scores, mut page) = ([0f64; 7], [0f32; 20], Aligned([0xFF; 96]));
/// assert_eq!(spec.state_len(), Some(7));
/// assert!(spec.detector_len().unwrap() <= 96);
/// let buffers = Buffers {
///     state: &mut state,
///     features: &mut [],
///     scores: &mut scores,
///     file: &mut page.0,
/// };
/// let mut learner = Learner::new(&recipe, buffers).unwrap();
/// let mut t = 0.0f32;
/// let mut progress = Progress::Learning { remaining: 40 };
/// while progress != Progress::Done {
///     t += 1.0;
///     progress = learner.observe(&[t.sin(), 2.0 * t.cos()]).unwrap();
/// }
/// // A normal detector file, at the start of the page: after a reset the
/// // device finds it there by its header, and scores with it.
/// let len = learner.file().unwrap().len();
/// drop(learner);
/// let stored = format::file_in(&page.0).unwrap();
/// assert_eq!(stored.len(), len);
/// let detector = Detector::from_bytes(stored).unwrap();
/// assert!(!detector.is_anomaly(&[0.0, 0.0]).unwrap());
/// assert!(detector.is_anomaly(&[5.0, 5.0]).unwrap());
/// # }
/// ```
#[derive(Debug)]
pub struct Learner<'b> {
    spec: RecipeSpec,
    layout: Layout,
    state: &'b mut [f64],
    features: &'b mut [f32],
    scores: &'b mut [f32],
    file: &'b mut [u8],
    learned: usize,
    calibrated: usize,
    file_len: usize,
    /// With a second density, the terms' centres and scales (0 and 1
    /// until the calibration measures them).
    constants: ([f32; 2], [f32; 2]),
    failed: Option<Error>,
}

impl<'b> Learner<'b> {
    /// A learner for `recipe` in the caller's buffers (`BufferTooSmall`
    /// or `Misaligned` if they do not fit).
    pub fn new(recipe: &Recipe, buffers: Buffers<'b>) -> Result<Self, Error> {
        let spec = recipe.spec;
        spec.check()?;
        let layout = Layout::of(&spec).ok_or(RECIPE)?;
        let features_len = spec.features_len().ok_or(RECIPE)?;
        let fits = |needed: usize, found: usize| {
            if found < needed {
                Err(Error::BufferTooSmall { needed, found })
            } else {
                Ok(())
            }
        };
        let Buffers {
            state,
            features,
            scores,
            file,
        } = buffers;
        fits(layout.len, state.len())?;
        fits(features_len, features.len())?;
        let scores_len = spec.scores_len().ok_or(RECIPE)?;
        fits(scores_len, scores.len())?;
        fits(spec.detector_len()?, file.len())?;
        if file.as_ptr().align_offset(4) != 0 {
            return Err(Error::Misaligned);
        }
        let state = state.get_mut(..layout.len).ok_or(INTERNAL)?;
        state.fill(0.0);
        Ok(Self {
            spec,
            layout,
            state,
            features: features.get_mut(..features_len).ok_or(INTERNAL)?,
            scores: scores.get_mut(..scores_len).ok_or(INTERNAL)?,
            file,
            learned: 0,
            calibrated: 0,
            file_len: 0,
            constants: ([0.0; 2], [1.0; 2]),
            failed: None,
        })
    }

    /// Where the learner is.
    pub fn progress(&self) -> Progress {
        let (learn, calibrate) = (self.spec.learn as usize, self.spec.calibrate as usize);
        if self.learned < learn {
            Progress::Learning {
                remaining: learn - self.learned,
            }
        } else if self.calibrated < calibrate {
            Progress::Calibrating {
                remaining: calibrate - self.calibrated,
            }
        } else {
            Progress::Done
        }
    }

    /// Takes the next input (a point or a window, [`RecipeSpec::input_len`]
    /// values) and says where the learner is after it. A refused input
    /// (its error) is not counted.
    pub fn observe(&mut self, input: &[f32]) -> Result<Progress, Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if input.len() != self.spec.input_len() {
            return Err(Error::DimensionMismatch {
                expected: self.spec.input_len(),
                found: input.len(),
            });
        }
        match self.progress() {
            Progress::Learning { .. } => {
                let mut buf = [0.0f32; MAX_FEATURES];
                let features = self.features(input, &mut buf)?;
                self.update(features)?;
                if self.layout.k > 1 {
                    let d = self.layout.d;
                    let at = self.learned * d;
                    let row = self.features.get_mut(at..at + d).ok_or(INTERNAL)?;
                    for (slot, &v) in row.iter_mut().zip(features) {
                        *slot = v;
                    }
                }
                self.learned += 1;
                if self.learned == self.spec.learn as usize {
                    let fixed = self.fix_density().and_then(|()| self.write(f32::MAX));
                    if let Err(e) = fixed {
                        self.failed = Some(e);
                        return Err(e);
                    }
                }
            }
            Progress::Calibrating { .. } => {
                // What `Detector::score` computes (for a second density,
                // its terms), without parsing the whole detector spec (a
                // few KB of stack) for each input.
                let mut buf = [0.0f32; MAX_FEATURES];
                let features = self.features(input, &mut buf)?;
                let (first, second) = self.densities()?;
                let score = -first.log_density(features)?;
                let other = second.map(|q| q.log_density(features)).transpose()?;
                let calibrate = self.spec.calibrate as usize;
                let at = self.calibrated;
                match other {
                    None if score.is_nan() => return Err(Error::NonFiniteInput),
                    None => *self.scores.get_mut(at).ok_or(INTERNAL)? = score,
                    Some(log_q) if !(score.is_finite() && log_q.is_finite()) => {
                        return Err(Error::NonFiniteInput);
                    }
                    Some(log_q) => {
                        *self.scores.get_mut(at).ok_or(INTERNAL)? = score;
                        *self.scores.get_mut(calibrate + at).ok_or(INTERNAL)? = -log_q;
                    }
                }
                self.calibrated += 1;
                if self.calibrated == calibrate
                    && let Err(e) = self.set_threshold()
                {
                    self.failed = Some(e);
                    return Err(e);
                }
            }
            Progress::Done => {}
        }
        Ok(self.progress())
    }

    /// The learned detector file (once [`Progress::Done`]).
    pub fn file(&self) -> Result<&[u8], Error> {
        let remaining = match self.progress() {
            Progress::Done => return self.file.get(..self.file_len).ok_or(INTERNAL),
            Progress::Learning { remaining } => remaining + self.spec.calibrate as usize,
            Progress::Calibrating { remaining } => remaining,
        };
        Err(self.failed.unwrap_or(Error::StillLearning { remaining }))
    }

    /// The learned detector, read from [`Self::file`]; while calibrating,
    /// the learned density with threshold `f32::MAX`.
    pub fn detector(&self) -> Result<Detector<'_>, Error> {
        match self.file_len {
            0 => self.file().and_then(Detector::from_bytes),
            len => Detector::from_bytes(self.file.get(..len).ok_or(INTERNAL)?),
        }
    }

    /// The features of an input (its window statistics in `buf`, or the
    /// input itself), finite.
    fn features<'x>(&self, input: &'x [f32], buf: &'x mut [f32]) -> Result<&'x [f32], Error> {
        match self.spec.features {
            Features::WindowStats { channels, .. } => {
                let out = buf.get_mut(..self.spec.dim as usize).ok_or(RECIPE)?;
                window_stats(input, channels as usize, out)?;
                Ok(out)
            }
            Features::Identity | Features::RawWindow { .. } => {
                if input.iter().any(|v| !v.is_finite()) {
                    return Err(Error::NonFiniteInput);
                }
                Ok(input)
            }
        }
    }

    /// The densities of the file written so far, read in place from its
    /// data (the last values before the CRC): the first, and the second
    /// if the recipe learns one.
    fn densities(&self) -> Result<(Gmm<'_>, Option<Gmm<'_>>), Error> {
        let file = self.file.get(..self.file_len).ok_or(INTERNAL)?;
        let header = format::read_header(file)?;
        let spec = self.spec.detector_spec(f32::MAX).density;
        let one = spec.stored_values().ok_or(INTERNAL)?;
        let values = self.spec.detector_values().ok_or(INTERNAL)?;
        let end = file.len().checked_sub(format::CRC_LEN).ok_or(INTERNAL)?;
        let start = end.checked_sub(4 * values).ok_or(INTERNAL)?;
        let data: &[f32] = bytemuck::try_cast_slice(file.get(start..end).ok_or(INTERNAL)?)
            .map_err(|_| Error::Misaligned)?;
        let (first, second) = data.split_at_checked(one).ok_or(INTERNAL)?;
        let first = Gmm::from_parts(header, ModelKind::Gmm, spec, first)?;
        let second = match self.spec.second_reg_covar {
            Some(_) => Some(Gmm::from_parts(header, ModelKind::Gmm, spec, second)?),
            None => None,
        };
        Ok((first, second))
    }

    /// After the last calibration input: with a second density, measures
    /// both terms' robust z-score constants and combines them in place;
    /// then sets the threshold at the alarm rate and writes the file.
    fn set_threshold(&mut self) -> Result<(), Error> {
        let calibrate = self.spec.calibrate as usize;
        if self.spec.second_reg_covar.is_some() {
            let (terms, scratch) = self
                .scores
                .split_at_mut_checked(2 * calibrate)
                .ok_or(INTERNAL)?;
            let (first, second) = terms.split_at_mut_checked(calibrate).ok_or(INTERNAL)?;
            let (mut center, mut scale) = ([0.0f32; 2], [1.0f32; 2]);
            for ((c, s), terms) in center.iter_mut().zip(&mut scale).zip([&*first, &*second]) {
                let sorted = scratch.get_mut(..calibrate).ok_or(INTERNAL)?;
                for (slot, &t) in sorted.iter_mut().zip(terms) {
                    *slot = t;
                }
                (*c, *s) = robust_z_constants(sorted)?;
            }
            for (a, &b) in first.iter_mut().zip(&*second) {
                *a = robust_sum(&[*a, b], &center, &scale);
            }
            self.constants = (center, scale);
        }
        let scores = self.scores.get_mut(..calibrate).ok_or(INTERNAL)?;
        let t = threshold_at_rate(scores, self.spec.alarm_rate)?;
        self.write(if t.is_finite() { t } else { f32::MAX })
    }

    /// Welford's update of the mean and co-moments with one feature row;
    /// the scale's slots hold the deviations from the old mean meanwhile.
    fn update(&mut self, x: &[f32]) -> Result<(), Error> {
        let d = self.spec.dim as usize;
        let n = (self.learned + 1) as f64;
        let (mean, rest) = self.state.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let (delta, moments) = rest.split_at_mut_checked(d).ok_or(INTERNAL)?;
        if x.len() != d {
            return Err(INTERNAL);
        }
        for ((m, dv), &v) in mean.iter_mut().zip(delta.iter_mut()).zip(x) {
            *dv = f64::from(v) - *m;
            *m += *dv / n;
        }
        match self.spec.covariance {
            Covariance::Full | Covariance::Tied if self.layout.k == 1 => {
                // Row i of the lower triangle: i + 1 values.
                let mut rows = &mut moments[..];
                for (i, &di) in delta.iter().enumerate() {
                    let (row, rest) = rows.split_at_mut_checked(i + 1).ok_or(INTERNAL)?;
                    rows = rest;
                    for ((c, &xj), &mj) in row.iter_mut().zip(x).zip(mean.iter()) {
                        *c += di * (f64::from(xj) - mj);
                    }
                }
            }
            _ => {
                for (((c, &di), &xj), &mj) in moments.iter_mut().zip(&*delta).zip(x).zip(&*mean) {
                    *c += di * (f64::from(xj) - mj);
                }
            }
        }
        Ok(())
    }

    /// Fixes the standardization and the density, in place (see the
    /// module docs).
    fn fix_density(&mut self) -> Result<(), Error> {
        let Layout {
            d,
            k,
            f,
            moments,
            mixture,
            ..
        } = self.layout;
        let n = self.spec.learn as f64;
        let reg = self.spec.reg_covar;
        let (mean, rest) = self.state.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let (scale, rest) = rest.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let (m, rest) = rest.split_at_mut_checked(moments).ok_or(INTERNAL)?;
        let (mixture, second) = rest.split_at_mut_checked(mixture).ok_or(INTERNAL)?;
        let triangular =
            k == 1 && matches!(self.spec.covariance, Covariance::Full | Covariance::Tied);
        let at = |i: usize, j: usize| if triangular { tri(i, j) } else { i };
        for (j, s) in scale.iter_mut().enumerate() {
            let std = libm::sqrt(m.get(at(j, j)).ok_or(INTERNAL)? / n);
            *s = if std > 0.0 && std.is_finite() {
                std
            } else {
                1.0
            };
        }
        let scale = &*scale;
        if k > 1 {
            // Non-zero: chunking by it has no panic path.
            let d = core::num::NonZeroUsize::new(d).ok_or(INTERNAL)?;
            for row in self.features.chunks_exact_mut(d.get()) {
                for ((v, &mu), &s) in row.iter_mut().zip(&*mean).zip(scale) {
                    *v = ((f64::from(*v) - mu) / s) as f32;
                }
            }
            // The second mixture first, its parameters (the mixture's
            // first values) kept aside; then the first, in place.
            if let Some(reg2) = self.spec.second_reg_covar {
                em::fit(&self.spec, f, reg2, mixture, self.features)?;
                copy(mixture, second)?;
            }
            return em::fit(&self.spec, f, reg, mixture, self.features);
        }
        // One Gaussian: its standardized covariance, factored in place
        // (and a copy with the second regularisation).
        let s = |i: usize| scale.get(i).copied().ok_or(INTERNAL);
        for i in 0..d {
            for j in 0..=i {
                if !triangular && j != i {
                    continue;
                }
                let slot = m.get_mut(at(i, j)).ok_or(INTERNAL)?;
                *slot = *slot / n / (s(i)? * s(j)?);
            }
        }
        let regularise = |m: &mut [f64], reg: f64| {
            for i in 0..d {
                *m.get_mut(at(i, i)).ok_or(INTERNAL)? += reg;
            }
            invert_cholesky(m, d, self.spec.covariance)
        };
        if let Some(reg2) = self.spec.second_reg_covar {
            copy(m, second)?;
            regularise(second, reg2)?;
        }
        regularise(m, reg)
    }

    /// Writes the learned densities as a detector file with `threshold`.
    fn write(&mut self, threshold: f32) -> Result<(), Error> {
        let mut spec = self.spec.detector_spec(threshold);
        if let Some(second) = spec.second.as_mut() {
            (second.center, second.scale) = self.constants;
        }
        let one = spec.density.stored_values().ok_or(RECIPE)?;
        let values = self.spec.detector_values().ok_or(RECIPE)?;
        let first = Learned::new(spec.density, self.layout, self.state, false)?;
        let second = match spec.second {
            Some(_) => Some(Learned::new(spec.density, self.layout, self.state, true)?),
            None => None,
        };
        self.file_len = 0;
        let len = format::write_into(
            ModelKind::Detector,
            detector::SCHEMA_KEY,
            &spec,
            values,
            self.file,
            |bytes| {
                let out: &mut [f32] =
                    bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Misaligned)?;
                let (out, rest) = out.split_at_mut_checked(one).ok_or(INTERNAL)?;
                write_values(&first, out)?;
                second.map_or(Ok(()), |second| write_values(&second, rest))
            },
        )?;
        self.file_len = len;
        Ok(())
    }
}

/// The learned density as the mixture writer reads it: the
/// standardization, weights (1 for one component), means (0 in
/// standardized units for one component) and factors `U = Xᵀ` (or their
/// diagonals).
struct Learned<'s> {
    spec: GmmSpec,
    f: usize,
    mean: &'s [f64],
    scale: &'s [f64],
    weights: Option<&'s [f64]>,
    means: Option<&'s [f64]>,
    factors: &'s [f64],
}

impl<'s> Learned<'s> {
    /// The first density, or the second.
    fn new(spec: GmmSpec, layout: Layout, state: &'s [f64], second: bool) -> Result<Self, Error> {
        let Layout {
            d,
            k,
            f,
            moments,
            mixture,
            ..
        } = layout;
        let (mean, rest) = state.split_at_checked(d).ok_or(INTERNAL)?;
        let (scale, rest) = rest.split_at_checked(d).ok_or(INTERNAL)?;
        let (factor, rest) = rest.split_at_checked(moments).ok_or(INTERNAL)?;
        let (mixture, kept) = rest.split_at_checked(mixture).ok_or(INTERNAL)?;
        // The mixture's parameters and the second's share a layout.
        let params = match (second, k) {
            (false, 1) => factor,
            (false, _) => mixture,
            (true, _) => kept,
        };
        if k == 1 {
            return Ok(Self {
                spec,
                f,
                mean,
                scale,
                weights: None,
                means: None,
                factors: params.get(..f).ok_or(INTERNAL)?,
            });
        }
        let (weights, rest) = params.split_at_checked(k).ok_or(INTERNAL)?;
        let (means, rest) = rest.split_at_checked(k * d).ok_or(INTERNAL)?;
        Ok(Self {
            spec,
            f,
            mean,
            scale,
            weights: Some(weights),
            means: Some(means),
            factors: rest.get(..k * f).ok_or(INTERNAL)?,
        })
    }
}

// A value outside the state (never, by its layout) reads as NaN, which the
// writer refuses.
impl MixtureParams for Learned<'_> {
    fn spec(&self) -> Result<GmmSpec, Error> {
        Ok(self.spec)
    }
    fn weight(&self, c: usize) -> f64 {
        self.weights
            .map_or(Some(1.0), |w| w.get(c).copied())
            .unwrap_or(f64::NAN)
    }
    fn mean(&self, c: usize, i: usize) -> f64 {
        let d = self.spec.dim as usize;
        self.means
            .map_or(Some(0.0), |m| m.get(c * d + i).copied())
            .unwrap_or(f64::NAN)
    }
    fn precision_cholesky(&self, c: usize, i: usize, j: usize) -> f64 {
        let at = match self.spec.covariance {
            // U_ij = X_ji, stored in row j of the lower triangle.
            Covariance::Full | Covariance::Tied if i <= j => tri(j, i),
            Covariance::Diag | Covariance::Spherical if i == j => j,
            _ => return 0.0,
        };
        self.factors
            .get(c * self.f + at)
            .copied()
            .unwrap_or(f64::NAN)
    }
    fn standardizer(&self, i: usize) -> Option<(f64, f64)> {
        let value = |v: &[f64]| v.get(i).copied().unwrap_or(f64::NAN);
        Some((value(self.mean), value(self.scale)))
    }
}

/// Copies the first `into.len()` values of `from` into `into`.
fn copy(from: &[f64], into: &mut [f64]) -> Result<(), Error> {
    let from = from.get(..into.len()).ok_or(INTERNAL)?;
    for (slot, &v) in into.iter_mut().zip(from) {
        *slot = v;
    }
    Ok(())
}

mod em;
mod factor;
#[cfg(test)]
mod tests;
