//! Criterion benchmarks of the kernels whose speed the project reports
//! (BENCHMARKS.md): EM (the M-step from initial responsibilities, then one
//! iteration; full and diagonal covariances), the batch scoring of a
//! mixture (the runtime's kernel and the host's fast path), and decodes of
//! the example MNIST decoders, f32 and int8: one row by the runtime, one
//! row and 64 rows by the host fast paths. `cargo bench -p tinygen-tests`
//! runs them all; criterion compares each run with the previous one, so a
//! regression shows in one command.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tinygen::density::gmm::Init;
use tinygen::density::gmm::{EmOptions, em_from_responsibilities, initial_responsibilities};
use tinygen::host::AlignedBytes;
use tinygen_runtime::gmm::{Covariance, Gmm};
use tinygen_runtime::network::{Network, Scratch};
use tinygen_runtime::qnetwork::{QNetwork, QScratch};

fn em(c: &mut Criterion) {
    use rand::SeedableRng;
    let x = xtask::blobs(20_000, 16, 8, 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let resp = initial_responsibilities(&x, 8, Init::KMeans, &mut rng);
    for (name, covariance) in [("full", Covariance::Full), ("diag", Covariance::Diag)] {
        let opts = EmOptions {
            components: 8,
            covariance,
            max_iter: 1,
            tol: 0.0,
            ..EmOptions::default()
        };
        c.bench_function(
            &format!("em m-step then one iteration {name} n20000 d16 k8"),
            |b| b.iter(|| em_from_responsibilities(black_box(&x), &resp, &opts, &mut |_, _, _| {})),
        );
        let (model, _) = em_from_responsibilities(&x, &resp, &opts, &mut |_, _, _| {}).unwrap();
        let file = AlignedBytes::new(&model.params(None).encode().unwrap());
        let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
        let points: Vec<f32> = x
            .transpose()
            .iter()
            .take(1000 * 16)
            .map(|&v| v as f32)
            .collect();
        let mut out = vec![0f32; 1000];
        c.bench_function(&format!("runtime score {name} d16 k8, 1000 rows"), |b| {
            b.iter(|| gmm.log_density_batch(black_box(&points), &mut out).unwrap())
        });
        c.bench_function(
            &format!("host fast path score {name} d16 k8, 1000 rows"),
            |b| {
                b.iter(|| {
                    tinygen::fast_gmm::log_density_batch(&gmm, black_box(&points), &mut out)
                        .unwrap()
                })
            },
        );
    }
}

fn decoders(c: &mut Criterion) {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let z = [0.25f32; 16];
    let mut out = [0f32; 784];
    let f32_file = AlignedBytes::read(&models.join("mnist-vae-decoder/model.tgm")).unwrap();
    let net = Network::from_bytes(f32_file.as_bytes()).unwrap();
    let mut scratch = Box::new(Scratch::<784>::new());
    c.bench_function("runtime decode mnist f32 16-128-784", |b| {
        b.iter(|| net.forward(black_box(&z), &mut out, &mut scratch).unwrap())
    });
    let int8_file = AlignedBytes::read(&models.join("mnist-vae-int8-decoder/model.tgm")).unwrap();
    let qnet = QNetwork::from_bytes(int8_file.as_bytes()).unwrap();
    let mut qscratch = Box::new(QScratch::<784>::new());
    c.bench_function("runtime decode mnist int8 16-128-784", |b| {
        b.iter(|| {
            qnet.forward(black_box(&z), &mut out, &mut qscratch)
                .unwrap()
        })
    });

    // The host fast paths (bit-identical to the runtime, their tests say),
    // one row and a batch of 64, timed inside a one-thread pool (each
    // call from outside it would also time rayon's handover).
    let rows = 64;
    let zs: Vec<f32> = (0..rows * 16)
        .map(|k| (k % 17) as f32 / 8.0 - 1.0)
        .collect();
    let mut outs = vec![0f32; rows * 784];
    let fast = tinygen::fast_network::FastNetwork::new(&net).unwrap();
    let qfast = tinygen::fast_qnetwork::FastQNetwork::new(&qnet).unwrap();
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut in_pool = |name: &str, call: &(dyn Fn(&[f32], &mut [f32]) + Sync)| {
        for (what, inputs) in [("", &zs[..16]), (", 64 rows, 1 thread", &zs[..])] {
            let out = &mut outs[..inputs.len() / 16 * 784];
            c.bench_function(
                &format!("host fast path decode mnist {name} 16-128-784{what}"),
                |b| {
                    b.iter_custom(|iters| {
                        one_thread.install(|| {
                            let start = std::time::Instant::now();
                            for _ in 0..iters {
                                call(black_box(inputs), out);
                            }
                            start.elapsed()
                        })
                    })
                },
            );
        }
    };
    in_pool("f32", &|z, out| fast.forward_batch(z, out).unwrap());
    in_pool("int8", &|z, out| qfast.forward_batch(z, out).unwrap());
}

criterion_group!(benches, em, decoders);
criterion_main!(benches);
