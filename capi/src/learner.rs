//! Learning "normal" on the device from C: the runtime's `learn::Learner`
//! behind `tg_learner_*`, in the caller's buffers.

use core::mem::{MaybeUninit, align_of, size_of};
use core::ptr;

use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe};

use crate::{
    Result, TG_ERR_MISALIGNED, TG_ERR_NOT_OPEN, TG_ERR_NULL, check, disjoint, done, out, slice,
    slice_mut, span, status, tg_status, value,
};

/// Bytes of a `tg_learner`: enough for a learner on every target (checked
/// at compile time on each).
pub const TG_LEARNER_SIZE: usize = 512;

/// `TG_LEARNER_SIZE` in 8-byte words.
pub const TG_LEARNER_WORDS: usize = TG_LEARNER_SIZE / 8;

/// A detector learning on the device (`TG_LEARNER_SIZE` bytes, 8-byte
/// aligned, the caller's): started by `tg_learner_start` from a recipe
/// file (`tinygen fit detector --on-device-recipe`), fed inputs by
/// `tg_learner_observe`, and done when `tg_learner_file` gives the learned
/// detector file. It uses the buffers it was started with, which must stay
/// in place and be used by nothing else meanwhile; do not copy it.
#[repr(C)]
pub struct tg_learner {
    pub(crate) _opaque: [MaybeUninit<u64>; TG_LEARNER_WORDS],
}

/// The buffers a recipe's learner needs (`tg_learner_sizes`), and the
/// length of its inputs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tg_learner_memory {
    /// Values per input (a point, or a whole window).
    pub input_dim: usize,
    /// `double` values of the learner's state.
    pub state: usize,
    /// `float` values of stored features (0 for one component).
    pub features: usize,
    /// `float` values of calibration scores (three per calibration input
    /// for a pair of densities: both terms, and room to sort one).
    pub scores: usize,
    /// Bytes of the learned detector file (4-byte aligned buffer).
    pub file: usize,
}

/// Where a learner is (`tg_learner_observe`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tg_progress {
    /// Learning the density from the first inputs.
    TG_PROGRESS_LEARNING = 1,
    /// Scoring the next inputs to set the threshold.
    TG_PROGRESS_CALIBRATING = 2,
    /// The detector is learned: `tg_learner_file`.
    TG_PROGRESS_DONE = 3,
}

/// What a [`tg_learner`] holds: a marker that it is started, and the learner.
#[repr(C)]
struct Slot {
    started: u32,
    learner: MaybeUninit<Learner<'static>>,
}

/// [`Slot::started`] of a started learner.
const STARTED: u32 = 0x7467_6c6e;

const _: () = assert!(
    size_of::<Slot>() <= size_of::<tg_learner>() && align_of::<Slot>() <= align_of::<tg_learner>(),
    "TG_LEARNER_SIZE is too small for Learner on this target"
);

/// The recipe file `recipe[0..len]`, read.
///
/// # Safety
/// `recipe` is NULL or valid for reads of `len` bytes.
unsafe fn read_recipe(recipe: *const u8, len: usize) -> Result<Recipe> {
    if recipe.is_null() {
        return Err(TG_ERR_NULL);
    }
    // SAFETY: the caller's promise.
    Recipe::from_bytes(unsafe { slice(recipe, len) }?).map_err(status)
}

/// The buffers (and the input length) of the learner of the recipe file
/// `recipe[0..len]`.
///
/// # Safety
/// `recipe` is NULL or valid for reads of `len` bytes; `sizes` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_learner_sizes(
    recipe: *const u8,
    len: usize,
    sizes: *mut tg_learner_memory,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { recipe_sizes(recipe, len) }.and_then(|s| {
        // SAFETY: the caller's promise.
        *unsafe { out(sizes) }? = s;
        Ok(())
    }))
}

/// [`tg_learner_sizes`]'s value.
///
/// # Safety
/// As for [`tg_learner_sizes`].
unsafe fn recipe_sizes(bytes: *const u8, len: usize) -> Result<tg_learner_memory> {
    // SAFETY: the caller's promise.
    let spec = unsafe { read_recipe(bytes, len) }?.spec();
    let shape = status(tinygen_runtime::Error::InvalidShape(
        tinygen_runtime::Shape::Recipe,
    ));
    Ok(tg_learner_memory {
        input_dim: spec.input_len(),
        state: spec.state_len().ok_or(shape)?,
        features: spec.features_len().ok_or(shape)?,
        scores: spec.scores_len().ok_or(shape)?,
        file: spec.detector_len().map_err(status)?,
    })
}

/// Starts learning, into `l`, the detector the recipe file
/// `recipe[0..len]` describes, in the caller's buffers: `state` (`double`),
/// `features` and `scores` (`float`) and `file` (bytes, 4-byte aligned),
/// each at least as long as `tg_learner_sizes` says (NULL where that is 0)
/// and not overlapping. The recipe is read now and need not be kept. On
/// failure `l` is left unstarted.
///
/// # Safety
/// `l` is NULL or points to a writable `tg_learner`; each buffer is NULL
/// or valid for writes of its length for as long as `l` is used.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_learner_start(
    l: *mut tg_learner,
    recipe: *const u8,
    len: usize,
    state: *mut f64,
    n_state: usize,
    features: *mut f32,
    n_features: usize,
    scores: *mut f32,
    n_scores: usize,
    file: *mut u8,
    n_file: usize,
) -> tg_status {
    let slot = l.cast::<Slot>();
    if slot.is_null() {
        return TG_ERR_NULL;
    }
    if !slot.is_aligned() {
        return TG_ERR_MISALIGNED;
    }
    // SAFETY: non-NULL and aligned; the caller owns the tg_learner.
    unsafe { ptr::addr_of_mut!((*slot).started).write(0) };
    let start = || -> Result<()> {
        // SAFETY: the caller's promise.
        let recipe = unsafe { read_recipe(recipe, len) }?;
        check(state, n_state)?;
        check(features, n_features)?;
        check(scores, n_scores)?;
        check(file.cast::<u32>(), n_file.div_ceil(4))?;
        let ranges = [
            span(state, n_state),
            span(features, n_features),
            span(scores, n_scores),
            span(file, n_file),
            span(slot, 1),
        ];
        for (i, &range) in ranges.iter().enumerate() {
            disjoint(range, ranges.get(i + 1..).unwrap_or_default())?;
        }
        // SAFETY: checked above, and disjoint; the caller vouches for the lengths.
        let buffers = unsafe {
            Buffers {
                state: slice_mut(state, n_state)?,
                features: slice_mut(features, n_features)?,
                scores: slice_mut(scores, n_scores)?,
                file: slice_mut(file, n_file)?,
            }
        };
        let learner = Learner::new(&recipe, buffers).map_err(status)?;
        // SAFETY: `slot` is the caller's, checked; the learner first, then the marker.
        unsafe {
            ptr::addr_of_mut!((*slot).learner).write(MaybeUninit::new(learner));
            ptr::addr_of_mut!((*slot).started).write(STARTED);
        }
        Ok(())
    };
    done(start())
}

/// The started learner behind `l`.
///
/// # Safety
/// `l` is NULL or points to a `tg_learner` that is writable.
unsafe fn learner<'a>(l: *mut tg_learner) -> Result<&'a mut Learner<'static>> {
    // SAFETY: the caller's promise.
    let slot = unsafe { out(l.cast::<Slot>()) }?;
    if slot.started != STARTED {
        return Err(TG_ERR_NOT_OPEN);
    }
    // SAFETY: `tg_learner_start` wrote a learner before setting the marker.
    Ok(unsafe { slot.learner.assume_init_mut() })
}

/// The started learner behind `l`, to read.
///
/// # Safety
/// `l` is NULL or points to a readable `tg_learner`.
unsafe fn learner_ref<'a>(l: *const tg_learner) -> Result<&'a Learner<'static>> {
    // SAFETY: the caller's promise.
    let slot = unsafe { value(l.cast::<Slot>()) }?;
    if slot.started != STARTED {
        return Err(TG_ERR_NOT_OPEN);
    }
    // SAFETY: as in `learner`.
    Ok(unsafe { slot.learner.assume_init_ref() })
}

/// Takes the next input `x[0..n]` (`input_dim` values) and says where the
/// learner is after it (`progress` and `remaining`, the inputs to go in
/// that phase, each written when not NULL). A refused input (NaN or
/// infinite values, a wrong length) is its error and is not counted. The
/// input that completes learning may fail with `TG_ERR_NOT_POSITIVE_DEFINITE`
/// (collinear features with no regularisation, or a component that lost its
/// points); the learner then stays failed: start it again. Inputs after
/// `TG_PROGRESS_DONE` are ignored.
///
/// # Safety
/// `l` is NULL or points to a started `tg_learner`; `x` is NULL or valid
/// for reads of `n` values; `progress` and `remaining` are NULL or valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_learner_observe(
    l: *mut tg_learner,
    x: *const f32,
    n: usize,
    progress: *mut tg_progress,
    remaining: *mut usize,
) -> tg_status {
    // SAFETY: the caller's promises.
    let result = unsafe { learner(l) }.and_then(|learner| {
        // SAFETY: the caller's promise.
        let input = unsafe { slice(x, n) }?;
        // The outputs are checked before the input counts.
        check(progress.cast_const(), usize::from(!progress.is_null()))?;
        check(remaining.cast_const(), usize::from(!remaining.is_null()))?;
        let now = learner.observe(input).map_err(status)?;
        let (phase, left) = match now {
            Progress::Learning { remaining } => (tg_progress::TG_PROGRESS_LEARNING, remaining),
            Progress::Calibrating { remaining } => {
                (tg_progress::TG_PROGRESS_CALIBRATING, remaining)
            }
            Progress::Done => (tg_progress::TG_PROGRESS_DONE, 0),
        };
        if !progress.is_null() {
            // SAFETY: the caller's promise.
            *unsafe { out(progress) }? = phase;
        }
        if !remaining.is_null() {
            // SAFETY: the caller's promise.
            *unsafe { out(remaining) }? = left;
        }
        Ok(())
    });
    done(result)
}

/// The learned detector file, once done: `*file` points into the file
/// buffer given to `tg_learner_start` and `*len` is its length. Open it
/// with `tg_model_open` (a `TG_KIND_DETECTOR`), or store it and open it
/// after a reset. Before that, `TG_ERR_STILL_LEARNING` (or the error that
/// failed the learner).
///
/// # Safety
/// `l` is NULL or points to a started `tg_learner`; `file` and `len` are
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_learner_file(
    l: *const tg_learner,
    file: *mut *const u8,
    len: *mut usize,
) -> tg_status {
    // SAFETY: the caller's promises.
    let result = unsafe { learner_ref(l) }.and_then(|learner| {
        // SAFETY: the caller's promises.
        let (file, len) = unsafe { (out(file)?, out(len)?) };
        let bytes = learner.file().map_err(status)?;
        *file = bytes.as_ptr();
        *len = bytes.len();
        Ok(())
    });
    done(result)
}
