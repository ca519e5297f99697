//! `cargo xtask bench-host`: EM and scoring against scikit-learn in one run.

use std::process::Command;

use anyhow::{Context, ensure};
use tinygen::density::gmm::{EmOptions, em_from_responsibilities};
use tinygen_runtime::gmm::Covariance;
use xtask::root;

use crate::process::{median_seconds, rerun_in_release};

/// Host timings against scikit-learn on the same data, in one run: EM
/// seconds per iteration, and runtime scoring throughput.
pub(crate) fn bench_host() -> anyhow::Result<()> {
    if let Some(done) = rerun_in_release(&[], true) {
        return done;
    }
    let dir = xtask::target_dir().join("bench-host");
    let python = std::env::var("TINYGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(root().join("scripts/bench_sklearn.py"))
        .arg("--out")
        .arg(&dir)
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    ensure!(
        out.status.success(),
        "scripts/bench_sklearn.py failed (needs numpy and scikit-learn; set TINYGEN_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sk = String::from_utf8(out.stdout)?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let at = sk
            .find(&format!("\"{name}\": "))
            .with_context(|| format!("{name} missing in {sk}"))?;
        let rest = &sk[at + name.len() + 4..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Ok(rest[..end].trim().parse()?)
    };
    let load = |file: &str| tinygen::data::load(&dir.join(file), &Default::default());
    let data = load("x.npy")?;
    let labels = load("labels.npy")?;
    let x = nalgebra::DMatrix::from_row_slice(data.rows, data.cols, &data.values);
    let k = 8;
    let mut resp = nalgebra::DMatrix::zeros(data.rows, k);
    for (i, &l) in labels.values.iter().enumerate() {
        resp[(i, l as usize)] = 1.0;
    }
    let points = data.to_f32();
    println!(
        "N = {}, D = {}, K = {k}; scikit-learn {}; speedup = scikit-learn time / tinygen time",
        data.rows,
        data.cols,
        sk.split('"').nth(3).unwrap_or("?")
    );
    println!("| measure | covariance | tinygen | scikit-learn | speedup |");
    println!("|---|---|---|---|---|");
    for (name, covariance) in [("full", Covariance::Full), ("diag", Covariance::Diag)] {
        let iters = 10;
        let opts = EmOptions {
            components: k,
            covariance,
            max_iter: iters,
            tol: 0.0,
            ..EmOptions::default()
        };
        let mut model = None;
        let em = median_seconds(|| {
            model =
                Some(em_from_responsibilities(&x, &resp, &opts, &mut |_, _, _| {}).map(|m| m.0));
        }) / iters as f64;
        let model = model.context("no fit")??;
        let sk_em = field(&format!("em_{name}_s_per_iter"))?;
        println!(
            "| EM time per iteration | {name} | {:.1} ms | {:.1} ms | {:.2} |",
            em * 1e3,
            sk_em * 1e3,
            sk_em / em
        );

        let file = tinygen::host::AlignedBytes::new(&model.params(None).encode()?);
        let gmm = tinygen_runtime::Gmm::from_bytes(file.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut scores = vec![0f32; data.rows];
        let batch = median_seconds(|| gmm.log_density_batch(&points, &mut scores).unwrap());
        let per_sample = batch / data.rows as f64;
        let sk_batch = 1.0 / field(&format!("score_{name}_samples_per_s"))?;
        println!(
            "| scoring, batch of N, runtime (the device's kernel), per sample | {name} | {:.3} us | {:.3} us | {:.2} |",
            per_sample * 1e6,
            sk_batch * 1e6,
            sk_batch / per_sample
        );
        // The host's fast path (rows in SIMD lanes, the same bits), on one
        // core and then on both, as `tinygen score` runs it.
        let one_core = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        let mut fast = |pool: &rayon::ThreadPool| {
            median_seconds(|| {
                pool.install(|| tinygen::fast_gmm::log_density_batch(&gmm, &points, &mut scores))
                    .unwrap()
            }) / data.rows as f64
        };
        let both_cores = rayon::ThreadPoolBuilder::new().build()?;
        for (label, seconds) in [
            ("one core", fast(&one_core)),
            ("both cores", fast(&both_cores)),
        ] {
            println!(
                "| scoring, batch of N, host fast path ({label}), per sample | {name} | {:.3} us | {:.3} us | {:.2} |",
                seconds * 1e6,
                sk_batch * 1e6,
                sk_batch / seconds
            );
        }
        let sk_one = field(&format!("score_{name}_one_call_s"))?;
        println!(
            "| scoring, one sample per call | {name} | {:.3} us | {:.1} us | {:.0} |",
            per_sample * 1e6,
            sk_one * 1e6,
            sk_one / per_sample
        );
    }
    Ok(())
}

/// `cargo xtask bench-host --scaling`: one EM iteration's time (full and
/// diagonal covariances, from random responsibilities; the median of the
/// gaps between four iterations' callbacks) and the peak of the memory it
/// allocates beyond the data and the responsibilities (the xtask's
/// counting allocator), over N = 1e4..1e6, D = 16 and 64, K = 4..32.
pub(crate) fn bench_scaling() -> anyhow::Result<()> {
    use rand::{Rng, SeedableRng};
    if let Some(done) = rerun_in_release(&[], true) {
        return done;
    }
    println!(
        "| N | D | K | covariance | data (MB) | EM time per iteration | peak memory allocated by the fit (MB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in [10_000, 100_000, 1_000_000] {
        for d in [16, 64] {
            let x = xtask::blobs(n, d, 8, 1);
            for k in [4, 8, 16, 32] {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(k as u64);
                let mut resp = nalgebra::DMatrix::zeros(n, k);
                for i in 0..n {
                    resp[(i, rng.random_range(0..k))] = 1.0;
                }
                for (name, covariance) in [("full", Covariance::Full), ("diag", Covariance::Diag)] {
                    let opts = EmOptions {
                        components: k,
                        covariance,
                        max_iter: 4,
                        tol: 0.0,
                        ..EmOptions::default()
                    };
                    let mut stamps = Vec::new();
                    let before = crate::alloc::reset_peak();
                    em_from_responsibilities(&x, &resp, &opts, &mut |_, _, _| {
                        stamps.push(std::time::Instant::now())
                    })
                    .ok();
                    let peak = crate::alloc::peak().saturating_sub(before);
                    let mut gaps: Vec<f64> = stamps
                        .windows(2)
                        .map(|w| (w[1] - w[0]).as_secs_f64())
                        .collect();
                    gaps.sort_by(f64::total_cmp);
                    let per_iteration = gaps.get(gaps.len() / 2).copied().unwrap_or(f64::NAN);
                    println!(
                        "| {n} | {d} | {k} | {name} | {:.0} | {} | {:.1} |",
                        (n * d * 8) as f64 / 1e6,
                        if per_iteration >= 1.0 {
                            format!("{per_iteration:.2} s")
                        } else {
                            format!("{:.1} ms", per_iteration * 1e3)
                        },
                        peak as f64 / 1e6
                    );
                }
            }
        }
    }
    Ok(())
}
