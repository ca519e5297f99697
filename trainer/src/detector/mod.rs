//! Anomaly detectors. A detector is one `.tgm` file that the device runs as
//! `tinygen_runtime::Detector`: input features (the point itself, or a
//! window's raw values or per-channel statistics), a standardization, a
//! density whose `-ln p` is the anomaly score (by default combined with a
//! second density's, or else optionally with an autoencoder's
//! reconstruction error and latent log-density, as robust z-scores), and an
//! alarm threshold.
//!
//! The pipeline: **fit** the densities (or density and neural part) on normal inputs,
//! **calibrate** the threshold on held-out normal inputs, **export** the
//! file, **detect** with the runtime crate (on the host: `tinygen detect`,
//! through [`crate::host`]).
//!
//! Submodules, each depending only on those listed before it:
//!
//! - [`metrics`]: ROC-AUC and average precision of anomaly scores.
//! - [`calibrate`]: the alarm threshold from held-out scores, and the
//!   constants that make a combined score's terms robust z-scores.
//! - [`density`]: the density options ([`density::Density`], the default
//!   [`density::Pair`]) and fitting them.
//! - [`neural`]: the autoencoder part and its combination with the density.
//! - [`windows`]: windows of time series as inputs.
//! - [`inputs`]: a detector's inputs read from a data file.
//! - [`fit`]: the fitted scoring part ([`fit::Scorer`]) and a whole
//!   detector with its threshold ([`fit::fit_detector`]).
//! - [`protocol`]: the PyOD evaluation protocol over train/test splits.
//! - [`on_device`]: detectors the device learns itself, from a recipe; the
//!   device's learner run on the host.
pub mod calibrate;
pub mod density;
pub mod fit;
pub mod inputs;
pub mod metrics;
pub mod neural;
pub mod on_device;
pub mod protocol;
pub mod windows;
