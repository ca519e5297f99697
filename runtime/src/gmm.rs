//! Gaussian mixture log-density, read in place from a model file.
//!
//! The file stores the mixture in the form that scores fastest, precomputed
//! in f64 by the writer and rounded once to f32:
//!
//! ```text
//! log_norm    K        ln w_k - D/2 ln(2 pi) + ln det U_k
//! precision   full:    K x T(D), U_k's upper triangle in column blocks
//!             tied:    T(D), one U shared by all components
//!             diag, spherical: K x D, the diagonal of U_k
//! prec_mean   K x D    b_k = (mu_k + shift) U_k
//! mean, scale D, D     only when standardized (for reference)
//! ```
//!
//! Here `U_k` is the Cholesky factor of the precision (`precision = U Uᵀ`,
//! upper triangular, as scikit-learn keeps `precisions_cholesky_`) and then
//! `ln N(x | mu_k, Sigma_k) = log_norm_k - ½ |xᵀU_k - b_k|²`. When the model
//! was fitted on standardized data, `x' = (x - mean) / scale` is folded into
//! `U` (rows scaled by `1/scale`) and `b` (`shift = mean / scale`), so the
//! device scores raw sensor values at no extra cost and with no scratch
//! memory; the result is the log-density of the standardized point, as the
//! trainer reports it.
//!
//! The upper triangle is stored in blocks of four columns. A whole block
//! `c` (columns `4c..4c+4`, when `4c + 4 <= D`) holds rows `0..4c` row by
//! row, four values a row (`U[i][4c..4c+4]`), then the ten values of its
//! diagonal triangle row by row (`U[4c][4c..]`, `U[4c+1][4c+1..]`, ...).
//! When D is not a multiple of four, a last block holds the remaining one
//! to three columns for all D rows, four values a row, zero-padded. So
//! `T(D) = Σ_c (16c + 10) + 4D·[D mod 4 ≠ 0]`: exactly the D(D+1)/2 of the
//! triangle when 4 divides D (136 for D = 16). Scoring streams each block
//! once with no index arithmetic and loads every `x_i` once per four
//! products.

use serde::{Deserialize, Serialize};

use crate::format::{self, Header, ModelKind};
use crate::math::{Lanes, LogSumExp};
use crate::{Error, Shape};

#[cfg(tinygen_vfp)]
mod vfp;

/// Covariance structure of a mixture, with scikit-learn's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Covariance {
    /// A full covariance matrix per component.
    Full,
    /// One full covariance matrix shared by all components.
    Tied,
    /// A diagonal covariance matrix per component.
    Diag,
    /// A single variance per component.
    Spherical,
}

impl Covariance {
    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Covariance::Full => "full",
            Covariance::Tied => "tied",
            Covariance::Diag => "diag",
            Covariance::Spherical => "spherical",
        }
    }
}

/// Metadata of a stored mixture: everything needed to locate its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GmmSpec {
    /// Dimension D of a data point.
    pub dim: u32,
    /// Number of components K.
    pub components: u32,
    /// Covariance structure that was fitted.
    pub covariance: Covariance,
    /// Whether the model includes a standardization of raw inputs.
    pub standardized: bool,
}

/// Schema key of the GMM body (changes whenever [`GmmSpec`] or the layout does).
pub const SCHEMA_KEY: u32 = format::schema_key(
    "gmm/1 spec{dim:u32 components:u32 covariance:{full,tied,diag,spherical} standardized:bool} \
     data:f32[log_norm K; precision full K*T(D) | tied T(D) (4-column blocks) | diag,spherical K*D; \
     prec_mean K*D; if standardized: mean D, scale D]",
);

impl GmmSpec {
    /// Number of f32 values in one component's (or the shared) precision factor.
    fn precision_block(&self) -> Option<usize> {
        let d = self.dim as usize;
        match self.covariance {
            Covariance::Full | Covariance::Tied => {
                // Σ_{c<m} (16c + 10) = 8m(m - 1) + 10m over the m whole
                // blocks, in closed form: no work grows with a claimed D.
                let m = d / 4;
                let whole = m
                    .checked_mul(m.saturating_sub(1))?
                    .checked_mul(8)?
                    .checked_add(m.checked_mul(10)?)?;
                whole.checked_add(if d.is_multiple_of(4) {
                    0
                } else {
                    d.checked_mul(4)?
                })
            }
            Covariance::Diag | Covariance::Spherical => Some(d),
        }
    }

    /// Lengths of (log_norm, precision, prec_mean, standardizer) in f32 values.
    fn lengths(&self) -> Option<[usize; 4]> {
        let d = self.dim as usize;
        let k = self.components as usize;
        let block = self.precision_block()?;
        let precision = match self.covariance {
            Covariance::Tied => block,
            _ => block.checked_mul(k)?,
        };
        let kd = k.checked_mul(d)?;
        let standardizer = if self.standardized {
            d.checked_mul(2)?
        } else {
            0
        };
        Some([k, precision, kd, standardizer])
    }

    /// Total number of stored f32 values, if the spec is valid.
    pub fn stored_values(&self) -> Option<usize> {
        if self.dim == 0 || self.components == 0 {
            return None;
        }
        self.lengths()?
            .iter()
            .try_fold(0usize, |acc, &n| acc.checked_add(n))
    }
}

const DATA_LENGTH: Error = Error::InvalidShape(Shape::DataLength);

/// A Gaussian mixture borrowed from a model file; scoring needs no buffers.
///
/// ```
/// # #[cfg(feature = "alloc")] {
/// use tinygen_runtime::gmm::{Covariance, GmmParams};
/// use tinygen_runtime::{Aligned, Gmm};
///
/// // A 1-D standard normal, encoded (trainer side) then parsed in place.
/// let bytes = GmmParams {
///     covariance: Covariance::Diag,
///     dim: 1,
///     weights: &[1.0],
///     means: &[0.0],
///     precisions_cholesky: &[1.0],
///     standardizer: None,
/// }
/// .encode()
/// .unwrap();
/// // Weights are read where they are, so the file must sit 4-byte aligned.
/// let mut flash = Aligned([0u8; 128]);
/// flash.0[..bytes.len()].copy_from_slice(&bytes);
/// let gmm = Gmm::from_bytes(&flash.0[..bytes.len()]).unwrap();
/// let expected = -0.5 * (2.0 * core::f32::consts::PI).ln();
/// assert!((gmm.log_density(&[0.0]).unwrap() - expected).abs() < 1e-6);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Gmm<'a> {
    header: Header,
    kind: ModelKind,
    spec: GmmSpec,
    log_norm: &'a [f32],
    precision: &'a [f32],
    prec_mean: &'a [f32],
    standardizer: &'a [f32],
    /// f32 values of one component's precision factor.
    precision_stride: usize,
}

impl<'a> Gmm<'a> {
    /// Parses and validates a GMM or KDE model file without copying its weights.
    ///
    /// The bytes must start at a 4-byte aligned address (see [`crate::Aligned`]).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_file(format::open(bytes)?)
    }

    /// Parses a checked file (see [`format::File`]).
    pub(crate) fn from_file(file: format::File<'a>) -> Result<Self, Error> {
        let (header, spec, data) =
            file.read_body::<GmmSpec>(&[ModelKind::Gmm, ModelKind::Kde], SCHEMA_KEY)?;
        Self::from_parts(header, header.kind, spec, data)
    }

    /// Validates a mixture whose spec and weights were read from a file
    /// (its own, or a detector's that embeds it).
    pub(crate) fn from_parts(
        header: Header,
        kind: ModelKind,
        spec: GmmSpec,
        data: &'a [f32],
    ) -> Result<Self, Error> {
        if !matches!(kind, ModelKind::Gmm | ModelKind::Kde) {
            return Err(Error::InvalidShape(Shape::PartKind));
        }
        if spec.dim == 0 || spec.components == 0 {
            return Err(Error::InvalidShape(Shape::Empty));
        }
        let total = spec.stored_values().ok_or(DATA_LENGTH)?;
        if total != data.len() {
            return Err(DATA_LENGTH);
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteParameter);
        }
        let [k, p, kd, _] = spec.lengths().ok_or(DATA_LENGTH)?;
        let (log_norm, rest) = data.split_at_checked(k).ok_or(DATA_LENGTH)?;
        let (precision, rest) = rest.split_at_checked(p).ok_or(DATA_LENGTH)?;
        let (prec_mean, standardizer) = rest.split_at_checked(kd).ok_or(DATA_LENGTH)?;
        Ok(Self {
            header,
            kind,
            spec,
            log_norm,
            precision,
            prec_mean,
            standardizer,
            precision_stride: spec.precision_block().ok_or(DATA_LENGTH)?,
        })
    }

    /// Whether this is a fitted mixture or a kernel density estimate.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The model's metadata.
    pub fn spec(&self) -> GmmSpec {
        self.spec
    }

    /// The checked file header (including its CRC).
    pub fn header(&self) -> Header {
        self.header
    }

    /// Dimension D of an input point.
    pub fn dim(&self) -> usize {
        self.spec.dim as usize
    }

    /// Number of components K.
    pub fn components(&self) -> usize {
        self.spec.components as usize
    }

    /// Number of f32 parameters stored in the file.
    pub fn stored_values(&self) -> usize {
        self.log_norm.len() + self.precision.len() + self.prec_mean.len() + self.standardizer.len()
    }

    /// Multiply-accumulates of one [`Self::log_density`] call, its cost
    /// apart from `K` exponentials and one logarithm (the log-sum-exp):
    /// `K (T + D)` for full covariances (`T` the stored precision values per
    /// component, see the module docs), `T + K D` for tied ones, `2 K D` for
    /// diagonal and spherical ones. [`Self::log_responsibilities`] costs the
    /// same plus `K` more exponentials.
    pub fn macs(&self) -> usize {
        let (d, k) = (self.dim(), self.components());
        match self.spec.covariance {
            Covariance::Full | Covariance::Tied => self.precision.len() + k * d,
            Covariance::Diag | Covariance::Spherical => 2 * k * d,
        }
    }

    /// The standardization `(mean, scale)` applied to raw inputs, if any.
    pub fn standardizer(&self) -> Option<(&'a [f32], &'a [f32])> {
        if self.standardizer.is_empty() {
            None
        } else {
            self.standardizer.split_at_checked(self.dim())
        }
    }

    /// Calls `f` with `ln w_k + ln N(x | mu_k, Sigma_k)` for every component
    /// k in order, for points side by side in [`Lanes`]: the kernel of
    /// [`Self::log_density`] without its input checks and log-sum-exp, for
    /// callers that score several points at once (the host's fast path).
    /// Each lane's values are bit for bit those [`Self::log_density`] sums;
    /// non-finite inputs give meaningless values, not an error.
    #[inline]
    pub fn component_log_densities<T: Lanes>(
        &self,
        x: &[T],
        f: impl FnMut(T),
    ) -> Result<(), Error> {
        if x.len() != self.dim() {
            return Err(Error::DimensionMismatch {
                expected: self.dim(),
                found: x.len(),
            });
        }
        self.for_each_component(x, f);
        Ok(())
    }

    /// [`Self::component_log_densities`] for a checked `x`.
    #[inline]
    fn for_each_component<T: Lanes>(&self, x: &[T], mut f: impl FnMut(T)) {
        let (d, stride) = (self.dim(), self.precision_stride);
        if d == 0 || stride == 0 {
            return; // never: parsing rejects empty models
        }
        let means = self.prec_mean.chunks_exact(d).zip(self.log_norm);
        match self.spec.covariance {
            Covariance::Full => {
                for ((b, &norm), u) in means.zip(self.precision.chunks_exact(stride)) {
                    f(T::splat(norm) - triangular_distance(x, u, b) * 0.5);
                }
            }
            Covariance::Tied => tied_components(x, self.precision, means, squared_distance, f),
            Covariance::Diag | Covariance::Spherical => {
                for ((b, &norm), p) in means.zip(self.precision.chunks_exact(d)) {
                    f(T::splat(norm) - diagonal_distance(x, p, b) * 0.5);
                }
            }
        }
    }

    fn check_input(&self, x: &[f32]) -> Result<(), Error> {
        if x.len() != self.dim() {
            return Err(Error::DimensionMismatch {
                expected: self.dim(),
                found: x.len(),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        Ok(())
    }

    /// [`Self::for_each_component`] for one point. On Arm cores with an
    /// FPU, full and tied covariances (and KDEs) take the assembly kernels
    /// of `gmm/vfp.rs` (the same operations in the same order).
    #[inline]
    fn for_each_component_f32(&self, x: &[f32], f: impl FnMut(f32)) {
        #[cfg(tinygen_vfp)]
        if matches!(self.spec.covariance, Covariance::Full | Covariance::Tied) {
            let mut f = f;
            let (d, stride) = (self.dim(), self.precision_stride);
            if d == 0 || stride == 0 {
                return; // never: parsing rejects empty models
            }
            let means = self.prec_mean.chunks_exact(d).zip(self.log_norm);
            if self.spec.covariance == Covariance::Tied {
                tied_components(x, self.precision, means, vfp::squared_distance, f);
                return;
            }
            for ((b, &norm), u) in means.zip(self.precision.chunks_exact(stride)) {
                f(norm - full_distance(x, u, b) * 0.5);
            }
            return;
        }
        self.for_each_component(x, f)
    }

    /// Natural-log density of one point (scikit-learn's `score_samples`).
    pub fn log_density(&self, x: &[f32]) -> Result<f32, Error> {
        self.check_input(x)?;
        let mut acc = LogSumExp::new();
        self.for_each_component_f32(x, |v| acc.push(v));
        Ok(acc.finish())
    }

    /// Writes each component's log-responsibility `ln p(k | x)` into `out`
    /// (length K) and returns the log-density of `x`.
    pub fn log_responsibilities(&self, x: &[f32], out: &mut [f32]) -> Result<f32, Error> {
        self.check_input(x)?;
        if out.len() != self.components() {
            return Err(Error::DimensionMismatch {
                expected: self.components(),
                found: out.len(),
            });
        }
        let mut slots = out.iter_mut();
        self.for_each_component_f32(x, |v| {
            if let Some(slot) = slots.next() {
                *slot = v;
            }
        });
        let total = LogSumExp::of(out);
        for slot in out.iter_mut() {
            *slot -= total;
        }
        Ok(total)
    }

    /// Scores `points` (row-major, N x D) into `out` (length N).
    pub fn log_density_batch(&self, points: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let d = self.dim();
        if points.len() != out.len() * d {
            return Err(Error::DimensionMismatch {
                expected: out.len() * d,
                found: points.len(),
            });
        }
        for (x, slot) in points.chunks_exact(d.max(1)).zip(out.iter_mut()) {
            *slot = self.log_density(x)?;
        }
        Ok(())
    }
}

/// Tied covariance (and KDE): one projection `xᵀU` serves every component.
/// Kept out of line so that only tied models pay for its stack buffer.
#[inline(never)]
fn tied_components<'m, T: Lanes>(
    x: &[T],
    blocks: &[f32],
    means: impl Iterator<Item = (&'m [f32], &'m f32)>,
    distance: impl Fn(&[T], &[f32]) -> T,
    mut f: impl FnMut(T),
) {
    let mut buffer = [T::ZERO; PROJECT_MAX_DIM];
    if let Some(z) = buffer.get_mut(..x.len()) {
        let mut slots = z.iter_mut();
        project(
            x,
            blocks,
            #[inline(always)]
            |a, n| {
                for (&aj, slot) in a.iter().take(n).zip(slots.by_ref()) {
                    *slot = aj;
                }
            },
        );
        for (b, &norm) in means {
            f(T::splat(norm) - distance(z, b) * 0.5);
        }
    } else {
        for (b, &norm) in means {
            f(T::splat(norm) - triangular_distance(x, blocks, b) * 0.5);
        }
    }
}

/// Largest dimension for which a tied mixture (or a KDE) projects the input
/// once into a stack buffer instead of once per component.
const PROJECT_MAX_DIM: usize = 64;

/// `|xᵀU - b|²` for upper-triangular `U` stored in blocks of four columns
/// (see the module docs). Inlined into its callers, so that the host's fast
/// path compiles it for its vector instruction set.
#[inline(always)]
fn triangular_distance<T: Lanes>(x: &[T], blocks: &[f32], b: &[f32]) -> T {
    let mut sq = T::ZERO;
    let (whole, partial) = b.as_chunks::<4>();
    let mut whole = whole.iter();
    project(
        x,
        blocks,
        #[inline(always)]
        |[a0, a1, a2, a3], n| {
            if n == 4 {
                if let Some(&[b0, b1, b2, b3]) = whole.next() {
                    let (y0, y1, y2, y3) = (a0 - b0, a1 - b1, a2 - b2, a3 - b3);
                    sq += y0 * y0;
                    sq += y1 * y1;
                    sq += y2 * y2;
                    sq += y3 * y3;
                }
            } else {
                for (&aj, &bj) in [a0, a1, a2].iter().zip(partial) {
                    let y = aj - bj;
                    sq += y * y;
                }
            }
        },
    );
    sq
}

/// `Σ_j (z_j - b_j)²`, summed in ascending `j` like [`triangular_distance`].
#[inline(always)]
fn squared_distance<T: Lanes>(z: &[T], b: &[f32]) -> T {
    let mut sq = T::ZERO;
    for (&zj, &bj) in z.iter().zip(b) {
        let y = zj - bj;
        sq += y * y;
    }
    sq
}

/// Calls `emit(a, n)` for each block of columns in order, with
/// `a[..n]` = `(xᵀU)_j = Σ_i x_i U[i][j]` for the block's `n` columns
/// (four, except in a last partial block).
///
/// Columns are taken four at a time so that each `x_i` is loaded once per
/// four products; every column's sum runs over ascending `i`, exactly as a
/// column-by-column dot product would (the stored zeros add exact zeros).
#[inline(always)]
fn project<T: Lanes>(x: &[T], blocks: &[f32], mut emit: impl FnMut([T; 4], usize)) {
    let d = x.len();
    let mut rest = blocks;
    let x4 = x.as_chunks::<4>().0;
    for (c, &[x0, x1, x2, x3]) in x4.iter().enumerate() {
        // Block c: rows 0..4c in groups of four (16 values a group), then
        // the diagonal triangle. Lengths are validated at parse time, so
        // the `else` is unreachable.
        let Some((groups, tail)) = rest.split_at_checked(16 * c) else {
            return;
        };
        let Some((&[t0, t1, t2, t3, t4, t5, t6, t7, t8, t9], tail)) =
            tail.split_first_chunk::<10>()
        else {
            return;
        };
        rest = tail;
        let (mut a0, mut a1, mut a2, mut a3) = (T::ZERO, T::ZERO, T::ZERO, T::ZERO);
        for (xs, u) in x4.iter().zip(groups.as_chunks::<16>().0) {
            for r in 0..4 {
                a0 += xs[r] * u[4 * r];
                a1 += xs[r] * u[4 * r + 1];
                a2 += xs[r] * u[4 * r + 2];
                a3 += xs[r] * u[4 * r + 3];
            }
        }
        a0 += x0 * t0;
        a1 += x0 * t1;
        a2 += x0 * t2;
        a3 += x0 * t3;
        a1 += x1 * t4;
        a2 += x1 * t5;
        a3 += x1 * t6;
        a2 += x2 * t7;
        a3 += x2 * t8;
        a3 += x3 * t9;
        emit([a0, a1, a2, a3], 4);
    }
    let remaining = d % 4;
    if remaining != 0 {
        emit(partial_block(x, rest), remaining);
    }
}

/// The last, narrower block (all D rows, the remaining 1 to 3 columns,
/// zero-padded to four) of `xᵀU`, from `rest`, the stored values after the
/// whole blocks.
#[inline(always)]
fn partial_block<T: Lanes>(x: &[T], rest: &[f32]) -> [T; 4] {
    let mut acc = [T::ZERO; 4];
    for (&xi, u) in x.iter().zip(rest.as_chunks::<4>().0) {
        for (a, &uc) in acc.iter_mut().zip(u) {
            *a += xi * uc;
        }
    }
    acc
}

/// [`triangular_distance`] on Arm cores with an FPU: the whole blocks
/// through the assembly kernel, the partial one as [`project`] does.
#[cfg(tinygen_vfp)]
#[inline]
fn full_distance(x: &[f32], blocks: &[f32], b: &[f32]) -> f32 {
    let Some((mut sq, rest)) = vfp::whole_blocks(x, blocks, b) else {
        return triangular_distance(x, blocks, b);
    };
    let (_, partial) = b.as_chunks::<4>();
    for (&aj, &bj) in partial_block(x, rest).iter().zip(partial) {
        let y = aj - bj;
        sq += y * y;
    }
    sq
}

/// `Σ_d (x_d p_d - b_d)²` for a diagonal precision factor `p`.
#[inline(always)]
fn diagonal_distance<T: Lanes>(x: &[T], p: &[f32], b: &[f32]) -> T {
    let mut sq = T::ZERO;
    for ((&xd, &pd), &bd) in x.iter().zip(p).zip(b) {
        let y = xd * pd - bd;
        sq += y * y;
    }
    sq
}

#[cfg(feature = "alloc")]
pub use encode::{GmmParams, Standardizer};

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::{Covariance, GmmSpec, MixtureParams, write_values};
    use crate::Error;
    use crate::format::{self, ModelKind};

    /// Affine standardization `x' = (x - mean) / scale` of raw inputs.
    #[derive(Debug, Clone, Copy)]
    pub struct Standardizer<'p> {
        /// Per-feature mean (length D).
        pub mean: &'p [f64],
        /// Per-feature scale, all positive (length D).
        pub scale: &'p [f64],
    }

    /// A fitted mixture in scikit-learn's parametrisation, ready to encode.
    #[derive(Debug, Clone, Copy)]
    pub struct GmmParams<'p> {
        /// Covariance structure.
        pub covariance: Covariance,
        /// Dimension D.
        pub dim: usize,
        /// Mixture weights (length K, positive).
        pub weights: &'p [f64],
        /// Component means, row-major K x D.
        pub means: &'p [f64],
        /// Cholesky factors of the precisions, scikit-learn's
        /// `precisions_cholesky_`: full K x D x D (row-major, upper
        /// triangular), tied D x D, diag K x D, spherical K.
        pub precisions_cholesky: &'p [f64],
        /// Standardization of raw inputs the model was fitted after, if any.
        pub standardizer: Option<Standardizer<'p>>,
    }

    impl GmmParams<'_> {
        /// Encodes the mixture as a `.tgm` model file of kind `gmm`.
        pub fn encode(&self) -> Result<Vec<u8>, Error> {
            self.encode_as(ModelKind::Gmm)
        }

        /// Encodes the mixture as a model file of the given kind (`gmm`, or
        /// `kde` for a kernel density estimate written as a tied mixture).
        pub fn encode_as(&self, kind: ModelKind) -> Result<Vec<u8>, Error> {
            if !matches!(kind, ModelKind::Gmm | ModelKind::Kde) {
                return Err(Error::InvalidParameters);
            }
            let (spec, data) = self.stored()?;
            format::write(kind, super::SCHEMA_KEY, &spec, &data)
        }

        /// The spec and the f32 values a file stores for this mixture.
        pub(crate) fn stored(&self) -> Result<(GmmSpec, Vec<f32>), Error> {
            let d = self.dim;
            let k = self.weights.len();
            let expected_precision = match self.covariance {
                Covariance::Full => k * d * d,
                Covariance::Tied => d * d,
                Covariance::Diag => k * d,
                Covariance::Spherical => k,
            };
            let consistent = d > 0
                && k > 0
                && self.means.len() == k * d
                && self.precisions_cholesky.len() == expected_precision
                && self
                    .standardizer
                    .is_none_or(|s| s.mean.len() == d && s.scale.len() == d);
            if !consistent {
                return Err(Error::InvalidParameters);
            }
            let spec = self.spec()?;
            let mut data = alloc::vec![0.0; spec.stored_values().ok_or(Error::InvalidParameters)?];
            write_values(self, &mut data)?;
            Ok((spec, data))
        }
    }

    impl MixtureParams for GmmParams<'_> {
        fn spec(&self) -> Result<GmmSpec, Error> {
            Ok(GmmSpec {
                dim: u32::try_from(self.dim).map_err(|_| Error::InvalidParameters)?,
                components: u32::try_from(self.weights.len())
                    .map_err(|_| Error::InvalidParameters)?,
                covariance: self.covariance,
                standardized: self.standardizer.is_some(),
            })
        }
        fn weight(&self, c: usize) -> f64 {
            self.weights[c]
        }
        fn mean(&self, c: usize, i: usize) -> f64 {
            self.means[c * self.dim + i]
        }
        fn precision_cholesky(&self, c: usize, i: usize, j: usize) -> f64 {
            let d = self.dim;
            match self.covariance {
                Covariance::Full => self.precisions_cholesky[c * d * d + i * d + j],
                Covariance::Tied => self.precisions_cholesky[i * d + j],
                Covariance::Diag if i == j => self.precisions_cholesky[c * d + i],
                Covariance::Spherical if i == j => self.precisions_cholesky[c],
                _ => 0.0,
            }
        }
        fn standardizer(&self, i: usize) -> Option<(f64, f64)> {
            self.standardizer.map(|s| (s.mean[i], s.scale[i]))
        }
    }
}

/// A mixture in scikit-learn's parametrisation, as [`write_values`] reads
/// it: the trainer's [`GmmParams`] or a density learned on the device.
pub(crate) trait MixtureParams {
    /// The stored spec (dimension, components, covariance, standardized).
    fn spec(&self) -> Result<GmmSpec, Error>;
    /// Weight of component `c`.
    fn weight(&self, c: usize) -> f64;
    /// Coordinate `i` of component `c`'s mean (standardized units).
    fn mean(&self, c: usize, i: usize) -> f64;
    /// Entry `(i, j)`, `i <= j`, of component `c`'s upper Cholesky factor
    /// of the precision (the shared one when tied; zero off the diagonal
    /// when diagonal or spherical).
    fn precision_cholesky(&self, c: usize, i: usize, j: usize) -> f64;
    /// Mean and scale of raw feature `i`, when standardized.
    fn standardizer(&self, i: usize) -> Option<(f64, f64)>;
}

/// Computes the values a file stores for `params` (see the module docs) in
/// f64, rounds each once to f32 and writes them to `out`
/// ([`GmmSpec::stored_values`] long). `InvalidParameters` if one is not
/// finite or a scale is not positive.
pub(crate) fn write_values(params: &impl MixtureParams, out: &mut [f32]) -> Result<(), Error> {
    let spec = params.spec()?;
    let (d, k, covariance) = (spec.dim as usize, spec.components as usize, spec.covariance);
    let [_, precision_len, _, _] = spec.lengths().ok_or(Error::InvalidParameters)?;
    if d == 0 || k == 0 || spec.stored_values() != Some(out.len()) {
        return Err(Error::InvalidParameters);
    }
    let bad = Error::InvalidParameters;
    let (log_norm, rest) = out.split_at_mut_checked(k).ok_or(bad)?;
    let (precision, rest) = rest.split_at_mut_checked(precision_len).ok_or(bad)?;
    let (prec_mean, standardizer) = rest.split_at_mut_checked(k * d).ok_or(bad)?;
    let mut precision = precision.iter_mut();
    let mut prec_mean = prec_mean.iter_mut();
    let mut failed = false;
    let mut put = |slot: Option<&mut f32>, value: f64| {
        let rounded = value as f32;
        failed |= !value.is_finite() || !rounded.is_finite();
        if let Some(slot) = slot {
            *slot = rounded;
        }
    };

    // Raw x maps to standardized x' = x * inv_scale - shift.
    let inv_scale = |i: usize| params.standardizer(i).map_or(1.0, |(_, s)| 1.0 / s);
    let shift = |i: usize| params.standardizer(i).map_or(0.0, |(m, s)| m / s);
    let half_log_2pi = 0.5 * d as f64 * libm::log(2.0 * core::f64::consts::PI);
    let triangular = matches!(covariance, Covariance::Full | Covariance::Tied);
    for (c, log_norm) in log_norm.iter_mut().enumerate() {
        let u = |i: usize, j: usize| params.precision_cholesky(c, i, j);
        let log_det: f64 = (0..d).map(|j| libm::log(u(j, j))).sum();
        put(
            Some(log_norm),
            libm::log(params.weight(c)) - half_log_2pi + log_det,
        );
        for j in 0..d {
            let rows = if triangular { 0..j + 1 } else { j..j + 1 };
            let b = rows
                .map(|i| (params.mean(c, i) + shift(i)) * u(i, j))
                .sum::<f64>();
            put(prec_mean.next(), b);
        }
        let scaled = |i: usize, j: usize| if j < d { inv_scale(i) * u(i, j) } else { 0.0 };
        match covariance {
            Covariance::Full | Covariance::Tied if covariance == Covariance::Full || c == 0 => {
                // Whole blocks: rows 0..4c four values a row, then the
                // diagonal triangle; a partial last block: all rows.
                for block in 0..d.div_ceil(4) {
                    let columns = 4 * block..4 * block + 4;
                    let whole = 4 * block + 4 <= d;
                    let square_rows = if whole { 4 * block } else { d };
                    for i in 0..square_rows {
                        for j in columns.clone() {
                            put(precision.next(), scaled(i, j));
                        }
                    }
                    if whole {
                        for i in columns.clone() {
                            for j in i..4 * block + 4 {
                                put(precision.next(), scaled(i, j));
                            }
                        }
                    }
                }
            }
            Covariance::Diag | Covariance::Spherical => {
                for j in 0..d {
                    put(precision.next(), scaled(j, j));
                }
            }
            _ => {}
        }
    }
    let mut bad_scale = false;
    if spec.standardized {
        let (means, scales) = standardizer.split_at_mut_checked(d).ok_or(bad)?;
        for (i, (m, s)) in means.iter_mut().zip(scales).enumerate() {
            let Some((mean, scale)) = params.standardizer(i) else {
                return Err(Error::InvalidParameters);
            };
            bad_scale |= scale <= 0.0;
            put(Some(m), mean);
            put(Some(s), scale);
        }
    }
    if failed || bad_scale || precision.next().is_some() || prec_mean.next().is_some() {
        return Err(Error::InvalidParameters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_form_block_count_is_the_sum_over_blocks() {
        for d in 1..300u32 {
            let spec = GmmSpec {
                dim: d,
                components: 1,
                covariance: Covariance::Full,
                standardized: false,
            };
            let d = d as usize;
            let whole: usize = (0..d / 4).map(|c| 16 * c + 10).sum();
            let tail = if d.is_multiple_of(4) { 0 } else { 4 * d };
            assert_eq!(spec.precision_block(), Some(whole + tail), "D = {d}");
            if d.is_multiple_of(4) {
                assert_eq!(whole, d * (d + 1) / 2);
            }
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn macs_follow_the_documented_formula() {
        use alloc::vec::Vec;
        for (covariance, d, k, expected) in [
            (Covariance::Full, 16, 8, 8 * (136 + 16)),
            (Covariance::Full, 5, 2, 2 * (30 + 5)),
            (Covariance::Tied, 5, 3, 30 + 3 * 5),
            (Covariance::Diag, 16, 8, 2 * 8 * 16),
            (Covariance::Spherical, 3, 4, 2 * 4 * 3),
        ] {
            let factor = match covariance {
                Covariance::Full => k * d * d,
                Covariance::Tied => d * d,
                Covariance::Diag => k * d,
                Covariance::Spherical => k,
            };
            let mut chol = alloc::vec![0.0; factor];
            let square = matches!(covariance, Covariance::Full | Covariance::Tied);
            for (i, v) in chol.iter_mut().enumerate() {
                if !square || i % (d * d) % (d + 1) == 0 {
                    *v = 1.0;
                }
            }
            let weights: Vec<f64> = alloc::vec![1.0 / k as f64; k];
            let bytes = GmmParams {
                covariance,
                dim: d,
                weights: &weights,
                means: &alloc::vec![0.0; k * d],
                precisions_cholesky: &chol,
                standardizer: None,
            }
            .encode()
            .unwrap();
            let mut words = alloc::vec![0u32; bytes.len().div_ceil(4)];
            bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
            let file = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
            let gmm = Gmm::from_bytes(file).unwrap();
            assert_eq!(gmm.macs(), expected, "{covariance:?} D = {d} K = {k}");
        }
    }
}
