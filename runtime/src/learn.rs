//! Learning "normal" on the device: a detector that starts from a recipe
//! file and learns its density and its threshold from the first inputs
//! the device sees, with no heap.
//!
//! A recipe (kind [`ModelKind::Recipe`]) holds a detector's input
//! features and the hyper-parameters of its density: one Gaussian
//! (`components` = 1) with a full, tied (the same for one component),
//! diagonal or spherical covariance, the regularisation added to its
//! diagonal, the alarm rate, and how many inputs to learn from and to
//! calibrate on. A [`Learner`] then takes inputs one at a time:
//!
//! 1. **Learning** (the first `learn` inputs): the features of each input
//!    update, in f64, their running mean and co-moments (Welford's
//!    algorithm: one pass, no stored inputs).
//! 2. After the last of them the density is fixed: per feature the mean
//!    and the population standard deviation as the standardization (a
//!    constant feature gets scale 1, as scikit-learn's `StandardScaler`),
//!    the standardized covariance `C / n` plus `reg_covar` on its
//!    diagonal (diagonal: its diagonal; spherical: the diagonal's mean),
//!    its Cholesky factor and the inverse of that, in place. It is written
//!    as a detector file (threshold `f32::MAX`) into the caller's buffer.
//! 3. **Calibration** (the next `calibrate` inputs): each is scored by
//!    that file, as [`Detector::score`] scores it, into the caller's score
//!    buffer.
//! 4. The threshold is then set by [`threshold_at_rate`] (the trainer's
//!    rule) and the file is written again: a normal `detector/5` file that
//!    can be stored, read back after a reset, or pulled to the desktop.
//!
//! Every step is IEEE arithmetic (`+ - * /`, square roots) and `libm`'s
//! logarithm in a fixed order, so the host (`tinygen fit detector
//! --on-device-recipe`) and every device learn the same bytes.
//!
//! Bad input: an input with NaN or infinite values, or of the wrong
//! length, is refused with its error and not counted. A covariance that
//! is not positive definite (collinear features and `reg_covar` 0) fails
//! the input that completes learning with [`Error::NotPositiveDefinite`];
//! the learner then stays failed (start a new one). Calibration scores
//! that are NaN are refused like bad inputs; if the rate picks an
//! infinite score, the threshold is `f32::MAX`.
//!
//! Memory (the caller's): [`RecipeSpec::state_len`] f64 values (`2 D +
//! D (D + 1) / 2` for full, `3 D` for diagonal), `calibrate` f32 scores,
//! and [`RecipeSpec::detector_len`] bytes for the file, 4-byte aligned.
//!
//! Mixtures of several components are not learned on the device yet.

use serde::{Deserialize, Serialize};

use crate::detector::{self, DetectorSpec, Features, MAX_FEATURES, threshold_at_rate};
use crate::features::{STATS, window_stats};
use crate::format::{self, Header, ModelKind};
use crate::gmm::{Covariance, GmmSpec, MixtureParams, write_values};
use crate::{Detector, Error, Gmm, Shape};

const RECIPE: Error = Error::InvalidShape(Shape::Recipe);
const INTERNAL: Error = Error::InvalidShape(Shape::Internal);

/// Schema key of the recipe body.
pub const SCHEMA_KEY: u32 = format::schema_key(
    "recipe/1 spec{features:{identity, window_stats{channels:u32 length:u32}, \
     raw_window{channels:u32 length:u32}} dim:u32 \
     covariance:{full,tied,diag,spherical} components:u32 reg_covar:f64 alarm_rate:f64 \
     learn:u32 calibrate:u32} data: none",
);

/// What a detector learns on the device, and from how many inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecipeSpec {
    /// Input transformation, as in a detector.
    pub features: Features,
    /// Features per input: the density's dimension D.
    pub dim: u32,
    /// Covariance structure of the learned Gaussian.
    pub covariance: Covariance,
    /// Number of components; only 1 is learned today.
    pub components: u32,
    /// Added to the diagonal of the standardized covariance (at least 0).
    pub reg_covar: f64,
    /// Fraction of the calibration inputs allowed to alarm, in [0, 1).
    pub alarm_rate: f64,
    /// Inputs the density is learned from (at least 2).
    pub learn: u32,
    /// Inputs after those that set the threshold (at least 1).
    pub calibrate: u32,
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
        if d == 0 || self.components != 1 || self.learn < 2 || self.calibrate == 0 || !features_fit
        {
            return Err(RECIPE);
        }
        let reg_ok = self.reg_covar >= 0.0 && self.reg_covar.is_finite();
        if !(reg_ok && (0.0..1.0).contains(&self.alarm_rate)) {
            return Err(Error::ParameterOutOfRange);
        }
        self.state_len().ok_or(RECIPE)?;
        self.detector_len().map_err(|_| RECIPE)?;
        Ok(())
    }

    /// Values per input: a point, or a whole window.
    pub fn input_len(&self) -> usize {
        self.features
            .window()
            .map_or(self.dim as usize, |(channels, length)| channels * length)
    }

    /// f64 values of the learner's state: mean and scale (2 D), then the
    /// co-moments (the lower triangle, D (D + 1) / 2, when full or tied; D
    /// otherwise).
    pub fn state_len(&self) -> Option<usize> {
        let d = self.dim as usize;
        let moments = match self.covariance {
            Covariance::Full | Covariance::Tied => d.checked_mul(d.checked_add(1)?)? / 2,
            Covariance::Diag | Covariance::Spherical => d,
        };
        moments.checked_add(d.checked_mul(2)?)
    }

    /// The spec of the detector this recipe learns, with `threshold`.
    pub fn detector_spec(&self, threshold: f32) -> DetectorSpec {
        DetectorSpec {
            features: self.features,
            threshold,
            density_kind: ModelKind::Gmm,
            density: GmmSpec {
                dim: self.dim,
                components: self.components,
                covariance: self.covariance,
                standardized: true,
            },
            neural: None,
        }
    }

    /// Bytes of the learned detector file.
    pub fn detector_len(&self) -> Result<usize, Error> {
        let spec = self.detector_spec(f32::MAX);
        let values = spec.density.stored_values().ok_or(RECIPE)?;
        format::file_len(&spec, values)
    }

    /// Encodes the recipe as a model file of kind `recipe`.
    #[cfg(feature = "alloc")]
    pub fn encode(&self) -> Result<alloc::vec::Vec<u8>, Error> {
        self.check().map_err(|_| Error::InvalidParameters)?;
        format::write(ModelKind::Recipe, SCHEMA_KEY, self, &[])
    }
}

/// A recipe read from a model file.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    header: Header,
    spec: RecipeSpec,
}

impl Recipe {
    /// Parses and validates a recipe file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let (header, spec, data) =
            format::open(bytes)?.read_body::<RecipeSpec>(&[ModelKind::Recipe], SCHEMA_KEY)?;
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

/// A detector learning on the device from a [`Recipe`] (see the module
/// docs), in the caller's buffers.
#[derive(Debug)]
pub struct Learner<'b> {
    spec: RecipeSpec,
    state: &'b mut [f64],
    scores: &'b mut [f32],
    file: &'b mut [u8],
    learned: usize,
    calibrated: usize,
    file_len: usize,
    failed: Option<Error>,
}

impl<'b> Learner<'b> {
    /// A learner for `recipe` in the caller's buffers: `state` at least
    /// [`RecipeSpec::state_len`] values, `scores` at least `calibrate`,
    /// `file` at least [`RecipeSpec::detector_len`] bytes at a 4-byte
    /// aligned address (see [`crate::Aligned`]).
    pub fn new(
        recipe: &Recipe,
        state: &'b mut [f64],
        scores: &'b mut [f32],
        file: &'b mut [u8],
    ) -> Result<Self, Error> {
        let spec = recipe.spec;
        spec.check()?;
        let fits = |needed: usize, found: usize| {
            if found < needed {
                Err(Error::BufferTooSmall { needed, found })
            } else {
                Ok(())
            }
        };
        let state_len = spec.state_len().ok_or(RECIPE)?;
        fits(state_len, state.len())?;
        fits(spec.calibrate as usize, scores.len())?;
        fits(spec.detector_len()?, file.len())?;
        if file.as_ptr().align_offset(4) != 0 {
            return Err(Error::Misaligned);
        }
        let state = &mut state[..state_len];
        state.fill(0.0);
        Ok(Self {
            spec,
            state,
            scores: &mut scores[..spec.calibrate as usize],
            file,
            learned: 0,
            calibrated: 0,
            file_len: 0,
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
                self.learned += 1;
                if self.learned == self.spec.learn as usize {
                    if let Err(e) = self.fix_density() {
                        self.failed = Some(e);
                        return Err(e);
                    }
                    self.write(f32::MAX)?;
                }
            }
            Progress::Calibrating { .. } => {
                // What `Detector::score` computes, without parsing the
                // whole detector spec (a few KB of stack) for each input.
                let mut buf = [0.0f32; MAX_FEATURES];
                let features = self.features(input, &mut buf)?;
                let score = -self.density()?.log_density(features)?;
                if score.is_nan() {
                    return Err(Error::NonFiniteInput);
                }
                let slot = self.scores.get_mut(self.calibrated).ok_or(INTERNAL)?;
                *slot = score;
                self.calibrated += 1;
                if self.calibrated == self.scores.len() {
                    let threshold = threshold_at_rate(self.scores, self.spec.alarm_rate)?;
                    self.write(if threshold.is_finite() {
                        threshold
                    } else {
                        f32::MAX
                    })?;
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

    /// The density of the file written so far, read in place from its data
    /// (the last values before the CRC).
    fn density(&self) -> Result<Gmm<'_>, Error> {
        let file = self.file.get(..self.file_len).ok_or(INTERNAL)?;
        let header = format::read_header(file)?;
        let spec = self.spec.detector_spec(f32::MAX).density;
        let values = spec.stored_values().ok_or(INTERNAL)?;
        let end = file.len().checked_sub(format::CRC_LEN).ok_or(INTERNAL)?;
        let start = end.checked_sub(4 * values).ok_or(INTERNAL)?;
        let data = bytemuck::try_cast_slice(file.get(start..end).ok_or(INTERNAL)?)
            .map_err(|_| Error::Misaligned)?;
        Gmm::from_parts(header, ModelKind::Gmm, spec, data)
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
            Covariance::Full | Covariance::Tied => {
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
            Covariance::Diag | Covariance::Spherical => {
                for (((c, &di), &xj), &mj) in moments.iter_mut().zip(&*delta).zip(x).zip(&*mean) {
                    *c += di * (f64::from(xj) - mj);
                }
            }
        }
        Ok(())
    }

    /// Turns the moments into the scale and the precision's factor, in
    /// place (see the module docs).
    fn fix_density(&mut self) -> Result<(), Error> {
        let d = self.spec.dim as usize;
        let n = self.spec.learn as f64;
        let reg = self.spec.reg_covar;
        let (_, rest) = self.state.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let (scale, m) = rest.split_at_mut_checked(d).ok_or(INTERNAL)?;
        let triangular = matches!(self.spec.covariance, Covariance::Full | Covariance::Tied);
        // Entry (i, j), j <= i, of the packed lower triangle (or entry i of
        // the diagonal).
        let at = |i: usize, j: usize| if triangular { i * (i + 1) / 2 + j } else { i };
        let get = |m: &[f64], i: usize, j: usize| m.get(at(i, j)).copied().ok_or(INTERNAL);
        let set = |m: &mut [f64], i: usize, j: usize, v: f64| {
            m.get_mut(at(i, j)).map(|slot| *slot = v).ok_or(INTERNAL)
        };
        for (j, s) in scale.iter_mut().enumerate() {
            let std = libm::sqrt(get(m, j, j)? / n);
            *s = if std > 0.0 && std.is_finite() {
                std
            } else {
                1.0
            };
        }
        let scale = &*scale;
        let s = |i: usize| scale.get(i).copied().ok_or(INTERNAL);
        let positive = |v: f64| v > 0.0 && v.is_finite();
        match self.spec.covariance {
            Covariance::Full | Covariance::Tied => {
                for i in 0..d {
                    for j in 0..=i {
                        let mut c = get(m, i, j)? / n / (s(i)? * s(j)?);
                        if i == j {
                            c += reg;
                        }
                        set(m, i, j, c)?;
                    }
                }
                // Cholesky factor L (lower), column by column.
                for j in 0..d {
                    for i in j..d {
                        let mut sum = get(m, i, j)?;
                        for k in 0..j {
                            sum -= get(m, i, k)? * get(m, j, k)?;
                        }
                        if i == j {
                            if !positive(sum) {
                                return Err(Error::NotPositiveDefinite);
                            }
                            set(m, j, j, libm::sqrt(sum))?;
                        } else {
                            set(m, i, j, sum / get(m, j, j)?)?;
                        }
                    }
                }
                // Its inverse X, in place: X_jj = 1 / L_jj and, for i > j,
                // X_ij = -X_jj * sum_{k=j+1..i} X_ik L_kj (columns right
                // to left, rows bottom up, so each L_kj is read before it
                // is overwritten).
                for j in (0..d).rev() {
                    let inv = 1.0 / get(m, j, j)?;
                    for i in (j + 1..d).rev() {
                        let mut sum = 0.0;
                        for k in j + 1..=i {
                            sum += get(m, i, k)? * get(m, k, j)?;
                        }
                        set(m, i, j, -inv * sum)?;
                    }
                    set(m, j, j, inv)?;
                }
                if m.iter().any(|v| !v.is_finite()) {
                    return Err(Error::NotPositiveDefinite);
                }
            }
            Covariance::Diag => {
                for (c, s) in m.iter_mut().zip(scale) {
                    let var = *c / n / (s * s) + reg;
                    if !positive(var) {
                        return Err(Error::NotPositiveDefinite);
                    }
                    *c = 1.0 / libm::sqrt(var);
                }
            }
            Covariance::Spherical => {
                let mut sum = 0.0;
                for (c, s) in m.iter().zip(scale) {
                    sum += *c / n / (s * s) + reg;
                }
                let var = sum / d as f64;
                if !positive(var) {
                    return Err(Error::NotPositiveDefinite);
                }
                m.fill(1.0 / libm::sqrt(var));
            }
        }
        Ok(())
    }

    /// Writes the learned density as a detector file with `threshold`.
    fn write(&mut self, threshold: f32) -> Result<(), Error> {
        let spec = self.spec.detector_spec(threshold);
        let values = spec.density.stored_values().ok_or(RECIPE)?;
        let learned = Learned {
            spec: spec.density,
            state: self.state,
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
                write_values(&learned, out)
            },
        )?;
        self.file_len = len;
        Ok(())
    }
}

/// The learned Gaussian as the mixture writer reads it: weight 1, mean 0
/// in standardized units, the factor `U = Xᵀ` (or its diagonal).
struct Learned<'s> {
    spec: GmmSpec,
    state: &'s [f64],
}

impl MixtureParams for Learned<'_> {
    fn spec(&self) -> Result<GmmSpec, Error> {
        Ok(self.spec)
    }
    fn weight(&self, _c: usize) -> f64 {
        1.0
    }
    fn mean(&self, _c: usize, _i: usize) -> f64 {
        0.0
    }
    // A value outside the state (never, by its length) reads as NaN, which
    // the writer refuses.
    fn precision_cholesky(&self, _c: usize, i: usize, j: usize) -> f64 {
        let d = self.spec.dim as usize;
        let at = match self.spec.covariance {
            // U_ij = X_ji, stored at row j of the lower triangle.
            Covariance::Full | Covariance::Tied if i <= j => j * (j + 1) / 2 + i,
            Covariance::Diag | Covariance::Spherical if i == j => j,
            _ => return 0.0,
        };
        self.state.get(2 * d + at).copied().unwrap_or(f64::NAN)
    }
    fn standardizer(&self, i: usize) -> Option<(f64, f64)> {
        let d = self.spec.dim as usize;
        let value = |at: usize| self.state.get(at).copied().unwrap_or(f64::NAN);
        Some((value(i), value(d + i)))
    }
}

#[cfg(test)]
mod tests;
