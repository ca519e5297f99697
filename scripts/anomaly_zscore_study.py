#!/usr/bin/env python3
"""Z-score ensembles of bagged mixtures: a scikit-learn prototype (issue 16).

    python scripts/anomaly_zscore_study.py --data DIR [--sets a,b] [--novelty] [--study|--third|--trim|--marginal|--prune|--several|--subspace|--noise]

DIR as for `anomaly_baselines.py` (`csv/NAME.csv[.gz]`, `splits/NAME.txt`).
Every detector here follows tinygen's default detector (`Ensemble::bagged`)
in scikit-learn: the fitted rows standardized by median and IQR / 1.349 (at
least a quarter of the standard deviation; mean and standard deviation where
the IQR is 0); M members, member i fitted on a random half of the rows
(numpy `default_rng(i)`), each a GaussianMixture of K = 4 full covariances
(k-means start, `random_state` i) with the given `reg_covar` ("scott":
n^(-2/(d+4)) for its n rows), components under 5 % weight dropped; the
density is the members' average; M is as many as fit a byte budget (8 at
most; if not one K = 4 member fits, one member of as many components as
fit). A "z-score ensemble" sums the robust z-scores of several such
densities' -log p, each centred and scaled by the median and IQR of its
scores on the fitted rows.

Prints, per set, the mean ROC-AUC over the splits of each detector:
- default: `bag:scott` (the full 64 KiB budget);
- `z:bag:scott/half+bag:0.01/half`: the candidate of
  `data/anomaly-fresh/README.md`, the z-score ensemble of `bag:scott` and
  `bag:0.01`, 32 KiB each;
- with `--study`, the study of BENCHMARKS.md instead: `bag:scott`,
  `bag:0.01`, `bag:0.001` (64 KiB each), one Gaussian (reg 1e-6), a
  Ledoit-Wolf Gaussian (Mahalanobis distance), and z-score ensembles of them;
- with `--third`, third terms for the pair (the nineteenth session's
  study): `marginal`, the sum over features of -log of a 1-D mixture of
  K = 4 (reg 0.01) fitted to each standardized feature alone; `kde`, a
  Gaussian KDE on a random subsample of the rows (as many as fit 32 KiB, at
  least 16), bandwidth^2 n^(-2/(d+4)); and the pair's z-score sums with each;
- with `--trim`, the pair refitted on the fitted rows it scores as normal
  (the twenty-eighth session's study, `TRIMS`);
- with `--marginal`, the pair on features first mapped one by one (the
  twenty-ninth session's study, `MARGINALS`): `quantile`, the empirical CDF
  through 32 knots to normal scores, linear between knots and beyond the
  end knots at slope 1 / (robust scale); `yeo-johnson`, scikit-learn's
  PowerTransformer; `slog`, sign(z) log(1 + |z|) of the robust z;
- with `--prune`, the pair with its members' components dropped under a
  higher weight than 5 %, 10 % to 30 % (the thirtieth session's study,
  `PRUNES`);
- with `--several`, the pair's two scores combined by the mean of their
  ranks among the fitted rows' (ties broken by the z-score sum), and z-score
  sums of bagged ensembles of K = 2, 4 and 8 (`SEVERAL_K`) at Scott's
  regularisation, and at Scott's and 0.01, the budget shared equally;
- with `--subspace`, feature bagging (Lazarevic and Kumar, KDD 2005; the
  thirty-first session's study, `SUBSPACES`): E terms, term t fitted on a
  random subset of the features (`default_rng(1000 + t)`, a size drawn
  uniformly from d/2 to d - 1, all d when d < 2); `fb:E`, E bagged Scott
  ensembles, the 64 KiB shared equally, their robust z-scores summed;
  `fb-pair:E`, the pair on each subset (Scott's and 0.01, 2E ensembles);
  `pair+fb:E`, the pair on all features (32 KiB) plus `fb:E` (32 KiB),
  each group's z-score sum divided by its number of terms.
  Rule, written before the run: a variant goes on to the held-out suites only
  if it raises the unsupervised mean over the 27 choice sets (the development
  suite's choice part and ODDS) by at least 0.005 over the pair of the same
  run and keeps ODDS above 0.8265; there it would replace the default if it
  raised the 51 held-out sets' unsupervised mean by at least 0.005 and
  lowered their novelty mean by at most 0.005;
- with `--noise`, the pair with each member fitted as a mixture with a
  noise component (Banfield and Raftery, Biometrics 1993; mclust's
  `noise`; the thirty-first session's second study, `NOISES`): the K
  Gaussians plus a uniform density over the bounding box of the member's
  rows (each side at least 1, a robust standard deviation; the first run's
  floor of 1e-3 let the box of near-constant features shrink until the
  noise took every row, on ODDS, after the development part had run),
  started from the same k-means labels with noise weight 0.05 (at most
  0.5: an outlier is not most of the rows; added with the floor), EM as
  scikit-learn's (at most 100 passes, stop when the mean log-likelihood
  moves less than 1e-3); `noise`, the noise weight estimated by EM;
  `noise-fixed`, held at 0.05. The device scores the Gaussians alone
  (weights renormalized, pruned at 5 %), so only the fit changes. Rule,
  written before the run: the same as `--subspace`'s.
"""
import argparse
import functools
import gzip
import pathlib

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import norm
from sklearn.cluster import KMeans
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import (
    _compute_precision_cholesky,
    _estimate_gaussian_parameters,
    _estimate_log_gaussian_prob,
)
from sklearn.preprocessing import PowerTransformer

BUDGET = 65536 // 4  # f32 values in 64 KiB
K = 4
MAX_MEMBERS = 8


def load(data, name):
    path = next(p for p in (data / f"csv/{name}.csv.gz", data / f"csv/{name}.csv") if p.exists())
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt") as f:
        header = f.readline().strip().split(",")
        a = np.loadtxt(f, delimiter=",", ndmin=2)
    label = header.index("label")
    lines = (data / f"splits/{name}.txt").read_text().split("\n")
    splits = [np.array(line.split(), int) for line in lines if line.strip()]
    return np.delete(a, label, axis=1), a[:, label] != 0, splits


def robust_standardization(rows):
    q1, q3 = np.percentile(rows, [25, 75], axis=0)
    iqr = (q3 - q1) / 1.349
    std = rows.std(axis=0)
    std[std == 0] = 1.0
    center = np.where(iqr > 0, np.median(rows, axis=0), rows.mean(axis=0))
    scale = np.where(iqr > 0, np.maximum(iqr, 0.25 * std), std)
    return center, scale


def shape(d, budget, k=K):
    """Members and components per member (k at most) that fit `budget` f32
    values."""
    per_component = d + d * (d + 1) // 2 + 2
    members = budget // (k * per_component)
    if members >= 1:
        return min(MAX_MEMBERS, members), k
    return 1, max(1, budget // per_component)


def mixture(rows, k, reg, seed):
    """scikit-learn's mixture of k full covariances fitted to rows."""
    return GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=seed).fit(rows)


def bag(u, reg, budget, k=K, fit=mixture):
    """The members: (fitted mixture, mask of the kept components), each
    fitted by `fit`(rows, k, regularisation, seed)."""
    members, k = shape(u.shape[1], budget, k)
    out = []
    for i in range(members):
        rows = u[np.random.default_rng(i).choice(len(u), len(u) // 2, replace=False)]
        r = len(rows) ** (-2.0 / (u.shape[1] + 4)) if reg == "scott" else reg
        gm = fit(rows, min(k, len(rows)), r, i)
        out.append((gm, kept(gm.weights_, 0.05)))
    return out


def kept(weights, w):
    """The mask of the components of at least `w` weight (the heaviest if none)."""
    keep = weights >= w
    return keep if keep.any() else weights == weights.max()


def neg_log_density(members, x):
    per_member = []
    for gm, keep in members:
        lp = gm._estimate_weighted_log_prob(x)[:, keep] - np.log(gm.weights_[keep].sum())
        per_member.append(np.logaddexp.reduce(lp, axis=1))
    return -(np.logaddexp.reduce(np.array(per_member), axis=0) - np.log(len(members)))


def robust_z(fitted, test):
    q1, q3 = np.percentile(fitted, [25, 75])
    return (test - np.median(fitted)) / max(q3 - q1, 1e-12)


def marginal(u, v):
    """-log of the product of per-feature 1-D mixtures, on u and on v."""
    su, sv = np.zeros(len(u)), np.zeros(len(v))
    for j in range(u.shape[1]):
        k = max(1, min(K, len(np.unique(u[:, j]))))
        gm = GaussianMixture(k, reg_covar=0.01, random_state=0).fit(u[:, j : j + 1])
        su -= gm.score_samples(u[:, j : j + 1])
        sv -= gm.score_samples(v[:, j : j + 1])
    return su, sv


def kde(u, v):
    """-log of a Gaussian KDE on a subsample of u, on u and on v."""
    n, d = u.shape
    m = max(16, min(n, BUDGET // 2 // d))
    points = u[np.random.default_rng(0).choice(n, m, replace=False)] if m < n else u
    h2 = n ** (-2.0 / (d + 4))

    def score(x):
        out = []
        for i in range(0, len(x), 512):
            d2 = ((x[i : i + 512, None, :] - points[None]) ** 2).sum(-1)
            out.append(-np.logaddexp.reduce(-0.5 * d2 / h2, axis=1))
        return np.concatenate(out)

    return score(u), score(v)


def pruned(members, w):
    """The same members keeping the components of at least `w` weight."""
    return [(gm, kept(gm.weights_, w)) for gm, _ in members]


def pair_scores(u, v, members=None):
    """The pair's z-score sum on u (its fitted rows) and on v."""
    if members is None:
        members = pair_members(u)
    fitted = [neg_log_density(m, u) for m in members]
    return sum(robust_z(f, f) for f in fitted), sum(
        robust_z(f, neg_log_density(m, v)) for f, m in zip(fitted, members)
    )


def pair_members(u):
    """The pair's two ensembles, Scott's and 0.01 regularisation, 32 KiB each."""
    return bag(u, "scott", BUDGET // 2), bag(u, 0.01, BUDGET // 2)


def trimmed(u, v, score_u, rule):
    """The pair refitted on the rows of u that `rule` keeps by their first
    scores `score_u`: "frac:A" drops the fraction A scored most anomalous,
    "fence:C" every row above Q3 + C IQR of the scores (at most half)."""
    kind, a = rule.split(":")
    a = float(a)
    if kind == "frac":
        keep = score_u <= np.quantile(score_u, 1.0 - a)
    else:
        q1, q3 = np.percentile(score_u, [25, 75])
        keep = score_u <= max(q3 + a * (q3 - q1), np.median(score_u))
    return pair_scores(u[keep], v)


TRIMS = ["frac:0.05", "frac:0.1", "frac:0.2", "fence:1.5", "fence:3"]
MARGINALS = ["quantile", "yeo-johnson", "slog"]
PRUNES = [0.10, 0.15, 0.20, 0.25, 0.30]
SEVERAL_K = [2, 4, 8]
SUBSPACES = [4, 8]
NOISES = ["noise", "noise-fixed"]
NOISE_START = 0.05
NOISE_SIDE = 1.0
NOISE_MAX = 0.5
KNOTS = 32


def quantile_map(u, v):
    """Each column of u and v through u's empirical CDF to normal scores.

    Knots: u's quantiles at (k + 0.5) / KNOTS; equal knots merged, their
    scores averaged; linear between knots, and beyond the end knots with
    slope 1 (u is robustly standardized, so tails keep their distance)."""
    p = (np.arange(KNOTS) + 0.5) / KNOTS
    zs = norm.ppf(p)
    out_u, out_v = np.empty_like(u), np.empty_like(v)
    for j in range(u.shape[1]):
        xk = np.quantile(u[:, j], p)
        ux, inv = np.unique(xk, return_inverse=True)
        uz = np.bincount(inv, zs) / np.bincount(inv)
        for src, dst in ((u, out_u), (v, out_v)):
            x = src[:, j]
            y = np.interp(x, ux, uz)
            y = np.where(x < ux[0], uz[0] + (x - ux[0]), y)
            y = np.where(x > ux[-1], uz[-1] + (x - ux[-1]), y)
            dst[:, j] = y
    return out_u, out_v


def mapped(u, v, kind):
    if kind == "quantile":
        return quantile_map(u, v)
    if kind == "yeo-johnson":
        pt = PowerTransformer().fit(u)
        a, b = pt.transform(u), pt.transform(v)
        return np.nan_to_num(a), np.nan_to_num(b)
    return np.sign(u) * np.log1p(np.abs(u)), np.sign(v) * np.log1p(np.abs(v))


def z_sums(scores, combos, truth):
    """ROC-AUC of each score (but the "/half" ones) and of each combination's
    robust z-score sum; `scores` maps names to (fitted rows, test rows)."""
    out = {n: roc_auc_score(truth, s[1]) for n, s in scores.items() if not n.endswith("/half")}
    for c in combos:
        out["z:" + "+".join(c)] = roc_auc_score(truth, sum(robust_z(*scores[n]) for n in c))
    return out


def candidate(u, v, truth):
    """The single ensemble `bag:scott` (64 KiB) and the pair, the candidate of
    `data/anomaly-fresh/README.md` (today's default)."""
    half = ["bag:scott/half", "bag:0.01/half"]
    scores = {n: (neg_log_density(m, u), neg_log_density(m, v)) for n, m in zip(half, pair_members(u))}
    scores["bag:scott"] = (None, neg_log_density(bag(u, "scott", BUDGET), v))
    return z_sums(scores, [half], truth)


def study(u, v, truth):
    """`--study`: three ensembles, two Gaussians and z-score sums of them."""
    terms = {f"bag:{r}": bag(u, r, BUDGET) for r in ("scott", 0.01, 0.001)}
    scores = {n: (neg_log_density(m, u), neg_log_density(m, v)) for n, m in terms.items()}
    g1 = GaussianMixture(1, covariance_type="full", reg_covar=1e-6, random_state=0).fit(u)
    scores["gauss"] = (-g1.score_samples(u), -g1.score_samples(v))
    lw = LedoitWolf().fit(u)
    scores["ledoit-wolf"] = (lw.mahalanobis(u), lw.mahalanobis(v))
    combos = [
        ["bag:scott", "bag:0.01"],
        ["bag:scott", "bag:0.001"],
        ["bag:scott", "bag:0.01", "bag:0.001"],
        ["bag:scott", "gauss"],
        ["bag:scott", "ledoit-wolf"],
        ["bag:scott", "bag:0.01", "ledoit-wolf"],
    ]
    return z_sums(scores, combos, truth)


def third(u, v, truth):
    """`--third`: the pair with a marginal or a KDE term."""
    pair = ["bag:scott/half", "bag:0.01/half"]
    scores = {n: (neg_log_density(m, u), neg_log_density(m, v)) for n, m in zip(pair, pair_members(u))}
    scores["marginal"] = marginal(u, v)
    scores["kde"] = kde(u, v)
    return z_sums(scores, [pair, pair + ["marginal"], pair + ["kde"]], truth)


def trim(u, v, truth):
    """`--trim`: the pair refitted on the rows it finds normal."""
    su, sv = pair_scores(u, v)
    out = {"pair": roc_auc_score(truth, sv)}
    for rule in TRIMS:
        out["trim:" + rule] = roc_auc_score(truth, trimmed(u, v, su, rule)[1])
    return out


def marginals(u, v, truth):
    """`--marginal`: the pair on features mapped one by one."""
    out = {"pair": roc_auc_score(truth, pair_scores(u, v)[1])}
    for kind in MARGINALS:
        a, b = mapped(u, v, kind)
        c, s = robust_standardization(a)
        out["marginal:" + kind] = roc_auc_score(truth, pair_scores((a - c) / s, (b - c) / s)[1])
    return out


def prune(u, v, truth):
    """`--prune`: the pair with its components pruned at higher weights."""
    members = pair_members(u)
    out = {"pair": roc_auc_score(truth, pair_scores(u, v, members)[1])}
    for w in PRUNES:
        m = [pruned(half, w) for half in members]
        out[f"prune:{w:g}"] = roc_auc_score(truth, pair_scores(u, v, m)[1])
    return out


def ecdf(fitted, test):
    """The fraction of `fitted` below each of `test`."""
    return np.searchsorted(np.sort(fitted), test, side="left") / len(fitted)


def z_over(u, v, parts):
    """The robust z-score sums, on v, of the ensembles `parts`: (columns,
    regularisation, budget, K) each."""
    total = 0.0
    for cols, reg, budget, k in parts:
        m = bag(u[:, cols], reg, budget, k)
        total = total + robust_z(neg_log_density(m, u[:, cols]), neg_log_density(m, v[:, cols]))
    return total


def several(u, v, truth):
    """The thirtieth session's second study: the pair combined by ranks, and
    z-score sums over several K (one or both regularisations)."""
    members = pair_members(u)
    fitted = [neg_log_density(m, u) for m in members]
    tests = [neg_log_density(m, v) for m in members]
    z = sum(robust_z(f, t) for f, t in zip(fitted, tests))
    out = {"pair": roc_auc_score(truth, z)}
    ranks = sum(ecdf(f, t) for f, t in zip(fitted, tests)) / 2
    out["rank"] = roc_auc_score(truth, ranks + 1e-9 * np.tanh(z))
    whole = np.arange(u.shape[1])
    for regs in (["scott"], ["scott", 0.01]):
        budget = BUDGET // (len(SEVERAL_K) * len(regs))
        total = z_over(u, v, [(whole, reg, budget, k) for reg in regs for k in SEVERAL_K])
        out["z:K2+K4+K8:" + "+".join(map(str, regs))] = roc_auc_score(truth, total)
    return out


def subsets(d, terms):
    """`terms` random feature subsets of d features, each of d/2 to d - 1."""
    if d < 2:
        return [np.arange(d)] * terms
    out = []
    for t in range(terms):
        rng = np.random.default_rng(1000 + t)
        size = rng.integers(d // 2, d)
        out.append(np.sort(rng.choice(d, size, replace=False)))
    return out


def subspace(u, v, truth):
    """`--subspace`: feature bagging, alone, as pairs, and beside the pair."""
    pair = pair_scores(u, v)[1]
    out = {"pair": roc_auc_score(truth, pair)}
    whole = np.arange(u.shape[1])
    half_pair = z_over(u, v, [(whole, r, BUDGET // 4, K) for r in ("scott", 0.01)])
    for e in SUBSPACES:
        cols = subsets(u.shape[1], e)
        out[f"fb:{e}"] = roc_auc_score(truth, z_over(u, v, [(c, "scott", BUDGET // e, K) for c in cols]))
        parts = [(c, r, BUDGET // (2 * e), K) for c in cols for r in ("scott", 0.01)]
        out[f"fb-pair:{e}"] = roc_auc_score(truth, z_over(u, v, parts))
        fb = z_over(u, v, [(c, "scott", BUDGET // (2 * e), K) for c in cols])
        out[f"pair+fb:{e}"] = roc_auc_score(truth, half_pair / 2 + fb / e)
    return out


def noise_mixture(rows, k, reg, seed, fixed):
    """A GaussianMixture holding the k Gaussians of an EM fit with a
    uniform noise component (see `--noise`), their weights renormalized."""
    n = len(rows)
    log_volume = np.log(np.maximum(rows.max(0) - rows.min(0), NOISE_SIDE)).sum()
    labels = KMeans(k, n_init=1, random_state=seed).fit(rows).labels_
    resp = np.zeros((n, k + 1))
    resp[np.arange(n), labels] = 1.0
    noise, previous = NOISE_START, -np.inf
    for _ in range(100):
        nk, means, covariances = _estimate_gaussian_parameters(rows, resp[:, :k], reg, "full")
        if not fixed and previous > -np.inf:
            noise = min(max(resp[:, k].mean(), 1e-12), NOISE_MAX)
        weights = (1.0 - noise) * nk / nk.sum()
        cholesky = _compute_precision_cholesky(covariances, "full")
        log_p = np.hstack(
            [
                _estimate_log_gaussian_prob(rows, means, cholesky, "full") + np.log(weights),
                np.full((n, 1), np.log(noise) - log_volume),
            ]
        )
        total = np.logaddexp.reduce(log_p, axis=1)
        resp = np.exp(log_p - total[:, None])
        if abs(total.mean() - previous) < 1e-3:
            break
        previous = total.mean()
    gm = GaussianMixture(k, covariance_type="full")
    gm.weights_, gm.means_, gm.covariances_ = weights / weights.sum(), means, covariances
    gm.precisions_cholesky_ = cholesky
    return gm


def noises(u, v, truth):
    """`--noise`: the pair fitted with a noise component."""
    out = {"pair": roc_auc_score(truth, pair_scores(u, v)[1])}
    for kind in NOISES:
        fit = functools.partial(noise_mixture, fixed=kind == "noise-fixed")
        members = [bag(u, r, BUDGET // 2, fit=fit) for r in ("scott", 0.01)]
        out[kind] = roc_auc_score(truth, pair_scores(u, v, members)[1])
    return out


STUDIES = {
    "candidate": candidate,
    "study": study,
    "third": third,
    "trim": trim,
    "marginal": marginals,
    "prune": prune,
    "several": several,
    "subspace": subspace,
    "noise": noises,
}


def one_split(x, y, train, novelty, run):
    """`run`(u, v, truth) on one split: u the fitted rows (the train part, or
    its normal rows), v the test rows, both robustly standardized on u."""
    is_train = np.zeros(len(y), bool)
    is_train[train] = True
    rows = x[is_train & ~y] if novelty else x[is_train]
    center, scale = robust_standardization(rows)
    u, v, truth = (rows - center) / scale, (x[~is_train] - center) / scale, y[~is_train]
    return run(u, v, truth)


def evaluate(data, name, novelty, mode):
    x, y, splits = load(data, name)
    runs = [one_split(x, y, t, novelty, STUDIES[mode]) for t in splits]
    return name, {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def print_results(results):
    """A tab-separated table of (set, {detector: mean ROC-AUC}) pairs and their means."""
    columns = list(results[0][1])
    print("\t".join(["set"] + columns))
    for name, r in results:
        print("\t".join([name] + [f"{r[c]:.4f}" for c in columns]), flush=True)
    print("\t".join(["mean"] + [f"{np.mean([r[c] for _, r in results]):.4f}" for c in columns]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=pathlib.Path, required=True)
    ap.add_argument("--sets", help="comma-separated set names (default: every CSV)")
    ap.add_argument("--novelty", action="store_true", help="fit on the normal train rows only")
    which = ap.add_mutually_exclusive_group()
    for flag, text in [
        ("study", "the study's detectors"),
        ("third", "third terms for the pair"),
        ("trim", "the pair refitted on trimmed rows"),
        ("marginal", "the pair on features mapped one by one"),
        ("prune", "the pair pruned at higher weights"),
        ("several", "ranks, and z-score sums over several K"),
        ("subspace", "feature bagging"),
        ("noise", "the pair fitted with a noise component"),
    ]:
        which.add_argument("--" + flag, dest="mode", action="store_const", const=flag, help=text)
    ap.set_defaults(mode="candidate")
    args = ap.parse_args()
    names = args.sets.split(",") if args.sets else sorted(
        p.name.split(".csv")[0] for p in (args.data / "csv").glob("*.csv*")
    )
    results = Parallel(n_jobs=-1)(delayed(evaluate)(args.data, n, args.novelty, args.mode) for n in names)
    print_results(results)


if __name__ == "__main__":
    main()
