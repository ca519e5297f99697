//! The C API of the tinygen runtime: `include/tinygen.h` (generated from
//! this file by cbindgen) and the static library `libtinygen_capi.a`.
//!
//! Every function takes raw pointers from C and checks them before use: a
//! NULL pointer, a misaligned buffer, a wrong length, a model of the wrong
//! kind or a scratch buffer that is too small is a [`tg_status`] error code,
//! never a crash. Nothing allocates and nothing is global: a [`tg_model`]
//! is memory the caller owns (on the stack or in a static) that holds the
//! parsed model, and the model's weights stay in the caller's byte array
//! (flash), read in place.
//!
//! Built with `--profile capi` (LTO, `panic = "abort"`) the library has no
//! reachable panic: its panic handler calls a function that does not exist,
//! so the archive references that symbol only if some exported function
//! can reach a panic (checked by `tests/tests/capi.rs`).
#![no_std]
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

// A host build with unwinding (`cargo build`, `cargo clippy`) takes std's
// panic runtime; `--profile capi` and every microcontroller target abort,
// and use the handler below.
#[cfg(any(test, panic = "unwind"))]
extern crate std;

use core::ffi::{c_char, c_void};
use core::mem::{MaybeUninit, align_of, size_of};
use core::ptr;

use tinygen_runtime::diffusion::Sampler;
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{AnyModel, Error, ModelKind, Xoshiro128PlusPlus, format};

/// Status code of every call: `TG_OK` (0) or an error, which
/// `tg_strerror` describes.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tg_status {
    /// Success.
    TG_OK = 0,
    /// A pointer the call needs is NULL.
    TG_ERR_NULL = 1,
    /// A pointer is not aligned: model bytes, float buffers and scratch
    /// need 4 bytes, a `tg_model` its type's alignment.
    TG_ERR_MISALIGNED = 2,
    /// The `tg_model` was not opened by `tg_model_open` (the `tg_learner`
    /// not started by `tg_learner_start`), or that failed.
    TG_ERR_NOT_OPEN = 3,
    /// The model's kind does not support this call.
    TG_ERR_WRONG_KIND = 4,
    /// An input or output length does not match the model.
    TG_ERR_DIMENSION = 5,
    /// The scratch buffer is smaller than `tg_scratch_size`.
    TG_ERR_SCRATCH_TOO_SMALL = 6,
    /// An input value is NaN or infinite.
    TG_ERR_NONFINITE_INPUT = 7,
    /// An output buffer overlaps an input or the scratch buffer.
    TG_ERR_OVERLAP = 8,
    /// The model has no latent prior to sample from.
    TG_ERR_NO_PRIOR = 9,
    /// A detector's neural part is wider than the library's own buffers
    /// (64 values).
    TG_ERR_TOO_WIDE = 10,
    /// The model file is shorter than its header and CRC.
    TG_ERR_TOO_SHORT = 11,
    /// The bytes are not a tinygen model file (bad magic).
    TG_ERR_BAD_MAGIC = 12,
    /// The file's format version is not this library's.
    TG_ERR_VERSION = 13,
    /// The file holds a model kind this library does not know.
    TG_ERR_UNKNOWN_KIND = 14,
    /// The file's body has a schema this library does not read.
    TG_ERR_SCHEMA = 15,
    /// The file's length disagrees with its header (truncated or padded).
    TG_ERR_LENGTH = 16,
    /// The file's CRC does not match its contents (corrupted).
    TG_ERR_CRC = 17,
    /// The file's body cannot be decoded.
    TG_ERR_MALFORMED = 18,
    /// The file's dimensions or counts are zero, too large or inconsistent.
    TG_ERR_SHAPE = 19,
    /// The file stores a NaN or infinite parameter.
    TG_ERR_NONFINITE_PARAMETER = 20,
    /// The file stores a parameter outside its allowed range.
    TG_ERR_PARAMETER_RANGE = 21,
    /// The network has more layers than this library supports.
    TG_ERR_TOO_MANY_LAYERS = 22,
    /// An internal check failed: a bug in the library.
    TG_ERR_INTERNAL = 23,
    /// A call's setting is out of range: a diffusion sampler's steps or
    /// eta, a timestep.
    TG_ERR_PARAMETERS = 24,
    /// The learner has not seen all its inputs yet (`tg_learner_file`).
    TG_ERR_STILL_LEARNING = 25,
    /// A learned covariance is not positive definite (collinear inputs
    /// and no regularisation, or a component without points).
    TG_ERR_NOT_POSITIVE_DEFINITE = 26,
}

use tg_status::*;

/// The kind of model a `tg_model` holds (`TG_KIND_NONE` for a model
/// that is not open); the values are the file format's kind codes.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tg_kind {
    /// No open model.
    TG_KIND_NONE = 0,
    /// Gaussian mixture: `tg_log_density`.
    TG_KIND_GMM = 1,
    /// Kernel density estimate: `tg_log_density`.
    TG_KIND_KDE = 2,
    /// Anomaly detector: `tg_detector_score`, `tg_detector_is_anomaly`,
    /// `tg_log_density` (of its density).
    TG_KIND_DETECTOR = 3,
    /// Decoder, latent code to data point: `tg_decode`, `tg_sample`.
    TG_KIND_DECODER = 4,
    /// Encoder, data point to latent code: `tg_decode`.
    TG_KIND_ENCODER = 5,
    /// Int8 decoder: `tg_decode`, `tg_decode_i8`, `tg_sample`.
    TG_KIND_DECODER_INT8 = 6,
    /// Int8 encoder: `tg_decode`, `tg_decode_i8`.
    TG_KIND_ENCODER_INT8 = 7,
    /// Diffusion model: `tg_sample` (the file's sampler),
    /// `tg_diffusion_sample` (any), `tg_decode` (one noise prediction:
    /// the noisy point then its timestep in, the noise out).
    TG_KIND_DIFFUSION = 8,
}

/// Bytes of a `tg_model`: enough for a parsed model of any kind on every
/// target (checked at compile time on each; 988 bytes are used on 32-bit
/// cores, 1,216 on a 64-bit host).
pub const TG_MODEL_SIZE: usize = 1280;

/// A parsed model, in memory the caller provides (`TG_MODEL_SIZE` bytes,
/// 8-byte aligned). Open it with `tg_model_open`; it borrows the model
/// bytes, which must stay in place and unchanged while it is used. It may
/// be copied; it needs no closing.
#[repr(C)]
pub struct tg_model {
    _opaque: [MaybeUninit<u64>; TG_MODEL_WORDS],
}

/// `TG_MODEL_SIZE` in 8-byte words.
pub const TG_MODEL_WORDS: usize = TG_MODEL_SIZE / 8;

/// A random-number generator for `tg_sample`: xoshiro128++, seeded by
/// `tg_rng_seed` exactly as the Rust runtime's
/// `Xoshiro128PlusPlus::seed_from_u64`, so that a seed gives the host's
/// samples. Its 16 bytes are the generator's state.
#[repr(C)]
pub struct tg_rng {
    _state: [u32; 4],
}

/// What a [`tg_model`] holds: a marker that it is open, and the model.
#[repr(C)]
struct Slot {
    open: u32,
    model: MaybeUninit<AnyModel<'static>>,
}

/// [`Slot::open`] of an open model.
const OPEN: u32 = 0x7467_6f6b;

const _: () = assert!(
    size_of::<Slot>() <= size_of::<tg_model>() && align_of::<Slot>() <= align_of::<tg_model>(),
    "TG_MODEL_SIZE is too small for AnyModel on this target"
);
const _: () = assert!(
    size_of::<Xoshiro128PlusPlus>() == size_of::<tg_rng>()
        && align_of::<Xoshiro128PlusPlus>() <= align_of::<tg_rng>(),
    "tg_rng does not match Xoshiro128PlusPlus"
);

type Result<T> = core::result::Result<T, tg_status>;

/// The status of a runtime error; `TooWide` is a short scratch buffer.
fn status(e: Error) -> tg_status {
    match e {
        Error::TooShort => TG_ERR_TOO_SHORT,
        Error::BadMagic => TG_ERR_BAD_MAGIC,
        Error::UnsupportedVersion(_) => TG_ERR_VERSION,
        Error::UnknownKind(_) => TG_ERR_UNKNOWN_KIND,
        Error::WrongKind { .. } => TG_ERR_WRONG_KIND,
        Error::SchemaMismatch => TG_ERR_SCHEMA,
        Error::LengthMismatch => TG_ERR_LENGTH,
        Error::CrcMismatch { .. } => TG_ERR_CRC,
        Error::Malformed => TG_ERR_MALFORMED,
        Error::Misaligned => TG_ERR_MISALIGNED,
        Error::InvalidShape(tinygen_runtime::Shape::Internal) => TG_ERR_INTERNAL,
        Error::InvalidShape(_) => TG_ERR_SHAPE,
        Error::NonFiniteParameter => TG_ERR_NONFINITE_PARAMETER,
        Error::NonFiniteInput => TG_ERR_NONFINITE_INPUT,
        Error::DimensionMismatch { .. } => TG_ERR_DIMENSION,
        Error::TooWide { .. } => TG_ERR_SCRATCH_TOO_SMALL,
        Error::TooManyLayers { .. } => TG_ERR_TOO_MANY_LAYERS,
        Error::ParameterOutOfRange => TG_ERR_PARAMETER_RANGE,
        Error::NoPrior => TG_ERR_NO_PRIOR,
        Error::BufferTooSmall { .. } => TG_ERR_SCRATCH_TOO_SMALL,
        // Finite inputs that overflow: the file's parameters diverge.
        Error::NonFiniteOutput => TG_ERR_NONFINITE_PARAMETER,
        Error::InvalidParameters => TG_ERR_PARAMETERS,
        Error::StillLearning { .. } => TG_ERR_STILL_LEARNING,
        Error::NotPositiveDefinite => TG_ERR_NOT_POSITIVE_DEFINITE,
        _ => TG_ERR_INTERNAL,
    }
}

/// The result of a call as its status.
fn done(result: Result<()>) -> tg_status {
    match result {
        Ok(()) => TG_OK,
        Err(s) => s,
    }
}

/// The open model behind `m`.
///
/// # Safety
/// `m` is NULL or points to a `tg_model` that is readable.
unsafe fn model<'a>(m: *const tg_model) -> Result<&'a AnyModel<'static>> {
    // SAFETY: the caller owns TG_MODEL_SIZE bytes there.
    let slot = unsafe { value(m.cast::<Slot>()) }?;
    if slot.open != OPEN {
        return Err(TG_ERR_NOT_OPEN);
    }
    // SAFETY: `tg_model_open` wrote a model before setting the marker.
    Ok(unsafe { slot.model.assume_init_ref() })
}

/// Checks a pointer to `n` values of `T`: NULL is allowed only when `n` is
/// 0 (an empty slice), the pointer must be aligned for `T`, and the bytes
/// must fit an `isize`.
fn check<T>(p: *const T, n: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    if p.is_null() {
        return Err(TG_ERR_NULL);
    }
    if !p.is_aligned() {
        return Err(TG_ERR_MISALIGNED);
    }
    if n > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(TG_ERR_DIMENSION);
    }
    Ok(())
}

/// `n` values of `T` at `p` (see [`check`]).
///
/// # Safety
/// `p` is valid for reads of `n` values, unchanged while the slice lives.
unsafe fn slice<'a, T>(p: *const T, n: usize) -> Result<&'a [T]> {
    check(p, n)?;
    if n == 0 {
        return Ok(&[]);
    }
    // SAFETY: checked non-NULL and aligned; the caller vouches for the length.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

/// `n` writable values of `T` at `p` (see [`check`]).
///
/// # Safety
/// `p` is valid for writes of `n` values, used by nothing else meanwhile.
unsafe fn slice_mut<'a, T>(p: *mut T, n: usize) -> Result<&'a mut [T]> {
    check(p, n)?;
    if n == 0 {
        return Ok(&mut []);
    }
    // SAFETY: as in `slice`, for writes.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, n) })
}

/// One readable value at `p`.
///
/// # Safety
/// `p` is NULL or valid for a read of one `T`, unchanged while it is used.
unsafe fn value<'a, T>(p: *const T) -> Result<&'a T> {
    check(p, 1)?;
    // SAFETY: non-NULL and aligned.
    Ok(unsafe { &*p })
}

/// One writable value at `p`.
///
/// # Safety
/// `p` is NULL or valid for a write of one `T`.
unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T> {
    check(p, 1)?;
    // SAFETY: non-NULL and aligned.
    Ok(unsafe { &mut *p })
}

/// The byte range of `n` values of `T` at `p`.
fn span<T>(p: *const T, n: usize) -> (usize, usize) {
    let start = p as usize;
    (
        start,
        start.saturating_add(n.saturating_mul(size_of::<T>())),
    )
}

/// `TG_ERR_OVERLAP` if a written range shares a byte with another range.
fn disjoint(written: (usize, usize), others: &[(usize, usize)]) -> Result<()> {
    let empty = |r: (usize, usize)| r.0 == r.1;
    if empty(written) {
        return Ok(());
    }
    for &other in others {
        if !empty(other) && written.0 < other.1 && other.0 < written.1 {
            return Err(TG_ERR_OVERLAP);
        }
    }
    Ok(())
}

/// The caller's scratch bytes, checked: NULL only when empty, 4-byte aligned.
fn scratch_span(scratch: *mut c_void, len: usize) -> Result<(usize, usize)> {
    let bytes = scratch.cast::<u32>();
    if len == 0 {
        return Ok((0, 0));
    }
    if bytes.is_null() {
        return Err(TG_ERR_NULL);
    }
    if !bytes.is_aligned() {
        return Err(TG_ERR_MISALIGNED);
    }
    if len > isize::MAX as usize {
        return Err(TG_ERR_SCRATCH_TOO_SMALL);
    }
    Ok(span(scratch.cast::<u8>(), len))
}

/// The scratch as two f32 buffers of equal length.
///
/// # Safety
/// `scratch` is valid for writes of `len` bytes (checked by [`scratch_span`]).
unsafe fn f32_halves<'a>(scratch: *mut c_void, len: usize) -> (&'a mut [f32], &'a mut [f32]) {
    let half = len / size_of::<f32>() / 2;
    // SAFETY: aligned and non-NULL when len >= 8 (checked), else empty.
    let words = unsafe { slice_mut(scratch.cast::<f32>(), 2 * half) }.unwrap_or_default();
    words.split_at_mut(half.min(words.len()))
}

/// The scratch as one f32 buffer of `len / 4` values.
///
/// # Safety
/// As for [`f32_halves`].
unsafe fn f32_words<'a>(scratch: *mut c_void, len: usize) -> &'a mut [f32] {
    // SAFETY: as in `f32_halves`.
    unsafe { slice_mut(scratch.cast::<f32>(), len / size_of::<f32>()) }.unwrap_or_default()
}

/// The scratch as two byte buffers of equal length, each 4-byte aligned.
///
/// # Safety
/// As for [`f32_halves`].
unsafe fn i8_halves<'a>(scratch: *mut c_void, len: usize) -> (&'a mut [i8], &'a mut [i8]) {
    let half = (len / 2) & !3;
    // SAFETY: as in `f32_halves`.
    let bytes = unsafe { slice_mut(scratch.cast::<i8>(), 2 * half) }.unwrap_or_default();
    bytes.split_at_mut(half.min(bytes.len()))
}

/// Describes a status code: a static string, also for codes that are not
/// `tg_status` values.
#[unsafe(no_mangle)]
pub extern "C" fn tg_strerror(status: StatusCode) -> *const c_char {
    let text: &'static core::ffi::CStr = match status {
        0 => c"ok",
        1 => c"a required pointer is NULL",
        2 => c"a pointer is not aligned (model bytes, float buffers and scratch need 4 bytes)",
        3 => c"the tg_model is not open or the tg_learner not started (the call was not made or failed)",
        4 => c"the model's kind does not support this call",
        5 => c"an input or output length does not match the model",
        6 => c"the scratch buffer is smaller than tg_scratch_size",
        7 => c"an input value is NaN or infinite",
        8 => c"an output buffer overlaps an input or the scratch buffer",
        9 => c"the model has no latent prior to sample from",
        10 => c"the detector's neural part is wider than the library's buffers",
        11 => c"model file too short",
        12 => c"not a tinygen model file (bad magic)",
        13 => c"unsupported model format version",
        14 => c"unknown model kind",
        15 => c"model body schema does not match this library",
        16 => c"model body length does not match the file size",
        17 => c"CRC mismatch (corrupted model file)",
        18 => c"malformed model body",
        19 => c"invalid model file: a dimension or count is zero, too large or inconsistent",
        20 => c"model file contains NaN or infinite parameters",
        21 => c"model parameter out of its allowed range",
        22 => c"network has more layers than this library supports",
        23 => c"internal error (a bug in tinygen)",
        24 => c"a call's setting is out of range (a diffusion sampler's steps or eta, a timestep)",
        25 => c"the learner has not seen all its inputs yet",
        26 => c"a learned covariance is not positive definite (collinear inputs, no regularisation)",
        _ => c"unknown tinygen status code",
    };
    text.as_ptr()
}

/// A `tg_status` as C passes it: any `int32_t`, so that `tg_strerror`
/// accepts values outside the enumeration (C sees `tg_status`).
pub type StatusCode = i32;

/// The library's version (the Rust crate's), as a static string.
#[unsafe(no_mangle)]
pub extern "C" fn tg_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Parses and validates the model file `bytes[0..len]` (4-byte aligned)
/// into `m`, once; the weights are read in place later, so `bytes` must
/// outlive `m` unchanged. On failure `m` is left closed (every call on it
/// returns `TG_ERR_NOT_OPEN`). Stack, measured on a Cortex-M0: about
/// 1.6 KB for a mixture or KDE, 2.2 KB for a network, 2.7 KB for a
/// diffusion model, 3.2 KB for a detector, 3.5 KB for an int8 network,
/// 7 KB for a detector with a neural part.
///
/// # Safety
/// `m` is NULL or points to a writable `tg_model`; `bytes` is NULL or
/// valid for reads of `len` bytes for as long as `m` is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_model_open(
    m: *mut tg_model,
    bytes: *const u8,
    len: usize,
) -> tg_status {
    let slot = m.cast::<Slot>();
    if slot.is_null() {
        return TG_ERR_NULL;
    }
    if !slot.is_aligned() {
        return TG_ERR_MISALIGNED;
    }
    // SAFETY: non-NULL and aligned; the caller owns the tg_model.
    unsafe { ptr::addr_of_mut!((*slot).open).write(0) };
    if bytes.is_null() {
        return TG_ERR_NULL;
    }
    if !bytes.cast::<u32>().is_aligned() {
        return TG_ERR_MISALIGNED;
    }
    // SAFETY: non-NULL; the caller vouches for `len` bytes.
    let file = match unsafe { slice(bytes, len) } {
        Ok(file) => file,
        Err(_) => return TG_ERR_LENGTH,
    };
    match AnyModel::from_bytes(file) {
        Ok(model) => {
            // SAFETY: as above; the model first, then the marker.
            unsafe {
                ptr::addr_of_mut!((*slot).model).write(MaybeUninit::new(model));
                ptr::addr_of_mut!((*slot).open).write(OPEN);
            }
            TG_OK
        }
        Err(e) => status(e),
    }
}

/// The length of the model file at the start of `region[0..region_len]`,
/// such as a flash page a learned detector was written to, into `*len`:
/// pass `region` and `*len` to `tg_model_open`. Only the header is read
/// (magic, version, claimed length within the region); `tg_model_open`
/// checks the rest. An erased page (all `0xFF`) is `TG_ERR_BAD_MAGIC`, a
/// region shorter than the length its header claims `TG_ERR_LENGTH`.
///
/// # Safety
/// `region` is NULL or valid for reads of `region_len` bytes; `len` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_file_len(
    region: *const u8,
    region_len: usize,
    len: *mut usize,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { out(len) }.and_then(|len| {
        // SAFETY: the caller's promise.
        let region = unsafe { slice(region, region_len) }?;
        *len = format::file_in(region).map_err(status)?.len();
        Ok(())
    }))
}

/// The kind of the open model (`TG_KIND_NONE` if `m` is NULL or not open).
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_model_kind(m: *const tg_model) -> tg_kind {
    // SAFETY: the caller's promise.
    match unsafe { model(m) }.map(AnyModel::kind) {
        Ok(ModelKind::Gmm) => tg_kind::TG_KIND_GMM,
        Ok(ModelKind::Kde) => tg_kind::TG_KIND_KDE,
        Ok(ModelKind::Detector) => tg_kind::TG_KIND_DETECTOR,
        Ok(ModelKind::Decoder) => tg_kind::TG_KIND_DECODER,
        Ok(ModelKind::Encoder) => tg_kind::TG_KIND_ENCODER,
        Ok(ModelKind::DecoderInt8) => tg_kind::TG_KIND_DECODER_INT8,
        Ok(ModelKind::EncoderInt8) => tg_kind::TG_KIND_ENCODER_INT8,
        Ok(ModelKind::Diffusion) => tg_kind::TG_KIND_DIFFUSION,
        // A recipe does not open as a model (it learns a detector first).
        Ok(ModelKind::Recipe) | Err(_) => tg_kind::TG_KIND_NONE,
    }
}

/// Values one call reads: a density's or detector's point or window, a
/// network's input (0 if `m` is NULL or not open).
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_input_dim(m: *const tg_model) -> usize {
    // SAFETY: the caller's promise.
    unsafe { model(m) }.map_or(0, AnyModel::input_len)
}

/// Values one call writes: 1 for a density or a detector, a network's
/// output width (0 if `m` is NULL or not open).
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_output_dim(m: *const tg_model) -> usize {
    // SAFETY: the caller's promise.
    unsafe { model(m) }.map_or(0, AnyModel::output_len)
}

/// A network's latent dimension (the decoder's input, the encoder's
/// output); 0 for other kinds or if `m` is NULL or not open.
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_latent_dim(m: *const tg_model) -> usize {
    // SAFETY: the caller's promise.
    match unsafe { model(m) } {
        Ok(AnyModel::Network(n)) => n.latent_dim(),
        Ok(AnyModel::QNetwork(n)) => n.latent_dim(),
        _ => 0,
    }
}

/// Multiply-accumulates of one call (0 if `m` is NULL or not open).
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_macs(m: *const tg_model) -> usize {
    // SAFETY: the caller's promise.
    unsafe { model(m) }.map_or(0, AnyModel::macs)
}

/// Bytes of scratch (4-byte aligned) that every `tg_decode`,
/// `tg_decode_i8` and `tg_sample` call on this model needs: two buffers of
/// its widest activation. 0 for densities and detectors (a detector's
/// neural part uses about 1.3 KB of stack) and if `m` is NULL or not open.
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_scratch_size(m: *const tg_model) -> usize {
    // SAFETY: the caller's promise.
    unsafe { model(m) }.map_or(0, AnyModel::scratch_bytes)
}

/// The log-density of the point `x[0..n]`: for a mixture or a KDE, and for
/// a detector, the log-density of its density at the point's features
/// (`-tg_detector_score` for a detector without a neural part).
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`; `x` is NULL or valid for
/// reads of `n` floats; `out` is NULL or valid for a write of one float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_density(
    m: *const tg_model,
    x: *const f32,
    n: usize,
    out: *mut f32,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { log_density(m, x, n, out) })
}

unsafe fn log_density(m: *const tg_model, x: *const f32, n: usize, out_: *mut f32) -> Result<()> {
    // SAFETY: the caller's promises.
    let (model, x, out) = unsafe { (model(m)?, slice(x, n)?, out(out_)?) };
    let value = match model {
        AnyModel::Density(g) => g.log_density(x),
        AnyModel::Detector(d) => d.log_density(x),
        _ => return Err(TG_ERR_WRONG_KIND),
    };
    *out = value.map_err(status)?;
    Ok(())
}

/// The anomaly score of the point or window `x[0..n]` (higher is more
/// anomalous; see the runtime's `Detector::score`).
///
/// # Safety
/// As for `tg_log_density`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_detector_score(
    m: *const tg_model,
    x: *const f32,
    n: usize,
    score: *mut f32,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { detector_score(m, x, n) }.and_then(|s| {
        // SAFETY: the caller's promise.
        *unsafe { out(score) }? = s;
        Ok(())
    }))
}

unsafe fn detector_score(m: *const tg_model, x: *const f32, n: usize) -> Result<f32> {
    // SAFETY: the caller's promises.
    let (model, x) = unsafe { (model(m)?, slice(x, n)?) };
    let AnyModel::Detector(d) = model else {
        return Err(TG_ERR_WRONG_KIND);
    };
    d.score(x).map_err(|e| match e {
        Error::TooWide { .. } => TG_ERR_TOO_WIDE,
        e => status(e),
    })
}

/// Whether `x[0..n]` raises the detector's alarm (its score is at or above
/// the threshold); `*alarm` is written only on success.
///
/// # Safety
/// As for `tg_log_density`, with `alarm` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_detector_is_anomaly(
    m: *const tg_model,
    x: *const f32,
    n: usize,
    alarm: *mut bool,
) -> tg_status {
    // SAFETY: the caller's promises.
    let result = unsafe { out(alarm) }.and_then(|alarm| {
        // SAFETY: the caller's promises.
        let score = unsafe { detector_score(m, x, n) }?;
        // SAFETY: checked by `detector_score`.
        let AnyModel::Detector(d) = (unsafe { model(m) })? else {
            return Err(TG_ERR_WRONG_KIND);
        };
        *alarm = d.alarm(score);
        Ok(())
    });
    done(result)
}

/// The detector's alarm threshold on its score.
///
/// # Safety
/// `m` and `threshold` are NULL or valid (see `tg_log_density`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_detector_threshold(
    m: *const tg_model,
    threshold: *mut f32,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { model(m) }.and_then(|model| {
        let AnyModel::Detector(d) = model else {
            return Err(TG_ERR_WRONG_KIND);
        };
        // SAFETY: the caller's promise.
        *unsafe { out(threshold) }? = d.threshold();
        Ok(())
    }))
}

/// Runs a decoder or an encoder, f32 or int8 inside: `out[0..n_out] =
/// network(in[0..n_in])` (an int8 network quantizes the input and
/// dequantizes its output), in `scratch[0..scratch_len]` (4-byte aligned,
/// at least `tg_scratch_size` bytes; NULL if that is 0).
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`; each buffer is NULL or
/// valid for its length (`in` reads, `out` and `scratch` writes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_decode(
    m: *const tg_model,
    r#in: *const f32,
    n_in: usize,
    out: *mut f32,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { decode(m, r#in, n_in, out, n_out, scratch, scratch_len) })
}

unsafe fn decode(
    m: *const tg_model,
    input: *const f32,
    n_in: usize,
    output: *mut f32,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> Result<()> {
    // SAFETY: the caller's promises.
    let model = unsafe { model(m) }?;
    if !matches!(
        model,
        AnyModel::Network(_) | AnyModel::QNetwork(_) | AnyModel::Diffusion(_)
    ) {
        return Err(TG_ERR_WRONG_KIND);
    }
    let work = scratch_span(scratch, scratch_len)?;
    check(output, n_out)?;
    disjoint(span(output, n_out), &[span(input, n_in), work])?;
    disjoint(work, &[span(input, n_in)])?;
    // SAFETY: the caller's promises; the ranges do not overlap.
    let (x, y) = unsafe { (slice(input, n_in)?, slice_mut(output, n_out)?) };
    match model {
        AnyModel::Network(n) => {
            // SAFETY: checked by `scratch_span`.
            let (a, b) = unsafe { f32_halves(scratch, scratch_len) };
            n.forward_in(x, y, a, b)
        }
        AnyModel::QNetwork(n) => {
            // SAFETY: checked by `scratch_span`.
            let (a, b) = unsafe { i8_halves(scratch, scratch_len) };
            n.forward_in(x, y, a, b)
        }
        AnyModel::Diffusion(d) => {
            // SAFETY: checked by `scratch_span`.
            let (a, b) = unsafe { f32_halves(scratch, scratch_len) };
            d.eval_in(x, y, a, b)
        }
        _ => return Err(TG_ERR_WRONG_KIND),
    }
    .map_err(status)
}

/// Runs an int8 decoder or encoder on int8 tensors: `out[0..n_out] =
/// network(in[0..n_in])`, `in` quantized with `tg_input_quant`'s params,
/// `out` with `tg_output_quant`'s; scratch as for `tg_decode`. In a file
/// whose last sigmoid or tanh runs in f32 (`tinygen export --f32-output`),
/// `out` is that layer's int8 pre-activation: `tg_decode` dequantizes it
/// and applies the activation in f32.
///
/// # Safety
/// As for `tg_decode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_decode_i8(
    m: *const tg_model,
    r#in: *const i8,
    n_in: usize,
    out: *mut i8,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { decode_i8(m, r#in, n_in, out, n_out, scratch, scratch_len) })
}

unsafe fn decode_i8(
    m: *const tg_model,
    input: *const i8,
    n_in: usize,
    output: *mut i8,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> Result<()> {
    // SAFETY: the caller's promises.
    let AnyModel::QNetwork(n) = unsafe { model(m) }? else {
        return Err(TG_ERR_WRONG_KIND);
    };
    let work = scratch_span(scratch, scratch_len)?;
    check(output, n_out)?;
    disjoint(span(output, n_out), &[span(input, n_in), work])?;
    disjoint(work, &[span(input, n_in)])?;
    // SAFETY: the caller's promises; the ranges do not overlap.
    let (x, y) = unsafe { (slice(input, n_in)?, slice_mut(output, n_out)?) };
    // SAFETY: checked by `scratch_span`.
    let (a, b) = unsafe { i8_halves(scratch, scratch_len) };
    n.forward_i8_in(x, y, a, b).map_err(status)
}

/// The quantization of an int8 network's input (`real = scale * (q -
/// zero_point)`), for `tg_decode_i8`.
///
/// # Safety
/// `m` is NULL or points to a readable `tg_model`; `scale` and
/// `zero_point` are NULL or valid for one write each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_input_quant(
    m: *const tg_model,
    scale: *mut f32,
    zero_point: *mut i32,
) -> tg_status {
    // SAFETY: the caller's promises.
    unsafe { quant(m, scale, zero_point, true) }
}

/// The quantization of an int8 network's output, as `tg_input_quant`.
///
/// # Safety
/// As for `tg_input_quant`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_output_quant(
    m: *const tg_model,
    scale: *mut f32,
    zero_point: *mut i32,
) -> tg_status {
    // SAFETY: the caller's promises.
    unsafe { quant(m, scale, zero_point, false) }
}

unsafe fn quant(
    m: *const tg_model,
    scale: *mut f32,
    zero_point: *mut i32,
    input: bool,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { model(m) }.and_then(|model| {
        let AnyModel::QNetwork(n) = model else {
            return Err(TG_ERR_WRONG_KIND);
        };
        // SAFETY: the caller's promises.
        let (scale, zero_point) = unsafe { (out(scale)?, out(zero_point)?) };
        let params = if input {
            n.input_params()
        } else {
            n.output_params()
        };
        *scale = params.scale;
        *zero_point = i32::from(params.zero_point);
        Ok(())
    }))
}

/// Seeds a generator as `Xoshiro128PlusPlus::seed_from_u64(seed)`.
///
/// # Safety
/// `rng` is NULL or points to a writable `tg_rng`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_rng_seed(rng: *mut tg_rng, seed: u64) -> tg_status {
    // SAFETY: the caller's promise.
    done(unsafe { out(rng.cast::<Xoshiro128PlusPlus>()) }.map(|rng| {
        // Any 16 bytes are a valid state: plain overwrite, no drop.
        *rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    }))
}

/// Draws a latent code from a decoder's prior with `rng` and decodes it
/// into `out[0..n_out]`, or draws a diffusion model's sample by the file's
/// sampler: the Rust runtime's sampling, draw for draw, so a seed gives the
/// host's samples (`tinygen sample --seed`). Scratch as for `tg_decode`
/// (`tg_scratch_size`). On an error nothing is drawn.
///
/// # Safety
/// As for `tg_decode`, with `rng` NULL or pointing to a seeded `tg_rng`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sample(
    m: *const tg_model,
    rng: *mut tg_rng,
    out: *mut f32,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> tg_status {
    // SAFETY: the caller's promises.
    done(unsafe { sample(m, rng, None, out, n_out, scratch, scratch_len) })
}

/// Draws a diffusion model's sample into `out[0..n_out]` in `steps`
/// denoising steps (1 to the model's T) with noise weight `eta` (0: DDIM,
/// deterministic; 1 with every step: DDPM's ancestral sampling), as
/// `tinygen sample --sampler ddim|ddpm --steps S`. Scratch as for
/// `tg_sample`. On an error nothing is drawn; `TG_ERR_WRONG_KIND` for
/// other models.
///
/// # Safety
/// As for `tg_sample`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_diffusion_sample(
    m: *const tg_model,
    rng: *mut tg_rng,
    steps: u16,
    eta: f32,
    out: *mut f32,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> tg_status {
    let sampler = Sampler { steps, eta };
    // SAFETY: the caller's promises.
    done(unsafe { sample(m, rng, Some(sampler), out, n_out, scratch, scratch_len) })
}

/// `tg_sample` (`sampler` None) and `tg_diffusion_sample`.
unsafe fn sample(
    m: *const tg_model,
    rng: *mut tg_rng,
    sampler: Option<Sampler>,
    output: *mut f32,
    n_out: usize,
    scratch: *mut c_void,
    scratch_len: usize,
) -> Result<()> {
    // SAFETY: the caller's promise.
    let model = unsafe { model(m) }?;
    let accepted = matches!(
        (model, sampler),
        (AnyModel::Diffusion(_), _) | (AnyModel::Network(_) | AnyModel::QNetwork(_), None)
    );
    if !accepted {
        return Err(TG_ERR_WRONG_KIND);
    }
    let work = scratch_span(scratch, scratch_len)?;
    check(output, n_out)?;
    let state = span(rng.cast_const(), 1);
    disjoint(span(output, n_out), &[work, state])?;
    disjoint(work, &[state])?;
    // SAFETY: the caller's promises; the ranges do not overlap.
    let (rng, y) = unsafe {
        (
            out(rng.cast::<Xoshiro128PlusPlus>())?,
            slice_mut(output, n_out)?,
        )
    };
    match model {
        AnyModel::Network(n) => {
            // SAFETY: checked by `scratch_span`.
            let (a, b) = unsafe { f32_halves(scratch, scratch_len) };
            n.sample_in(rng, y, a, b)
        }
        AnyModel::QNetwork(n) => {
            // SAFETY: checked by `scratch_span`.
            let (a, b) = unsafe { i8_halves(scratch, scratch_len) };
            n.sample_in(rng, y, a, b)
        }
        AnyModel::Diffusion(d) => {
            // SAFETY: checked by `scratch_span`.
            let work = unsafe { f32_words(scratch, scratch_len) };
            d.sample_in(rng, sampler.unwrap_or(d.spec().sampler), y, work)
        }
        _ => return Err(TG_ERR_WRONG_KIND),
    }
    .map_err(status)
}

mod learner;
pub use learner::*;

#[cfg(not(any(test, panic = "unwind")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    unsafe extern "C" {
        /// Deliberately undefined: a reference to it in the library means
        /// an exported function can reach a panic.
        fn tinygen_capi_has_a_reachable_panic() -> !;
    }
    // SAFETY: never executed in a library that links (see the crate docs).
    unsafe { tinygen_capi_has_a_reachable_panic() }
}

#[cfg(test)]
mod tests;
