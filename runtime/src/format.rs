//! The tinygen model file (`.tgm`): header, body and checksum, read in
//! place. The page below (`runtime/FORMAT.md`) is the format's one
//! specification; each kind's module implements its part.
//!
#![doc = include_str!("../FORMAT.md")]

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Shape};

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"TGM\0";
/// Format version this runtime reads and writes.
pub const VERSION: u16 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 16;
/// Length of the trailing CRC.
pub const CRC_LEN: usize = 4;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The kinds of model a file can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum ModelKind {
    /// Gaussian mixture density (see [`crate::gmm`]).
    Gmm = 1,
    /// Gaussian kernel density estimate: a mixture with one component per
    /// stored point and a shared kernel covariance; same body as [`ModelKind::Gmm`].
    Kde = 2,
    /// Anomaly detector: features, a density and a threshold (see [`crate::detector`]).
    Detector = 3,
    /// Generative network: an MLP from a latent code to a data point, with
    /// the latent prior to sample codes from (see [`crate::network`]).
    Decoder = 4,
    /// Encoder network: an MLP from a data point to its latent code (for a
    /// VAE, the mean head); same body as [`ModelKind::Decoder`].
    Encoder = 5,
    /// Int8 generative network: a [`ModelKind::Decoder`] whose layers run
    /// TFLite's int8 arithmetic (see [`crate::qnetwork`]).
    DecoderInt8 = 6,
    /// Int8 encoder network; same body as [`ModelKind::DecoderInt8`].
    EncoderInt8 = 7,
    /// A detector to be learned on the device: its features and
    /// hyper-parameters, no weights (see [`crate::learn`]).
    Recipe = 8,
    /// Diffusion model: a noise predictor and its noise schedule, sampled
    /// step by step (see [`crate::diffusion`]).
    Diffusion = 9,
}

impl ModelKind {
    /// The kind with this header code, if any.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(ModelKind::Gmm),
            2 => Some(ModelKind::Kde),
            3 => Some(ModelKind::Detector),
            4 => Some(ModelKind::Decoder),
            5 => Some(ModelKind::Encoder),
            6 => Some(ModelKind::DecoderInt8),
            7 => Some(ModelKind::EncoderInt8),
            8 => Some(ModelKind::Recipe),
            9 => Some(ModelKind::Diffusion),
            _ => None,
        }
    }

    /// Short lower-case name, as printed by `tinygen info`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Gmm => "gmm",
            ModelKind::Kde => "kde",
            ModelKind::Detector => "detector",
            ModelKind::Decoder => "decoder",
            ModelKind::Encoder => "encoder",
            ModelKind::DecoderInt8 => "decoder-int8",
            ModelKind::EncoderInt8 => "encoder-int8",
            ModelKind::Recipe => "recipe",
            ModelKind::Diffusion => "diffusion",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// FNV-1a hash of a schema description, used as the header's schema key.
pub const fn schema_key(description: &str) -> u32 {
    let bytes = description.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

/// CRC-32/ISO-HDLC, the checksum stored at the end of every model file.
pub fn checksum(content: &[u8]) -> u32 {
    CRC.checksum(content)
}

/// Rewrites a file's body length and trailing CRC to match its bytes, so
/// that a deliberately modified file passes the outer checks and reaches
/// the body's (for tests, fuzzers and tools; a file shorter than a header
/// and a CRC is left as it is).
pub fn reseal(bytes: &mut [u8]) {
    let Some(body_len) = bytes.len().checked_sub(HEADER_LEN + CRC_LEN) else {
        return;
    };
    let (Ok(body_len), Some(length)) = (u32::try_from(body_len), bytes.get_mut(12..16)) else {
        return;
    };
    length.copy_from_slice(&body_len.to_le_bytes());
    let (content, crc) = bytes.split_at_mut(HEADER_LEN + body_len as usize);
    crc.copy_from_slice(&checksum(content).to_le_bytes());
}

/// The model file at the start of a larger `region`, such as a flash page
/// a device wrote a learned detector into: its header's magic and version
/// are checked and its claimed length must fit the region; the bytes
/// returned are the whole file, to hand to [`open`] or a kind's parser
/// (which check the rest, the CRC included). An erased page (all `0xFF`)
/// or one holding something else is [`Error::BadMagic`].
pub fn file_in(region: &[u8]) -> Result<&[u8], Error> {
    region
        .get(..claimed_len(region)?)
        .ok_or(Error::LengthMismatch)
}

/// The length of the whole file (header, body and CRC) that the header at
/// the start of `bytes` claims, its magic and version checked: what a file
/// that fails with [`Error::LengthMismatch`] says it should be.
pub fn claimed_len(bytes: &[u8]) -> Result<usize, Error> {
    let h = bytes.first_chunk::<HEADER_LEN>().ok_or(Error::TooShort)?;
    check_version(h)?;
    usize::try_from(claimed_body_len(h))
        .ok()
        .and_then(|body| body.checked_add(HEADER_LEN + CRC_LEN))
        .ok_or(Error::LengthMismatch)
}

/// The checked fixed header of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Model kind.
    pub kind: ModelKind,
    /// Schema key of the body.
    pub schema: u32,
    /// Body length in bytes.
    pub body_len: u32,
    /// The CRC stored at the end of the file (already verified).
    pub crc: u32,
}

/// The weights of a body whose spec was read: what follows it (the
/// alignment padding and the data) must be all that is left.
fn weights(rest: &[u8]) -> Result<&[f32], Error> {
    let (tail, rest): (Tail<'_>, _) =
        postcard::take_from_bytes(rest).map_err(|_| Error::Malformed)?;
    if !rest.is_empty() || tail.pad.len() > 3 {
        return Err(Error::Malformed);
    }
    if tail.data.len() % 4 != 0 {
        return Err(Error::InvalidShape(Shape::PartialValue));
    }
    bytemuck::try_cast_slice(tail.data).map_err(|_| Error::Misaligned)
}

/// What follows the spec in a body: alignment padding, weights.
#[derive(Deserialize)]
struct Tail<'a> {
    #[serde(borrow)]
    pad: &'a [u8],
    #[serde(borrow)]
    data: &'a [u8],
}

/// Checks that a header is this format's: the magic, then this runtime's
/// version, which it returns.
fn check_version(h: &[u8; HEADER_LEN]) -> Result<u16, Error> {
    if h[0..4] != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    Ok(version)
}

/// The body length a header claims.
fn claimed_body_len(h: &[u8; HEADER_LEN]) -> u32 {
    u32::from_le_bytes([h[12], h[13], h[14], h[15]])
}

/// Splits a file into its fixed header, body and stored CRC.
fn split(bytes: &[u8]) -> Result<(&[u8; HEADER_LEN], &[u8], u32), Error> {
    let (header, rest) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(Error::TooShort)?;
    let (body, crc) = rest.split_last_chunk::<CRC_LEN>().ok_or(Error::TooShort)?;
    Ok((header, body, u32::from_le_bytes(*crc)))
}

/// Checks the header, length and CRC of a model file without decoding its
/// body (the schema key is checked by the kind's parser, which knows it).
pub fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    open(bytes).map(|file| file.header())
}

/// A model file whose header, length and CRC have been checked, with its
/// body not yet decoded: what [`crate::AnyModel`] hands to the kind's
/// parser, so that the CRC is computed once.
#[derive(Debug, Clone, Copy)]
pub struct File<'a> {
    header: Header,
    body: &'a [u8],
}

/// Checks the header, length and CRC of a model file (see [`read_header`]).
pub fn open(bytes: &[u8]) -> Result<File<'_>, Error> {
    let (h, body, stored) = split(bytes)?;
    let version = check_version(h)?;
    let code = u16::from_le_bytes([h[6], h[7]]);
    let kind = ModelKind::from_code(code).ok_or(Error::UnknownKind(code))?;
    let schema = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let body_len = claimed_body_len(h);
    if body.len() as u64 != u64::from(body_len) {
        return Err(Error::LengthMismatch);
    }
    let computed = checksum(&bytes[..HEADER_LEN + body.len()]);
    if stored != computed {
        return Err(Error::CrcMismatch { stored, computed });
    }
    let header = Header {
        version,
        kind,
        schema,
        body_len,
        crc: stored,
    };
    Ok(File { header, body })
}

impl<'a> File<'a> {
    /// The checked header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Decodes the body of a file of one of the `accepted` kinds (the first
    /// is the one named in errors) whose body carries `schema`, into its
    /// spec and its weights, borrowed in place.
    pub(crate) fn read_body<S: Deserialize<'a>>(
        self,
        accepted: &[ModelKind],
        schema: u32,
    ) -> Result<(Header, S, &'a [f32]), Error> {
        self.check(accepted, schema)?;
        let (spec, rest) = postcard::take_from_bytes(self.body).map_err(|_| Error::Malformed)?;
        Ok((self.header, spec, weights(rest)?))
    }

    /// [`Self::read_body`] for a spec written as `S` followed, when
    /// `extended`, by `E` (fields a later version appended; otherwise
    /// `E::default()`): one reader for both versions.
    pub(crate) fn read_extended<S: Deserialize<'a>, E: Deserialize<'a> + Default>(
        self,
        accepted: &[ModelKind],
        schema: u32,
        extended: bool,
    ) -> Result<(Header, S, E, &'a [f32]), Error> {
        self.check(accepted, schema)?;
        let (spec, rest) = postcard::take_from_bytes(self.body).map_err(|_| Error::Malformed)?;
        let (extension, rest) = if extended {
            postcard::take_from_bytes(rest).map_err(|_| Error::Malformed)?
        } else {
            (E::default(), rest)
        };
        Ok((self.header, spec, extension, weights(rest)?))
    }

    /// [`Self::read_body`] field by field: a reader of the spec's fields in
    /// order (postcard writes a struct as its fields, one after another),
    /// then of the weights. A parser decodes a large optional part only
    /// when its tag says it is there, so files without it are read with
    /// less stack.
    pub(crate) fn spec_reader(
        self,
        accepted: &[ModelKind],
        schema: u32,
    ) -> Result<SpecReader<'a>, Error> {
        self.check(accepted, schema)?;
        Ok(SpecReader {
            header: self.header,
            rest: self.body,
        })
    }

    /// `WrongKind` unless the file is one of the `accepted` kinds (the first
    /// is the one named), `SchemaMismatch` unless its body carries `schema`.
    fn check(&self, accepted: &[ModelKind], schema: u32) -> Result<(), Error> {
        let kind = self.header.kind;
        if !accepted.contains(&kind) {
            return Err(Error::WrongKind {
                expected: accepted.first().copied().unwrap_or(kind),
                found: kind,
            });
        }
        if self.header.schema != schema {
            return Err(Error::SchemaMismatch);
        }
        Ok(())
    }

    /// Decodes the first values of the spec as `P` (a prefix of the spec's
    /// fields), leaving the rest unread: what a reader checks before it
    /// commits to reading an older spec. `Malformed` if they do not decode.
    pub(crate) fn spec_prefix<P: Deserialize<'a>>(&self) -> Result<P, Error> {
        postcard::take_from_bytes(self.body)
            .map(|(prefix, _)| prefix)
            .map_err(|_| Error::Malformed)
    }
}

/// A body being decoded one spec field at a time (see [`File::spec_reader`]).
pub(crate) struct SpecReader<'a> {
    header: Header,
    rest: &'a [u8],
}

impl<'a> SpecReader<'a> {
    /// The file's checked header.
    pub(crate) fn header(&self) -> Header {
        self.header
    }

    /// Decodes the next field.
    pub(crate) fn field<T: Deserialize<'a>>(&mut self) -> Result<T, Error> {
        let (value, rest) = postcard::take_from_bytes(self.rest).map_err(|_| Error::Malformed)?;
        self.rest = rest;
        Ok(value)
    }

    /// Decodes only the tag of an `Option` field (postcard: one byte, 0 or
    /// 1, as a `bool`): whether its value follows.
    pub(crate) fn is_some(&mut self) -> Result<bool, Error> {
        self.field()
    }

    /// The weights after the spec's last field, borrowed in place.
    pub(crate) fn weights(self) -> Result<&'a [f32], Error> {
        weights(self.rest)
    }
}

/// Length in bytes of the model file [`write_into`] writes for `spec` and
/// `values` 4-byte values.
pub fn file_len<S: Serialize>(spec: &S, values: usize) -> Result<usize, Error> {
    Ok(layout(spec, values)?.file_len)
}

/// Where a file's parts go: see [`write_into`].
struct Layout {
    spec_len: usize,
    pad: usize,
    data_len: usize,
    file_len: usize,
}

fn layout<S: Serialize>(spec: &S, values: usize) -> Result<Layout, Error> {
    let spec_len =
        postcard::experimental::serialized_size(spec).map_err(|_| Error::InvalidParameters)?;
    let data_len = values.checked_mul(4).ok_or(Error::InvalidParameters)?;
    // Offset of the first weight byte with no padding: header, spec, the pad's
    // one-byte length prefix, the data's length prefix.
    let unpadded = HEADER_LEN + spec_len + 1 + varint_len(data_len);
    let pad = (4 - unpadded % 4) % 4;
    let file_len = (unpadded + pad)
        .checked_add(data_len)
        .and_then(|n| n.checked_add(CRC_LEN))
        .filter(|&n| u32::try_from(n).is_ok())
        .ok_or(Error::InvalidParameters)?;
    Ok(Layout {
        spec_len,
        pad,
        data_len,
        file_len,
    })
}

/// Encodes a model file into `out` without allocating: header, postcard
/// body (the spec, alignment padding, `values` 4-byte values that `fill`
/// writes, 4-byte aligned relative to the file's start), CRC. Returns the
/// file's length; `BufferTooSmall` if `out` is shorter (see [`file_len`]).
/// What `fill` returns is passed on, and a failed file is not sealed.
pub fn write_into<S: Serialize>(
    kind: ModelKind,
    schema: u32,
    spec: &S,
    values: usize,
    out: &mut [u8],
    fill: impl FnOnce(&mut [u8]) -> Result<(), Error>,
) -> Result<usize, Error> {
    let layout = layout(spec, values)?;
    let found = out.len();
    let file = out
        .get_mut(..layout.file_len)
        .ok_or(Error::BufferTooSmall {
            needed: layout.file_len,
            found,
        })?;
    // Every split is checked (no panic path), though `layout` sized them.
    const INTERNAL: Error = Error::InvalidShape(Shape::Internal);
    let body_len = layout.file_len - HEADER_LEN - CRC_LEN;
    let (content, crc) = file
        .split_at_mut_checked(HEADER_LEN + body_len)
        .ok_or(INTERNAL)?;
    let (header, rest) = content
        .split_first_chunk_mut::<HEADER_LEN>()
        .ok_or(INTERNAL)?;
    let mut fields = [0u8; HEADER_LEN];
    fields[0..4].copy_from_slice(&MAGIC);
    fields[4..6].copy_from_slice(&VERSION.to_le_bytes());
    fields[6..8].copy_from_slice(&(kind as u16).to_le_bytes());
    fields[8..12].copy_from_slice(&schema.to_le_bytes());
    fields[12..16].copy_from_slice(&(body_len as u32).to_le_bytes());
    *header = fields;
    let (spec_bytes, rest) = rest.split_at_mut_checked(layout.spec_len).ok_or(INTERNAL)?;
    postcard::to_slice(spec, spec_bytes).map_err(|_| Error::InvalidParameters)?;
    // The pad and the data are postcard byte slices: a varint length, then
    // the bytes.
    let (pad, rest) = rest.split_at_mut_checked(1 + layout.pad).ok_or(INTERNAL)?;
    pad.fill(0);
    if let Some(first) = pad.first_mut() {
        *first = layout.pad as u8;
    }
    let prefix = varint_len(layout.data_len);
    let (length, data) = rest.split_at_mut_checked(prefix).ok_or(INTERNAL)?;
    let mut value = layout.data_len;
    for byte in length.iter_mut() {
        *byte = (value & 0x7f) as u8 | if value >= 0x80 { 0x80 } else { 0 };
        value >>= 7;
    }
    if data.len() != layout.data_len {
        return Err(INTERNAL);
    }
    fill(data)?;
    *crc.first_chunk_mut::<CRC_LEN>().ok_or(INTERNAL)? = checksum(content).to_le_bytes();
    Ok(layout.file_len)
}

/// Encodes a model file: header, postcard body with aligned weights, CRC
/// (see [`write_into`]).
#[cfg(feature = "alloc")]
pub(crate) fn write<S: Serialize>(
    kind: ModelKind,
    schema: u32,
    spec: &S,
    data: &[f32],
) -> Result<alloc::vec::Vec<u8>, Error> {
    let mut out = alloc::vec![0u8; file_len(spec, data.len())?];
    write_into(kind, schema, spec, data.len(), &mut out, |bytes| {
        for (chunk, v) in bytes.chunks_exact_mut(4).zip(data) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    })?;
    Ok(out)
}

fn varint_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Bytes at a 4-byte aligned address, so that a model's weights can be read in place.
///
/// ```
/// use tinygen_runtime::Aligned;
/// static MODEL: &Aligned<[u8]> = &Aligned([0u8; 8]);
/// assert_eq!(MODEL.0.as_ptr() as usize % 4, 0);
/// ```
#[repr(C, align(4))]
pub struct Aligned<B: ?Sized>(pub B);

/// Embeds a model file at a 4-byte aligned address as `&'static [u8]`.
///
/// ```ignore
/// static MODEL: &[u8] = tinygen_runtime::include_model!("model.tgm");
/// ```
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        static ALIGNED: &$crate::Aligned<[u8]> = &$crate::Aligned(*include_bytes!($path));
        &ALIGNED.0
    }};
}
