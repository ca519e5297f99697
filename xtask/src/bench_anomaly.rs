//! `cargo xtask bench-anomaly`: the anomaly benchmarks, on the 17 ODDS sets
//! (`--suite odds`) or on the suites of issue 16 (`--suite
//! dev|fresh|pmlb|categorical`); with `--on-device`, the detectors a device
//! learns itself from a recipe, on any of them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use tinygen::density::kde::KdeOptions;
use tinygen::detector::density::{Density, Ensemble, GmmDensity, Pair};
use tinygen::detector::protocol::{Protocol, Report, evaluate_with, fit_split, read_splits};
use xtask::{Core, root};

/// Which sets to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Suite {
    /// The 17 ODDS sets with PyOD's splits, against the published table.
    Odds,
    /// The 21 sets of `data/anomaly-dev/` (choice and confirmation parts),
    /// both protocols, against scikit-learn's detectors.
    Dev,
    /// The 11 sets of `data/anomaly-fresh/` (a second held-out suite, from
    /// another collection), as `dev`.
    Fresh,
    /// The 15 sets of `data/anomaly-pmlb/` (a third held-out suite, derived
    /// from PMLB's classification sets), as `dev`.
    Pmlb,
    /// The 14 sets of `data/anomaly-categorical/` (a fifth held-out suite,
    /// from PMLB's sets with categorical features), as `dev`.
    Categorical,
}

impl Suite {
    /// The suite's directory under `data/` and the script that builds it
    /// (`None` for ODDS).
    fn data(self) -> Option<(&'static str, &'static str)> {
        match self {
            Suite::Odds => None,
            Suite::Dev => Some(("anomaly-dev", "anomaly_dev_data.py")),
            Suite::Fresh => Some(("anomaly-fresh", "anomaly_fresh_data.py")),
            Suite::Pmlb => Some(("anomaly-pmlb", "anomaly_pmlb_data.py")),
            Suite::Categorical => Some(("anomaly-categorical", "anomaly_categorical_data.py")),
        }
    }
}

/// Which part of the development suite to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Part {
    /// The sets the default was chosen on.
    Choice,
    /// The held-out sets.
    Confirmation,
    /// Both.
    All,
}

fn shared() -> PathBuf {
    std::env::var_os("TINYGEN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"))
}

fn load(csv: &Path) -> anyhow::Result<tinygen::data::Dataset> {
    let opts = tinygen::data::LoadOptions {
        label_column: Some("label".into()),
        drop_columns: vec![],
    };
    Ok(tinygen::data::load(csv, &opts)?)
}

fn max_bytes(r: &Report) -> usize {
    r.per_split.iter().map(|s| s.model_bytes).max().unwrap_or(0)
}

fn max_macs(r: &Report) -> usize {
    r.per_split.iter().map(|s| s.model_macs).max().unwrap_or(0)
}

/// Runs the chosen suite; `neural` adds the autoencoder columns to ODDS;
/// `m4f` measures the default's cost on the Cortex-M4F instead, and
/// `on_device` the detectors learned on the device.
pub(crate) fn bench_anomaly(
    suite: Suite,
    part: Part,
    neural: bool,
    m4f: bool,
    on_device: bool,
) -> anyhow::Result<()> {
    if m4f {
        return m4f_costs(suite, part);
    }
    if on_device {
        return learned_on_device(suite, part);
    }
    match suite.data() {
        None => odds(neural),
        Some((dir, script)) => both_protocols(dir, script, part),
    }
}

/// Mean ROC-AUC over PyOD's 10 splits for every ODDS set, per detector,
/// next to the published GMM, KDE and INNE columns; with `neural` the
/// default detector with autoencoder scores in f32 and int8.
fn odds(neural: bool) -> anyhow::Result<()> {
    let odds = shared().join("data/odds-pyod");
    let published = std::fs::read_to_string(odds.join("pyod_benchmark_roc.csv"))
        .with_context(|| format!("{} is missing: set TINYGEN_SHARED", odds.display()))?;
    let header: Vec<&str> = published
        .lines()
        .next()
        .context("empty table")?
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let published_cols = [
        column("GMM").context("no GMM column")?,
        column("KDE").context("no KDE column")?,
        column("INNE").context("no INNE column")?,
    ];
    let ae = tinygen::detector::neural::NeuralOptions::default();
    let ae_int8 = tinygen::detector::neural::NeuralOptions {
        int8: true,
        ..ae.clone()
    };
    let one = Density::Ensemble(Ensemble::bagged(0));
    let default = Density::Pair(Box::new(Pair::bagged(0)));
    let mut detectors = vec![
        ("GMM K=1 full", Density::Gmm(GmmDensity::pyod()), None),
        (
            "KDE isotropic h=1",
            Density::Kde(KdeOptions {
                isotropic: Some(1.0),
                ..KdeOptions::default()
            }),
            None,
        ),
        (
            "old default (--single)",
            Density::Gmm(GmmDensity::smoothed(0)),
            None,
        ),
        ("one density (--one-density)", one.clone(), None),
        ("tinygen default", default, None),
    ];
    if neural {
        // An autoencoder adds its scores to one density.
        detectors.push(("one density + AE scores", one.clone(), Some(&ae)));
        detectors.push(("one density + AE scores, int8", one, Some(&ae_int8)));
    }
    let names: Vec<&str> = detectors.iter().map(|d| d.0).collect();
    println!(
        "| data | features | published GMM | published KDE | published INNE | {} | bytes (max over splits) | MACs per score |",
        names.join(" | ")
    );
    println!(
        "|---|---|---|---|---|{}---|---|",
        "---|".repeat(names.len())
    );
    let mut sums = vec![0.0f64; 3 + names.len()];
    let mut n = 0;
    for line in published.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let name = fields[0];
        let csv = odds.join(format!("csv/{name}.csv"));
        if !csv.is_file() {
            continue;
        }
        let set = load(&csv)?;
        let splits = read_splits(&odds.join(format!("splits/{name}.txt")), set.rows)?;
        let reports: Vec<Report> = detectors
            .iter()
            .map(|(_, d, neural)| evaluate_with(&set, &splits, d, *neural, Protocol::Unsupervised))
            .collect::<anyhow::Result<_>>()?;
        let mut row: Vec<f64> = published_cols
            .iter()
            .map(|&c| fields[c].parse())
            .collect::<Result<_, _>>()?;
        row.extend(reports.iter().map(Report::roc_auc));
        let default = &reports[4];
        println!(
            "| {name} | {} | {} | {} | {} |",
            set.cols,
            row.iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(" | "),
            max_bytes(default),
            max_macs(default),
        );
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
        n += 1;
    }
    println!(
        "| **mean of {n}** | | {} | | |",
        sums.iter()
            .map(|s| format!("{:.4}", s / n as f64))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    Ok(())
}

/// One set of a suite, as its `data/<suite>/sets.tsv` lists it.
struct SuiteSet {
    name: String,
    part: String,
    outliers: usize,
}

fn suite_sets(suite: &str, part: Part) -> anyhow::Result<Vec<SuiteSet>> {
    let path = root().join(format!("data/{suite}/sets.tsv"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            anyhow::ensure!(f.len() >= 5, "{}: short line {l:?}", path.display());
            Ok(SuiteSet {
                name: f[0].to_string(),
                part: f[1].to_string(),
                outliers: f[4].parse()?,
            })
        })
        .filter(|s| {
            s.as_ref().map_or(true, |s| match part {
                Part::All => true,
                Part::Choice => s.part == "choice",
                Part::Confirmation => s.part == "confirmation",
            })
        })
        .collect()
}

/// A suite's data directory (`data/<suite>` under the shared directory),
/// or how to build it (`scripts/<script>`) if it is missing.
fn suite_dir(suite: &str, script: &str) -> anyhow::Result<PathBuf> {
    let dir = shared().join("data").join(suite);
    if !dir.join("SHA256SUMS").is_file() {
        bail!(
            "{} is missing: build it with scripts/{script} (data/{suite}/README.md) \
             or set TINYGEN_SHARED",
            dir.display()
        );
    }
    Ok(dir)
}

/// scikit-learn's columns (`scripts/anomaly_baselines.py`) per set.
fn sklearn(dir: &Path, sets: &[SuiteSet], protocol: Protocol) -> anyhow::Result<Vec<[f64; 3]>> {
    let python = std::env::var("TINYGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    let mut cmd = Command::new(&python);
    cmd.arg(root().join("scripts/anomaly_baselines.py"))
        .arg("--data")
        .arg(dir)
        .arg("--sets")
        .arg(names.join(","));
    if protocol == Protocol::Novelty {
        cmd.arg("--novelty");
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    if !out.status.success() {
        bail!(
            "scripts/anomaly_baselines.py failed (TINYGEN_PYTHON needs numpy, pandas and scikit-learn):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    sets.iter()
        .map(|s| {
            let line = text
                .lines()
                .find(|l| l.split('\t').next() == Some(s.name.as_str()))
                .with_context(|| format!("no scikit-learn line for {}", s.name))?;
            let v: Vec<f64> = line
                .split('\t')
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            anyhow::ensure!(v.len() == 3, "bad scikit-learn line {line:?}");
            Ok([v[0], v[1], v[2]])
        })
        .collect()
}

/// Both protocols over the chosen part of a suite (`data/<suite>/`, built
/// by `scripts/<script>`): tinygen's default (the pair), one density (the
/// default before it), the old default and PyOD's single Gaussian (runtime
/// scores), scikit-learn's GMM K=1, GMM K=4 (reg 1e-3) and IsolationForest
/// on the same splits; per set and mean per part.
fn both_protocols(suite: &str, script: &str, part: Part) -> anyhow::Result<()> {
    let dir = suite_dir(suite, script)?;
    let sets = suite_sets(suite, part)?;
    let detectors = [
        Density::Pair(Box::new(Pair::bagged(0))),
        Density::Ensemble(Ensemble::bagged(0)),
        Density::Gmm(GmmDensity::smoothed(0)),
        Density::Gmm(GmmDensity::pyod()),
    ];
    for protocol in [Protocol::Unsupervised, Protocol::Novelty] {
        println!("\n### {protocol:?} protocol\n");
        println!(
            "| set | part | rows | features | outliers | tinygen default | one density (--one-density) | old default (--single) | tinygen GMM K=1 | sklearn GMM K=1 | sklearn GMM K=4 reg 1e-3 | sklearn IsolationForest | bytes (max over splits) | MACs per score | --one-density bytes |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let baselines = sklearn(&dir, &sets, protocol)?;
        let mut by_part: Vec<(String, Vec<[f64; 7]>)> = vec![];
        for (s, base) in sets.iter().zip(&baselines) {
            let set = load(&dir.join(format!("csv/{}.csv.gz", s.name)))?;
            let splits = read_splits(&dir.join(format!("splits/{}.txt", s.name)), set.rows)?;
            let reports: Vec<Report> = detectors
                .iter()
                .map(|d| evaluate_with(&set, &splits, d, None, protocol))
                .collect::<anyhow::Result<_>>()
                .with_context(|| s.name.clone())?;
            let row = [
                reports[0].roc_auc(),
                reports[1].roc_auc(),
                reports[2].roc_auc(),
                reports[3].roc_auc(),
                base[0],
                base[1],
                base[2],
            ];
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.name,
                s.part,
                set.rows,
                set.cols,
                s.outliers,
                row.iter()
                    .map(|v| format!("{v:.4}"))
                    .collect::<Vec<_>>()
                    .join(" | "),
                max_bytes(&reports[0]),
                max_macs(&reports[0]),
                max_bytes(&reports[1]),
            );
            match by_part.iter_mut().find(|(p, _)| *p == s.part) {
                Some((_, rows)) => rows.push(row),
                None => by_part.push((s.part.clone(), vec![row])),
            }
        }
        by_part.sort_by(|a, b| a.0.cmp(&b.0));
        for (p, rows) in &by_part {
            let means: Vec<String> = (0..7)
                .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64)
                .map(|m| format!("**{m:.4}**"))
                .collect();
            println!(
                "| **mean, {p} ({})** | | | | | {} | | | |",
                rows.len(),
                means.join(" | ")
            );
        }
    }
    Ok(())
}

/// The recipes of `--on-device`: K = 1 and K = 4 full covariances (20 EM
/// passes), each alone (`--one-density`) and as the pair
/// `--on-device-recipe` learns by default.
const ON_DEVICE: [(u32, bool); 4] = [(1, false), (1, true), (4, false), (4, true)];

/// Most inputs a device learns from, and calibrates on, in `--on-device`.
const ON_DEVICE_LEARN: usize = 1000;
const ON_DEVICE_CALIBRATE: usize = 500;

/// The detectors a device learns itself, in the novelty protocol (it sees
/// normal rows only): per split, the normal train rows shuffled (seed: the
/// split), the first 80 % (at most [`ON_DEVICE_LEARN`]) learned from and
/// the rest (at most [`ON_DEVICE_CALIBRATE`]) calibrated on by the
/// runtime's learner (`learn_on_host`, the device's bytes), Scott's
/// regularisation, alarm rate 0.05; ROC-AUC of its scores on the test
/// rows. Sets of more than 64 features are left out.
fn learned_on_device(suite: Suite, part: Part) -> anyhow::Result<()> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    use rayon::prelude::*;
    use tinygen::detector::density::{RegCovar, SECOND_REG_COVAR};
    use tinygen::detector::metrics::roc_auc;
    use tinygen::detector::on_device::learn_on_host;
    use tinygen::host::AlignedBytes;
    use tinygen_runtime::detector::Features;
    use tinygen_runtime::gmm::Covariance;
    use tinygen_runtime::learn::RecipeSpec;

    let parts: Vec<(String, String)> = match suite.data() {
        Some((name, _)) => suite_sets(name, part)?
            .into_iter()
            .map(|s| (s.name, s.part))
            .collect(),
        None => vec![],
    };
    println!(
        "| set | part | features | normal train rows | K = 1 | K = 1 pair | K = 4 | K = 4 pair |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut by_part: Vec<(String, Vec<[f64; 4]>)> = vec![];
    for (name, csv, splits) in suite_files(suite, part)? {
        let set = load(&csv)?;
        let d = set.cols;
        let labels = set.labels.clone().context("no label column")?;
        let part = parts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| format!("{suite:?}").to_lowercase(), |(_, p)| p.clone());
        if d > 64 {
            println!("| {name} | {part} | {d} | | left out (more than 64 features) | | | |");
            continue;
        }
        let splits = read_splits(&splits, set.rows)?;
        let normal_rows = splits[0].iter().filter(|&&i| labels[i] == 0.0).count();
        // ROC-AUC per split and recipe (NaN where the learner failed).
        let runs: Vec<[f64; 4]> = splits
            .par_iter()
            .enumerate()
            .map(|(split, train)| {
                let mut normal: Vec<usize> = train
                    .iter()
                    .copied()
                    .filter(|&i| labels[i] == 0.0)
                    .collect();
                normal.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(split as u64));
                let learn = ((normal.len() * 4) / 5).min(ON_DEVICE_LEARN);
                let calibrate = (normal.len() - learn).min(ON_DEVICE_CALIBRATE);
                let inputs: Vec<f32> = normal[..learn + calibrate]
                    .iter()
                    .flat_map(|&i| set.row(i).iter().map(|&v| v as f32))
                    .collect();
                let mut in_train = vec![false; set.rows];
                train.iter().for_each(|&i| in_train[i] = true);
                let test: Vec<usize> = (0..set.rows).filter(|&i| !in_train[i]).collect();
                let truth: Vec<bool> = test.iter().map(|&i| labels[i] != 0.0).collect();
                ON_DEVICE.map(|(components, pair)| {
                    let recipe = RecipeSpec {
                        features: Features::Identity,
                        dim: d as u32,
                        covariance: Covariance::Full,
                        components,
                        iterations: 20,
                        seed: 0,
                        reg_covar: RegCovar::Scott.value(learn, d),
                        alarm_rate: 0.05,
                        learn: learn as u32,
                        calibrate: calibrate as u32,
                        second_reg_covar: pair.then_some(SECOND_REG_COVAR),
                    };
                    let scored = learn_on_host(&recipe, &inputs).and_then(|learned| {
                        let aligned = AlignedBytes::new(&learned.file);
                        let detector = learned.detector(&aligned)?;
                        test.iter()
                            .map(|&i| {
                                let x: Vec<f32> = set.row(i).iter().map(|&v| v as f32).collect();
                                detector
                                    .score(&x)
                                    .map(f64::from)
                                    .map_err(|e| anyhow::anyhow!("{e}"))
                            })
                            .collect::<anyhow::Result<Vec<f64>>>()
                    });
                    match scored {
                        Ok(scores) => roc_auc(&scores, &truth).unwrap_or(f64::NAN),
                        Err(e) => {
                            eprintln!("{name} split {split} K {components} pair {pair}: {e:#}");
                            f64::NAN
                        }
                    }
                })
            })
            .collect();
        let mean: [f64; 4] =
            std::array::from_fn(|j| runs.iter().map(|r| r[j]).sum::<f64>() / runs.len() as f64);
        println!(
            "| {name} | {part} | {d} | {normal_rows} | {} |",
            mean.map(|m| format!("{m:.4}")).join(" | ")
        );
        match by_part.iter_mut().find(|(p, _)| *p == part) {
            Some((_, rows)) => rows.push(mean),
            None => by_part.push((part, vec![mean])),
        }
    }
    by_part.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, rows) in &by_part {
        // Sets where a recipe failed (NaN) count in no column's mean.
        let ok: Vec<&[f64; 4]> = rows
            .iter()
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .collect();
        let means: Vec<String> = (0..4)
            .map(|j| ok.iter().map(|r| r[j]).sum::<f64>() / ok.len() as f64)
            .map(|m| format!("**{m:.4}**"))
            .collect();
        println!(
            "| **mean, {p} ({} of {} sets)** | | | | {} |",
            ok.len(),
            rows.len(),
            means.join(" | ")
        );
    }
    Ok(())
}

/// Each set of `suite` (part `part`) as (name, CSV, splits file).
fn suite_files(suite: Suite, part: Part) -> anyhow::Result<Vec<(String, PathBuf, PathBuf)>> {
    let (dir, names, ext) = match suite {
        Suite::Odds => {
            let dir = shared().join("data/odds-pyod");
            let mut names: Vec<String> = std::fs::read_dir(dir.join("csv"))
                .with_context(|| format!("{} is missing: set TINYGEN_SHARED", dir.display()))?
                .filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_suffix(".csv")
                        .map(String::from)
                })
                .collect();
            names.sort();
            (dir, names, "csv")
        }
        _ => {
            let (name, script) = suite.data().context("a suite of issue 16")?;
            let dir = suite_dir(name, script)?;
            let names = suite_sets(name, part)?
                .into_iter()
                .map(|s| s.name)
                .collect();
            (dir, names, "csv.gz")
        }
    };
    Ok(names
        .into_iter()
        .map(|n| {
            let csv = dir.join(format!("csv/{n}.{ext}"));
            let splits = dir.join(format!("splits/{n}.txt"));
            (n, csv, splits)
        })
        .collect())
}

/// The default detector's cost on the Cortex-M4F, per set: its file on the
/// split (unsupervised protocol) where a score costs most MACs, scored on
/// the set's first test row under QEMU, exact instructions of the call.
fn m4f_costs(suite: Suite, part: Part) -> anyhow::Result<()> {
    let cases = xtask::target_dir().join(format!("anomaly-m4f-{suite:?}").to_lowercase());
    std::fs::remove_dir_all(&cases).ok();
    let default = Density::Pair(Box::new(Pair::bagged(0)));
    let mut rows = Vec::new();
    for (name, csv, splits) in suite_files(suite, part)? {
        let set = load(&csv)?;
        let splits = read_splits(&splits, set.rows)?;
        let report = evaluate_with(&set, &splits, &default, None, Protocol::Unsupervised)
            .with_context(|| name.clone())?;
        let costliest = report
            .per_split
            .iter()
            .max_by_key(|s| s.model_macs)
            .context("no split")?;
        let fitted = fit_split(
            &set,
            &splits[costliest.split],
            &default,
            None,
            Protocol::Unsupervised,
        )?;
        let (model, _) = fitted.scorer.score(&fitted.test_x)?;
        anyhow::ensure!(
            model.len() == costliest.model_bytes,
            "{name}: the refit differs from the evaluated file"
        );
        let case: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        xtask::write_case(&cases.join(&case), &model, &fitted.test_x[..set.cols])?;
        rows.push((
            name,
            case,
            set.cols,
            costliest.model_bytes,
            costliest.model_macs,
        ));
    }
    let counts = crate::bench_mcu::count_calls(&cases, Core::M4f)?;
    println!("| set | features | bytes | MACs per score | M4F instructions per score | per MAC |");
    println!("|---|---|---|---|---|---|");
    for (name, case, cols, bytes, macs) in rows {
        match counts.iter().find(|(c, _)| *c == case) {
            Some(&(_, calls)) => println!(
                "| {name} | {cols} | {bytes} | {macs} | {calls} | {:.3} |",
                calls as f64 / macs as f64
            ),
            None => println!("| {name} | {cols} | {bytes} | {macs} | does not fit the flash | |"),
        }
    }
    Ok(())
}
