//! The C functions called from Rust: on the runtime's golden files of every
//! kind they give the runtime's own results bit for bit, and every misuse a
//! C caller can make is an error code.

use std::vec;
use std::vec::Vec;

use tinygen_runtime::diffusion::Sampler;
use tinygen_runtime::qnetwork::QScratch;
use tinygen_runtime::{Decoder, Detector, Diffusion, Gmm, Network, QNetwork, Scratch};

use super::*;

/// A model file at a 4-byte aligned address (or one byte past it).
struct File {
    words: Vec<u32>,
    len: usize,
    offset: usize,
}

impl File {
    fn new(bytes: &[u8]) -> Self {
        Self::at(bytes, 0)
    }

    fn at(bytes: &[u8], offset: usize) -> Self {
        let mut words = vec![0u32; (bytes.len() + offset).div_ceil(4)];
        bytemuck_bytes(&mut words)[offset..offset + bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
            offset,
        }
    }

    fn bytes(&self) -> &[u8] {
        let all: &[u8] = unsafe {
            core::slice::from_raw_parts(self.words.as_ptr().cast(), self.words.len() * 4)
        };
        &all[self.offset..self.offset + self.len]
    }
}

fn bytemuck_bytes(words: &mut [u32]) -> &mut [u8] {
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 4) }
}

macro_rules! golden {
    ($name:literal) => {
        include_bytes!(concat!("../../runtime/tests/golden/", $name))
    };
}

const GMM: &[u8] = golden!("gmm.tgm");
const KDE: &[u8] = golden!("kde.tgm");
const DETECTOR: &[u8] = golden!("detector.tgm");
const DETECTOR_INT8: &[u8] = golden!("detector_int8.tgm");
const DECODER: &[u8] = golden!("decoder.tgm");
const ENCODER: &[u8] = golden!("encoder.tgm");
const DECODER_INT8: &[u8] = golden!("decoder_int8.tgm");
const ENCODER_INT8: &[u8] = golden!("encoder_int8.tgm");
const DIFFUSION: &[u8] = golden!("diffusion.tgm");

const ALL: [(&[u8], tg_kind); 9] = [
    (GMM, tg_kind::TG_KIND_GMM),
    (KDE, tg_kind::TG_KIND_KDE),
    (DETECTOR, tg_kind::TG_KIND_DETECTOR),
    (DETECTOR_INT8, tg_kind::TG_KIND_DETECTOR),
    (DECODER, tg_kind::TG_KIND_DECODER),
    (ENCODER, tg_kind::TG_KIND_ENCODER),
    (DECODER_INT8, tg_kind::TG_KIND_DECODER_INT8),
    (ENCODER_INT8, tg_kind::TG_KIND_ENCODER_INT8),
    (DIFFUSION, tg_kind::TG_KIND_DIFFUSION),
];

fn closed() -> tg_model {
    tg_model {
        _opaque: [MaybeUninit::new(0); TG_MODEL_WORDS],
    }
}

fn open(file: &File) -> tg_model {
    let mut m = closed();
    let s = unsafe { tg_model_open(&mut m, file.bytes().as_ptr(), file.len) };
    assert_eq!(s, TG_OK);
    m
}

/// Deterministic inputs of length `n` (some negative, some above 1).
fn inputs(n: usize, row: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7 + row * 13) % 11) as f32 / 4.0 - 1.0)
        .collect()
}

/// Scratch of `len` bytes, 4-byte aligned.
fn scratch(len: usize) -> Vec<u32> {
    vec![0u32; len.div_ceil(4).max(1)]
}

#[test]
fn every_kind_gives_the_runtimes_results_bit_for_bit() {
    for (bytes, kind) in ALL {
        let file = File::new(bytes);
        let m = open(&file);
        let any = AnyModel::from_bytes(file.bytes()).unwrap();
        assert_eq!(unsafe { tg_model_kind(&m) }, kind);
        let (n_in, n_out) = (any.input_len(), any.output_len());
        assert_eq!(unsafe { tg_input_dim(&m) }, n_in);
        assert_eq!(unsafe { tg_output_dim(&m) }, n_out);
        assert_eq!(unsafe { tg_macs(&m) }, any.macs());
        let size = unsafe { tg_scratch_size(&m) };
        let mut work = scratch(size);
        for row in 0..8 {
            let mut x = inputs(n_in, row);
            if let AnyModel::Diffusion(d) = any {
                // The last input is a timestep from 1 to T.
                x[n_in - 1] = (row % usize::from(d.spec().steps) + 1) as f32;
            }
            let mut got = vec![f32::NAN; n_out];
            let mut want = vec![0.0f32; n_out];
            match any {
                AnyModel::Density(g) => {
                    let s = unsafe { tg_log_density(&m, x.as_ptr(), n_in, got.as_mut_ptr()) };
                    assert_eq!(s, TG_OK);
                    want[0] = g.log_density(&x).unwrap();
                    assert_eq!(
                        want[0],
                        Gmm::from_bytes(file.bytes())
                            .unwrap()
                            .log_density(&x)
                            .unwrap()
                    );
                }
                AnyModel::Detector(d) => {
                    let s = unsafe { tg_detector_score(&m, x.as_ptr(), n_in, got.as_mut_ptr()) };
                    assert_eq!(s, TG_OK);
                    want[0] = Detector::from_bytes(file.bytes())
                        .unwrap()
                        .score(&x)
                        .unwrap();
                    let mut alarm = false;
                    let s = unsafe { tg_detector_is_anomaly(&m, x.as_ptr(), n_in, &mut alarm) };
                    assert_eq!((s, alarm), (TG_OK, d.is_anomaly(&x).unwrap()));
                    let mut threshold = 0.0;
                    assert_eq!(unsafe { tg_detector_threshold(&m, &mut threshold) }, TG_OK);
                    assert_eq!(threshold, d.threshold());
                    // The density's log-density at the point's features.
                    let mut log_p = 0.0;
                    let s = unsafe { tg_log_density(&m, x.as_ptr(), n_in, &mut log_p) };
                    assert_eq!(s, TG_OK);
                    if !d.has_neural() {
                        assert_eq!(log_p.to_bits(), (-want[0]).to_bits());
                    }
                    assert_eq!(log_p, d.density().log_density(&x).unwrap());
                }
                AnyModel::Network(_) | AnyModel::QNetwork(_) | AnyModel::Diffusion(_) => {
                    let s = unsafe {
                        tg_decode(
                            &m,
                            x.as_ptr(),
                            n_in,
                            got.as_mut_ptr(),
                            n_out,
                            work.as_mut_ptr().cast(),
                            size,
                        )
                    };
                    assert_eq!(s, TG_OK, "{kind:?}");
                    match any {
                        AnyModel::Network(_) => Network::from_bytes(file.bytes())
                            .unwrap()
                            .forward(&x, &mut want, &mut Scratch::<64>::new())
                            .unwrap(),
                        AnyModel::Diffusion(_) => {
                            any.eval(&x, &mut want, &mut Scratch::<64>::new()).unwrap()
                        }
                        _ => QNetwork::from_bytes(file.bytes())
                            .unwrap()
                            .forward(&x, &mut want, &mut QScratch::<64>::new())
                            .unwrap(),
                    }
                }
            }
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{kind:?} row {row}");
        }
    }
}

/// `tg_sample` draws a diffusion model's sample by the file's sampler and
/// `tg_diffusion_sample` by any, as the Rust runtime does; bad samplers
/// draw nothing, and decoders refuse `tg_diffusion_sample`.
#[test]
fn diffusion_sampling_replays_the_runtimes_draws() {
    let file = File::new(DIFFUSION);
    let m = open(&file);
    let model = Diffusion::from_bytes(file.bytes()).unwrap();
    let n = unsafe { tg_output_dim(&m) };
    assert_eq!(n, model.dim());
    let size = unsafe { tg_scratch_size(&m) };
    assert_eq!(size, 4 * model.work_len());
    let mut work = scratch(size);
    let mut host_work = vec![0f32; model.work_len()];
    let mut rng = tg_rng { _state: [0; 4] };
    assert_eq!(unsafe { tg_rng_seed(&mut rng, 3) }, TG_OK);
    let mut host = Xoshiro128PlusPlus::seed_from_u64(3);
    for (steps, eta) in [(0u16, 0f32), (4, 1.0), (2, 0.0), (3, 0.5)] {
        let mut got = vec![0f32; n];
        let s = if steps == 0 {
            unsafe {
                tg_sample(
                    &m,
                    &mut rng,
                    got.as_mut_ptr(),
                    n,
                    work.as_mut_ptr().cast(),
                    size,
                )
            }
        } else {
            unsafe {
                tg_diffusion_sample(
                    &m,
                    &mut rng,
                    steps,
                    eta,
                    got.as_mut_ptr(),
                    n,
                    work.as_mut_ptr().cast(),
                    size,
                )
            }
        };
        assert_eq!(s, TG_OK);
        let sampler = if steps == 0 {
            model.spec().sampler
        } else {
            Sampler { steps, eta }
        };
        let mut want = vec![0f32; n];
        model
            .sample_in(&mut host, sampler, &mut want, &mut host_work)
            .unwrap();
        assert_eq!(
            got[0].to_bits(),
            want[0].to_bits(),
            "{steps} steps, eta {eta}"
        );
    }
    let before = rng._state;
    for (steps, eta) in [(0u16, 0.0f32), (5, 0.0), (2, 2.0)] {
        let s = unsafe {
            tg_diffusion_sample(
                &m,
                &mut rng,
                steps,
                eta,
                vec![0f32; n].as_mut_ptr(),
                n,
                work.as_mut_ptr().cast(),
                size,
            )
        };
        assert_eq!(s, TG_ERR_PARAMETERS, "{steps} steps, eta {eta}");
    }
    let s = unsafe {
        tg_diffusion_sample(
            &m,
            &mut rng,
            2,
            0.0,
            vec![0f32; n].as_mut_ptr(),
            n,
            work.as_mut_ptr().cast(),
            size - 4,
        )
    };
    assert_eq!(s, TG_ERR_SCRATCH_TOO_SMALL);
    assert_eq!(rng._state, before);
    let decoder = File::new(DECODER);
    let d = open(&decoder);
    let s = unsafe {
        tg_diffusion_sample(
            &d,
            &mut rng,
            2,
            0.0,
            [0f32; 1].as_mut_ptr(),
            1,
            work.as_mut_ptr().cast(),
            size,
        )
    };
    assert_eq!(s, TG_ERR_WRONG_KIND);
}

#[test]
fn sampling_replays_the_runtimes_draws() {
    for bytes in [DECODER, DECODER_INT8] {
        let file = File::new(bytes);
        let m = open(&file);
        let n = unsafe { tg_output_dim(&m) };
        let size = unsafe { tg_scratch_size(&m) };
        let mut work = scratch(size);
        let mut rng = tg_rng { _state: [0; 4] };
        assert_eq!(unsafe { tg_rng_seed(&mut rng, 7) }, TG_OK);
        let mut host = Xoshiro128PlusPlus::seed_from_u64(7);
        for _ in 0..5 {
            let mut got = vec![0.0f32; n];
            let s = unsafe {
                tg_sample(
                    &m,
                    &mut rng,
                    got.as_mut_ptr(),
                    n,
                    work.as_mut_ptr().cast(),
                    size,
                )
            };
            assert_eq!(s, TG_OK);
            let mut want = vec![0.0f32; n];
            match AnyModel::from_bytes(file.bytes()).unwrap() {
                AnyModel::Network(_) => Decoder::<64>::from_bytes(file.bytes())
                    .unwrap()
                    .sample(&mut host, &mut want, &mut Scratch::new())
                    .unwrap(),
                AnyModel::QNetwork(q) => q
                    .sample(&mut host, &mut want, &mut QScratch::<64>::new())
                    .unwrap(),
                _ => unreachable!(),
            }
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        // A failed call draws nothing: the next sample is still the host's next.
        let before = rng._state;
        let s = unsafe {
            tg_sample(
                &m,
                &mut rng,
                vec![0.0f32; n + 1].as_mut_ptr(),
                n + 1,
                work.as_mut_ptr().cast(),
                size,
            )
        };
        assert_eq!(s, TG_ERR_DIMENSION);
        let s = unsafe {
            tg_sample(
                &m,
                &mut rng,
                vec![0.0f32; n].as_mut_ptr(),
                n,
                work.as_mut_ptr().cast(),
                size - 4,
            )
        };
        assert_eq!(s, TG_ERR_SCRATCH_TOO_SMALL);
        assert_eq!(rng._state, before);
    }
}

#[test]
fn int8_tensors_in_and_out_match_forward_i8() {
    for bytes in [DECODER_INT8, ENCODER_INT8] {
        let file = File::new(bytes);
        let m = open(&file);
        let QNetworkParts { net, n_in, n_out } = parts(&file);
        let size = unsafe { tg_scratch_size(&m) };
        let mut work = scratch(size);
        let x: Vec<i8> = (0..n_in).map(|i| (i as i8).wrapping_mul(37)).collect();
        let mut got = vec![0i8; n_out];
        let s = unsafe {
            tg_decode_i8(
                &m,
                x.as_ptr(),
                n_in,
                got.as_mut_ptr(),
                n_out,
                work.as_mut_ptr().cast(),
                size,
            )
        };
        assert_eq!(s, TG_OK);
        let mut want = vec![0i8; n_out];
        net.forward_i8(&x, &mut want, &mut QScratch::<64>::new())
            .unwrap();
        assert_eq!(got, want);
        let (mut scale, mut zero) = (0.0f32, 0i32);
        assert_eq!(unsafe { tg_input_quant(&m, &mut scale, &mut zero) }, TG_OK);
        assert_eq!(
            (scale, zero),
            (
                net.input_params().scale,
                i32::from(net.input_params().zero_point)
            )
        );
        assert_eq!(unsafe { tg_output_quant(&m, &mut scale, &mut zero) }, TG_OK);
        assert_eq!(
            (scale, zero),
            (
                net.output_params().scale,
                i32::from(net.output_params().zero_point)
            )
        );
    }
}

struct QNetworkParts<'a> {
    net: QNetwork<'a>,
    n_in: usize,
    n_out: usize,
}

fn parts(file: &File) -> QNetworkParts<'_> {
    let net = QNetwork::from_bytes(file.bytes()).unwrap();
    QNetworkParts {
        n_in: net.input_dim(),
        n_out: net.output_dim(),
        net,
    }
}

#[test]
fn bad_model_bytes_are_error_codes_and_leave_the_model_closed() {
    let mut m = closed();
    let good = File::new(GMM);
    assert_eq!(
        unsafe { tg_model_open(core::ptr::null_mut(), good.bytes().as_ptr(), good.len) },
        TG_ERR_NULL
    );
    assert_eq!(
        unsafe { tg_model_open(&mut m, core::ptr::null(), good.len) },
        TG_ERR_NULL
    );
    let odd = File::at(GMM, 1);
    assert_eq!(
        unsafe { tg_model_open(&mut m, odd.bytes().as_ptr(), odd.len) },
        TG_ERR_MISALIGNED
    );
    let cases: [(Vec<u8>, tg_status); 5] = [
        (GMM[..GMM.len() - 1].to_vec(), TG_ERR_LENGTH),
        (GMM[..10].to_vec(), TG_ERR_TOO_SHORT),
        (
            {
                let mut b = GMM.to_vec();
                b[0] = b'X';
                b
            },
            TG_ERR_BAD_MAGIC,
        ),
        (
            {
                let mut b = GMM.to_vec();
                let i = b.len() / 2;
                b[i] ^= 0x10;
                b
            },
            TG_ERR_CRC,
        ),
        (
            {
                let mut b = GMM.to_vec();
                b[6] = 99;
                b
            },
            TG_ERR_UNKNOWN_KIND,
        ),
    ];
    for (bytes, want) in cases {
        // Open a good model first: a failed open must close it.
        m = open(&good);
        let file = File::new(&bytes);
        assert_eq!(
            unsafe { tg_model_open(&mut m, file.bytes().as_ptr(), file.len) },
            want
        );
        assert_eq!(unsafe { tg_model_kind(&m) }, tg_kind::TG_KIND_NONE);
        let mut out = 0.0f32;
        assert_eq!(
            unsafe { tg_log_density(&m, [0.0f32].as_ptr(), 1, &mut out) },
            TG_ERR_NOT_OPEN
        );
    }
    // A zeroed tg_model was never opened.
    let zero = closed();
    assert_eq!(unsafe { tg_input_dim(&zero) }, 0);
    assert_eq!(unsafe { tg_scratch_size(core::ptr::null()) }, 0);
    assert_eq!(
        unsafe { tg_model_kind(core::ptr::null()) },
        tg_kind::TG_KIND_NONE
    );
}

#[test]
fn wrong_kinds_lengths_pointers_and_scratch_are_error_codes() {
    let files: Vec<File> = ALL.iter().map(|(b, _)| File::new(b)).collect();
    let models: Vec<tg_model> = files.iter().map(open).collect();
    let mut out = [0.0f32; 64];
    let x = [0.5f32; 64];
    let mut work = scratch(4096);
    let w = work.as_mut_ptr().cast::<c_void>();
    for (i, (m, (_, kind))) in models.iter().zip(ALL).enumerate() {
        let (n_in, n_out) = unsafe { (tg_input_dim(m), tg_output_dim(m)) };
        let mut x = x;
        if kind == tg_kind::TG_KIND_DIFFUSION {
            // The last input is a timestep from 1 to T.
            x[n_in - 1] = 1.0;
        }
        let is = |kinds: &[tg_kind]| kinds.contains(&kind);
        let density = is(&[
            tg_kind::TG_KIND_GMM,
            tg_kind::TG_KIND_KDE,
            tg_kind::TG_KIND_DETECTOR,
        ]);
        let network = !density;
        let detector = is(&[tg_kind::TG_KIND_DETECTOR]);
        let int8 = is(&[tg_kind::TG_KIND_DECODER_INT8, tg_kind::TG_KIND_ENCODER_INT8]);
        let sampler = is(&[
            tg_kind::TG_KIND_DECODER,
            tg_kind::TG_KIND_DECODER_INT8,
            tg_kind::TG_KIND_DIFFUSION,
        ]);
        let wrong = |ok: bool, s: tg_status| {
            if ok {
                assert_ne!(s, TG_ERR_WRONG_KIND, "{kind:?}");
            } else {
                assert_eq!(s, TG_ERR_WRONG_KIND, "{kind:?}");
            }
        };
        unsafe {
            wrong(
                density,
                tg_log_density(m, x.as_ptr(), n_in, out.as_mut_ptr()),
            );
            wrong(
                detector,
                tg_detector_score(m, x.as_ptr(), n_in, out.as_mut_ptr()),
            );
            wrong(detector, tg_detector_threshold(m, out.as_mut_ptr()));
            wrong(
                network,
                tg_decode(m, x.as_ptr(), n_in, out.as_mut_ptr(), n_out, w, 4096),
            );
            let mut rng = tg_rng {
                _state: [1, 2, 3, 4],
            };
            let s = tg_sample(m, &mut rng, out.as_mut_ptr(), n_out, w, 4096);
            if sampler {
                assert_eq!(s, TG_OK, "{kind:?}");
            } else if network {
                // An encoder is a network, but samples nothing.
                assert!(
                    s == TG_ERR_WRONG_KIND || s == TG_ERR_NO_PRIOR,
                    "{kind:?}: {s:?}"
                );
            } else {
                wrong(false, s);
            }
            let (mut scale, mut zero) = (0.0, 0);
            wrong(int8, tg_input_quant(m, &mut scale, &mut zero));
            let mut qout = [0i8; 64];
            wrong(
                int8,
                tg_decode_i8(
                    m,
                    [0i8; 64].as_ptr(),
                    n_in,
                    qout.as_mut_ptr(),
                    n_out,
                    w,
                    4096,
                ),
            );

            // Lengths.
            if density {
                assert_eq!(
                    tg_log_density(m, x.as_ptr(), n_in + 1, out.as_mut_ptr()),
                    TG_ERR_DIMENSION
                );
                assert_eq!(
                    tg_log_density(m, core::ptr::null(), n_in, out.as_mut_ptr()),
                    TG_ERR_NULL
                );
                assert_eq!(
                    tg_log_density(m, x.as_ptr(), n_in, core::ptr::null_mut()),
                    TG_ERR_NULL
                );
                let odd = x.as_ptr().cast::<u8>().add(1).cast::<f32>();
                assert_eq!(
                    tg_log_density(m, odd, n_in, out.as_mut_ptr()),
                    TG_ERR_MISALIGNED
                );
                let mut nan = [0.0f32; 64];
                nan[0] = f32::NAN;
                assert_eq!(
                    tg_log_density(m, nan.as_ptr(), n_in, out.as_mut_ptr()),
                    TG_ERR_NONFINITE_INPUT
                );
            }
            if network {
                let size = tg_scratch_size(m);
                assert!(size > 0 && size.is_multiple_of(4), "{kind:?}: {size}");
                let d = |input: *const f32, n_in, out: *mut f32, n_out, work: *mut c_void, len| {
                    tg_decode(m, input, n_in, out, n_out, work, len)
                };
                assert_eq!(d(x.as_ptr(), n_in, out.as_mut_ptr(), n_out, w, size), TG_OK);
                assert_eq!(
                    d(x.as_ptr(), n_in, out.as_mut_ptr(), n_out - 1, w, size),
                    TG_ERR_DIMENSION
                );
                assert_eq!(
                    d(x.as_ptr(), n_in - 1, out.as_mut_ptr(), n_out, w, size),
                    TG_ERR_DIMENSION
                );
                // No scratch: enough only for a network without hidden layers.
                let hidden = AnyModel::from_bytes(files[i].bytes())
                    .unwrap()
                    .scratch_width();
                let none = d(
                    x.as_ptr(),
                    n_in,
                    out.as_mut_ptr(),
                    n_out,
                    core::ptr::null_mut(),
                    0,
                );
                assert_eq!(
                    none,
                    if hidden > 0 {
                        TG_ERR_SCRATCH_TOO_SMALL
                    } else {
                        TG_OK
                    }
                );
                assert!(
                    hidden > 0 || kind != tg_kind::TG_KIND_DECODER,
                    "the golden decoder has a hidden layer"
                );
                assert_eq!(
                    d(
                        x.as_ptr(),
                        n_in,
                        out.as_mut_ptr(),
                        n_out,
                        core::ptr::null_mut(),
                        size
                    ),
                    TG_ERR_NULL
                );
                assert_eq!(
                    d(
                        x.as_ptr(),
                        n_in,
                        out.as_mut_ptr(),
                        n_out,
                        w.cast::<u8>().add(2).cast(),
                        size
                    ),
                    TG_ERR_MISALIGNED
                );
                assert_eq!(
                    d(x.as_ptr(), n_in, core::ptr::null_mut(), n_out, w, size),
                    TG_ERR_NULL
                );
                // The output inside the input, or inside the scratch.
                let mut both = [0.25f32; 128];
                if kind == tg_kind::TG_KIND_DIFFUSION {
                    both[n_in - 1] = 1.0;
                }
                let p = both.as_mut_ptr();
                assert_eq!(d(p, n_in, p.add(n_in - 1), n_out, w, size), TG_ERR_OVERLAP);
                assert_eq!(
                    d(x.as_ptr(), n_in, w.cast(), n_out, w, size),
                    TG_ERR_OVERLAP
                );
                assert_eq!(d(p, n_in, p.add(n_in), n_out, w, size), TG_OK);
                let mut nan = [0.0f32; 64];
                nan[n_in - 1] = f32::INFINITY;
                assert_eq!(
                    d(nan.as_ptr(), n_in, out.as_mut_ptr(), n_out, w, size),
                    TG_ERR_NONFINITE_INPUT
                );
            }
        }
    }
}

#[test]
fn every_status_has_its_own_description() {
    let text = |s: i32| {
        unsafe { core::ffi::CStr::from_ptr(tg_strerror(s)) }
            .to_str()
            .unwrap()
    };
    let all: Vec<&str> = (0..=TG_ERR_NOT_POSITIVE_DEFINITE as i32)
        .map(text)
        .collect();
    for (i, t) in all.iter().enumerate() {
        assert!(!t.is_empty());
        assert_eq!(all.iter().filter(|u| *u == t).count(), 1, "code {i}: {t}");
    }
    assert_eq!(text(TG_OK as i32), "ok");
    for code in [-1, 27, 1000, i32::MIN, i32::MAX] {
        assert_eq!(text(code), "unknown tinygen status code");
    }
    let version = unsafe { core::ffi::CStr::from_ptr(tg_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_runtime_error_has_a_status() {
    use tinygen_runtime::Shape;
    let errors = [
        (Error::TooShort, TG_ERR_TOO_SHORT),
        (Error::BadMagic, TG_ERR_BAD_MAGIC),
        (Error::UnsupportedVersion(2), TG_ERR_VERSION),
        (Error::UnknownKind(9), TG_ERR_UNKNOWN_KIND),
        (Error::SchemaMismatch, TG_ERR_SCHEMA),
        (Error::LengthMismatch, TG_ERR_LENGTH),
        (
            Error::CrcMismatch {
                stored: 1,
                computed: 2,
            },
            TG_ERR_CRC,
        ),
        (Error::Malformed, TG_ERR_MALFORMED),
        (Error::Misaligned, TG_ERR_MISALIGNED),
        (Error::InvalidShape(Shape::Empty), TG_ERR_SHAPE),
        (Error::InvalidShape(Shape::Internal), TG_ERR_INTERNAL),
        (Error::InvalidParameters, TG_ERR_PARAMETERS),
        (Error::NonFiniteOutput, TG_ERR_NONFINITE_PARAMETER),
        (Error::NonFiniteParameter, TG_ERR_NONFINITE_PARAMETER),
        (Error::NonFiniteInput, TG_ERR_NONFINITE_INPUT),
        (
            Error::DimensionMismatch {
                expected: 1,
                found: 2,
            },
            TG_ERR_DIMENSION,
        ),
        (
            Error::TooWide { width: 2, max: 1 },
            TG_ERR_SCRATCH_TOO_SMALL,
        ),
        (
            Error::TooManyLayers {
                layers: 17,
                max: 16,
            },
            TG_ERR_TOO_MANY_LAYERS,
        ),
        (Error::ParameterOutOfRange, TG_ERR_PARAMETER_RANGE),
        (Error::NoPrior, TG_ERR_NO_PRIOR),
        (Error::StillLearning { remaining: 3 }, TG_ERR_STILL_LEARNING),
        (Error::NotPositiveDefinite, TG_ERR_NOT_POSITIVE_DEFINITE),
        (
            Error::BufferTooSmall {
                needed: 2,
                found: 1,
            },
            TG_ERR_SCRATCH_TOO_SMALL,
        ),
    ];
    for (e, s) in errors {
        assert_eq!(status(e), s, "{e:?}");
    }
}

#[test]
fn the_rng_is_seeded_as_the_runtimes() {
    use tinygen_runtime::rand_core::RngCore;
    let mut rng = tg_rng { _state: [0; 4] };
    assert_eq!(unsafe { tg_rng_seed(&mut rng, 42) }, TG_OK);
    let mut host = Xoshiro128PlusPlus::seed_from_u64(42);
    let ours = unsafe { &mut *(&mut rng as *mut tg_rng).cast::<Xoshiro128PlusPlus>() };
    for _ in 0..16 {
        assert_eq!(ours.next_u32(), host.next_u32());
    }
    assert_eq!(
        unsafe { tg_rng_seed(core::ptr::null_mut(), 42) },
        TG_ERR_NULL
    );
}

mod learning {
    use tinygen_runtime::detector::Features;
    use tinygen_runtime::gmm::Covariance;
    use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe, RecipeSpec};

    use super::*;

    fn unstarted() -> tg_learner {
        tg_learner {
            _opaque: [MaybeUninit::new(0); TG_LEARNER_WORDS],
        }
    }

    /// `spec` encoded, 4-byte aligned as a device stores it.
    fn aligned(spec: RecipeSpec) -> File {
        File::new(&spec.encode().unwrap())
    }

    fn spec(components: u32, covariance: Covariance, reg_covar: f64) -> RecipeSpec {
        RecipeSpec {
            features: Features::WindowStats {
                channels: 2,
                length: 5,
            },
            dim: 8,
            covariance,
            components,
            iterations: 5,
            seed: 7,
            reg_covar,
            alarm_rate: 0.1,
            learn: 40,
            calibrate: 20,
            second_reg_covar: None,
        }
    }

    /// The learner's buffers, sized by `tg_learner_sizes`.
    struct Memory {
        state: Vec<f64>,
        features: Vec<f32>,
        scores: Vec<f32>,
        file: Vec<u32>,
        sizes: tg_learner_memory,
    }

    impl Memory {
        fn for_recipe(recipe: &[u8]) -> Self {
            let mut sizes = tg_learner_memory::default();
            let s = unsafe { tg_learner_sizes(recipe.as_ptr(), recipe.len(), &mut sizes) };
            assert_eq!(s, TG_OK);
            Self {
                state: vec![0.0; sizes.state],
                features: vec![0.0; sizes.features],
                scores: vec![0.0; sizes.scores],
                file: vec![0; sizes.file.div_ceil(4)],
                sizes,
            }
        }

        fn start(&mut self, l: &mut tg_learner, recipe: &[u8]) -> tg_status {
            let (scores, file) = (self.scores.as_mut_ptr(), self.file.as_mut_ptr().cast());
            self.start_with(l, recipe, scores, file, self.sizes.file)
        }

        /// [`Self::start`] with another scores or file pointer.
        fn start_with(
            &mut self,
            l: &mut tg_learner,
            recipe: &[u8],
            scores: *mut f32,
            file: *mut u8,
            n_file: usize,
        ) -> tg_status {
            unsafe {
                tg_learner_start(
                    l,
                    recipe.as_ptr(),
                    recipe.len(),
                    self.state.as_mut_ptr(),
                    self.state.len(),
                    self.features.as_mut_ptr(),
                    self.features.len(),
                    scores,
                    self.scores.len(),
                    file,
                    n_file,
                )
            }
        }
    }

    /// Window `i` of a slowly drifting two-channel signal.
    fn window(i: usize) -> [f32; 10] {
        core::array::from_fn(|j| {
            let t = (i * 5 + j / 2) as f32 * 0.37;
            if j % 2 == 0 {
                t.sin()
            } else {
                (1.3 * t).cos() * 2.0
            }
        })
    }

    fn observe(l: &mut tg_learner, x: &[f32]) -> (tg_status, tg_progress, usize) {
        let (mut progress, mut remaining) = (tg_progress::TG_PROGRESS_LEARNING, usize::MAX);
        let s =
            unsafe { tg_learner_observe(l, x.as_ptr(), x.len(), &mut progress, &mut remaining) };
        (s, progress, remaining)
    }

    #[test]
    fn the_c_learner_learns_the_runtimes_file_byte_for_byte() {
        for (components, covariance, second) in [
            (1, Covariance::Full, None),
            (3, Covariance::Diag, None),
            (1, Covariance::Full, Some(0.01)),
            (3, Covariance::Diag, Some(0.01)),
        ] {
            let recipe = aligned(RecipeSpec {
                second_reg_covar: second,
                ..spec(components, covariance, 1e-3)
            });
            let recipe = recipe.bytes();
            let mut memory = Memory::for_recipe(recipe);
            assert_eq!(memory.sizes.input_dim, 10);
            // A pair keeps both terms of its 20 calibration inputs and a copy.
            let terms = if second.is_some() { 3 } else { 1 };
            assert_eq!(memory.sizes.scores, 20 * terms);
            let mut l = unstarted();
            assert_eq!(memory.start(&mut l, recipe), TG_OK);

            // The runtime's learner on the same inputs, in its own buffers.
            let parsed = Recipe::from_bytes(recipe).unwrap();
            let (mut state, mut features, mut scores) = (
                vec![0f64; memory.sizes.state],
                vec![0f32; memory.sizes.features],
                vec![0f32; memory.sizes.scores],
            );
            let mut file = vec![0u32; memory.file.len()];
            let mut rust = Learner::new(
                &parsed,
                Buffers {
                    state: &mut state,
                    features: &mut features,
                    scores: &mut scores,
                    file: &mut bytemuck_bytes(&mut file)[..memory.sizes.file],
                },
            )
            .unwrap();

            let mut out: *const u8 = core::ptr::null();
            let mut len = 0;
            for i in 0..60 {
                let x = window(i);
                let (s, progress, remaining) = observe(&mut l, &x);
                assert_eq!(s, TG_OK);
                let want = match rust.observe(&x).unwrap() {
                    Progress::Learning { remaining } => {
                        (tg_progress::TG_PROGRESS_LEARNING, remaining)
                    }
                    Progress::Calibrating { remaining } => {
                        (tg_progress::TG_PROGRESS_CALIBRATING, remaining)
                    }
                    Progress::Done => (tg_progress::TG_PROGRESS_DONE, 0),
                };
                assert_eq!((progress, remaining), want, "input {i}");
                if i < 59 {
                    let s = unsafe { tg_learner_file(&l, &mut out, &mut len) };
                    assert_eq!(s, TG_ERR_STILL_LEARNING);
                }
            }
            assert_eq!(unsafe { tg_learner_file(&l, &mut out, &mut len) }, TG_OK);
            let learned = unsafe { core::slice::from_raw_parts(out, len) };
            assert_eq!(learned, rust.file().unwrap());
            // Inputs after the end are ignored.
            assert_eq!(
                observe(&mut l, &window(99)).1,
                tg_progress::TG_PROGRESS_DONE
            );

            // The learned file is a detector that scores as the runtime's.
            let stored = File::new(learned);
            let m = open(&stored);
            assert_eq!(unsafe { tg_model_kind(&m) }, tg_kind::TG_KIND_DETECTOR);
            let detector = Detector::from_bytes(stored.bytes()).unwrap();
            for i in [3, 50, 200] {
                let x = window(i).map(|v| v * (1.0 + i as f32 / 100.0));
                let mut score = 0.0;
                let s = unsafe { tg_detector_score(&m, x.as_ptr(), x.len(), &mut score) };
                assert_eq!(s, TG_OK);
                assert_eq!(score.to_bits(), detector.score(&x).unwrap().to_bits());
            }
        }
    }

    #[test]
    fn a_file_stored_in_an_erased_page_is_found_and_opens() {
        let recipe = aligned(spec(1, Covariance::Full, 1e-3));
        let recipe = recipe.bytes();
        let mut memory = Memory::for_recipe(recipe);
        let mut l = unstarted();
        assert_eq!(memory.start(&mut l, recipe), TG_OK);
        for i in 0..60 {
            assert_eq!(observe(&mut l, &window(i)).0, TG_OK);
        }
        let (mut out, mut len) = (core::ptr::null(), 0);
        assert_eq!(unsafe { tg_learner_file(&l, &mut out, &mut len) }, TG_OK);
        let learned = unsafe { core::slice::from_raw_parts(out, len) };

        // A 4 KiB flash page, erased, then the learned file written to its start.
        let mut page = vec![u32::MAX; 1024];
        let erased = bytemuck_bytes(&mut page).to_vec();
        let mut found = usize::MAX;
        let s = unsafe { tg_file_len(erased.as_ptr(), erased.len(), &mut found) };
        assert_eq!((s, found), (TG_ERR_BAD_MAGIC, usize::MAX));
        bytemuck_bytes(&mut page)[..learned.len()].copy_from_slice(learned);
        let region = bytemuck_bytes(&mut page);
        let s = unsafe { tg_file_len(region.as_ptr(), region.len(), &mut found) };
        assert_eq!((s, found), (TG_OK, learned.len()));

        // Opened from the page, it scores as the learned file.
        let mut m = closed();
        let s = unsafe { tg_model_open(&mut m, region.as_ptr(), region.len()) };
        assert_eq!(s, TG_ERR_LENGTH, "the whole page is not the file");
        assert_eq!(
            unsafe { tg_model_open(&mut m, region.as_ptr(), found) },
            TG_OK
        );
        let detector = Detector::from_bytes(learned).unwrap();
        let x = window(77);
        let mut score = 0.0;
        let s = unsafe { tg_detector_score(&m, x.as_ptr(), x.len(), &mut score) };
        assert_eq!(s, TG_OK);
        assert_eq!(score.to_bits(), detector.score(&x).unwrap().to_bits());

        // A page cut short of the file, a short region, NULL pointers.
        let s = unsafe { tg_file_len(region.as_ptr(), learned.len() - 1, &mut found) };
        assert_eq!(s, TG_ERR_LENGTH);
        let s = unsafe { tg_file_len(region.as_ptr(), 15, &mut found) };
        assert_eq!(s, TG_ERR_TOO_SHORT);
        let s = unsafe { tg_file_len(core::ptr::null(), 4096, &mut found) };
        assert_eq!(s, TG_ERR_NULL);
        let s = unsafe { tg_file_len(region.as_ptr(), region.len(), core::ptr::null_mut()) };
        assert_eq!(s, TG_ERR_NULL);
    }

    #[test]
    fn bad_inputs_are_refused_and_not_counted() {
        let recipe = aligned(spec(1, Covariance::Full, 1e-3));
        let recipe = recipe.bytes();
        let mut memory = Memory::for_recipe(recipe);
        let mut l = unstarted();
        assert_eq!(memory.start(&mut l, recipe), TG_OK);
        let mut x = window(0);
        assert_eq!(observe(&mut l, &x[..9]).0, TG_ERR_DIMENSION);
        x[3] = f32::NAN;
        assert_eq!(observe(&mut l, &x).0, TG_ERR_NONFINITE_INPUT);
        x[3] = f32::INFINITY;
        assert_eq!(observe(&mut l, &x).0, TG_ERR_NONFINITE_INPUT);
        let s = unsafe {
            tg_learner_observe(
                &mut l,
                core::ptr::null(),
                10,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        assert_eq!(s, TG_ERR_NULL);
        let mut misaligned = [0usize; 2];
        let odd = misaligned
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<usize>();
        let s = unsafe {
            tg_learner_observe(&mut l, window(0).as_ptr(), 10, core::ptr::null_mut(), odd)
        };
        assert_eq!(s, TG_ERR_MISALIGNED);
        // Progress and remaining may be NULL; none of the above counted.
        let s = unsafe {
            tg_learner_observe(
                &mut l,
                window(0).as_ptr(),
                10,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        assert_eq!(s, TG_OK);
        assert_eq!(
            observe(&mut l, &window(1)),
            (TG_OK, tg_progress::TG_PROGRESS_LEARNING, 38)
        );
    }

    #[test]
    fn a_degenerate_density_fails_the_learner_for_good() {
        // Constant windows: every statistic is constant, and with no
        // regularisation the covariance is singular.
        let recipe = aligned(spec(1, Covariance::Full, 0.0));
        let recipe = recipe.bytes();
        let mut memory = Memory::for_recipe(recipe);
        let mut l = unstarted();
        assert_eq!(memory.start(&mut l, recipe), TG_OK);
        let x = [0.5f32; 10];
        for _ in 0..39 {
            assert_eq!(observe(&mut l, &x).0, TG_OK);
        }
        assert_eq!(observe(&mut l, &x).0, TG_ERR_NOT_POSITIVE_DEFINITE);
        assert_eq!(observe(&mut l, &x).0, TG_ERR_NOT_POSITIVE_DEFINITE);
        let (mut out, mut len) = (core::ptr::null(), 0);
        assert_eq!(
            unsafe { tg_learner_file(&l, &mut out, &mut len) },
            TG_ERR_NOT_POSITIVE_DEFINITE
        );
    }

    #[test]
    fn misuse_is_an_error_code() {
        let recipe = aligned(spec(3, Covariance::Diag, 1e-3));
        let recipe = recipe.bytes();
        let mut memory = Memory::for_recipe(recipe);
        let mut l = unstarted();
        let null = core::ptr::null_mut();
        // Not started, or NULL.
        assert_eq!(observe(&mut l, &window(0)).0, TG_ERR_NOT_OPEN);
        let (mut out, mut len) = (core::ptr::null(), 0);
        assert_eq!(
            unsafe { tg_learner_file(&l, &mut out, &mut len) },
            TG_ERR_NOT_OPEN
        );
        assert_eq!(
            unsafe { tg_learner_file(core::ptr::null(), &mut out, &mut len) },
            TG_ERR_NULL
        );
        let x = window(0);
        assert_eq!(
            unsafe { tg_learner_observe(null, x.as_ptr(), 10, null.cast(), null.cast()) },
            TG_ERR_NULL
        );
        let mut sizes = tg_learner_memory::default();
        assert_eq!(
            unsafe { tg_learner_sizes(core::ptr::null(), 0, &mut sizes) },
            TG_ERR_NULL
        );
        assert_eq!(
            unsafe { tg_learner_sizes(recipe.as_ptr(), recipe.len(), null.cast()) },
            TG_ERR_NULL
        );
        // Not a recipe, or a corrupted one.
        let gmm = File::new(GMM);
        assert_eq!(
            unsafe { tg_learner_sizes(gmm.bytes().as_ptr(), gmm.len, &mut sizes) },
            TG_ERR_WRONG_KIND
        );
        let mut bad = recipe.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_ne!(memory.start(&mut l, File::new(&bad).bytes()), TG_OK);
        assert_eq!(observe(&mut l, &window(0)).0, TG_ERR_NOT_OPEN);
        // Buffers too small, misaligned or overlapping; the learner stays unstarted.
        memory.sizes.file -= 1;
        assert_eq!(memory.start(&mut l, recipe), TG_ERR_SCRATCH_TOO_SMALL);
        memory.sizes.file += 1;
        memory.scores.pop();
        assert_eq!(memory.start(&mut l, recipe), TG_ERR_SCRATCH_TOO_SMALL);
        memory.scores.push(0.0);
        let (scores, file) = (
            memory.scores.as_mut_ptr(),
            memory.file.as_mut_ptr().cast::<u8>(),
        );
        let n_file = memory.sizes.file;
        let s = memory.start_with(&mut l, recipe, scores, file.wrapping_add(1), n_file - 4);
        assert_eq!(s, TG_ERR_MISALIGNED);
        let overlapping = memory.features.as_mut_ptr();
        let s = memory.start_with(&mut l, recipe, overlapping, file, n_file);
        assert_eq!(s, TG_ERR_OVERLAP);
        assert_eq!(observe(&mut l, &window(0)).0, TG_ERR_NOT_OPEN);
        assert_eq!(memory.start(&mut l, recipe), TG_OK);
        assert_eq!(observe(&mut l, &window(0)).0, TG_OK);
    }
}
