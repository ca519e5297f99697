//! A detector's inputs read from a data file: points (a table's rows), or
//! windows of a time series or of each series of a `.ts` collection, with
//! the features that turn them into the density's input; and the inputs
//! a fitted detector expects.

use std::path::Path;

use anyhow::{Context, ensure};
use tinygen_runtime::Detector;
use tinygen_runtime::detector::Features;
use tinygen_runtime::features::STATS;

use super::windows::{series_windows, windows};
use crate::data::LoadOptions;
use crate::data::ts::{is_ts, load_ts};

/// What a detector is fitted on or scores.
#[derive(Debug, Clone)]
pub struct DetectorInputs {
    /// How an input becomes the density's input.
    pub features: Features,
    /// The density's dimension.
    pub dim: usize,
    /// The inputs (points, or windows time-major), one after another.
    pub inputs: Vec<f32>,
    /// A label per input (0 = normal), when the data has them.
    pub labels: Option<Vec<f64>>,
}

/// Reads a detector's inputs from the file `data` (tables loaded with
/// `load`): rows of a table are points, or a time series when `window` is
/// given; a `.ts` collection is windowed inside each series.
pub fn detector_inputs(
    data: &Path,
    load: &LoadOptions,
    window: Option<usize>,
    stride: Option<usize>,
    normal_classes: &[String],
    raw: bool,
) -> anyhow::Result<DetectorInputs> {
    if is_ts(data) {
        let set = load_ts(data)?;
        let length = window.context("a .ts collection needs --window (samples per window)")?;
        let (inputs, labels) =
            series_windows(&set, length, stride.unwrap_or(length), normal_classes)?;
        let (features, dim) = window_features(set.channels, length, raw)?;
        return Ok(DetectorInputs {
            features,
            dim,
            inputs,
            labels: Some(labels),
        });
    }
    let set = crate::data::load(data, load)?;
    Ok(match window {
        None => DetectorInputs {
            features: Features::Identity,
            dim: set.cols,
            inputs: set.to_f32(),
            labels: set.labels.clone(),
        },
        Some(length) => {
            let (inputs, labels) = windows(&set, length, stride.unwrap_or(length))?;
            let (features, dim) = window_features(set.cols, length, raw)?;
            DetectorInputs {
                features,
                dim,
                inputs,
                labels,
            }
        }
    })
}

/// The features of windows of `length` samples of `channels` channels and
/// the density's dimension: the raw values, or per channel the window's
/// statistics.
pub fn window_features(
    channels: usize,
    length: usize,
    raw: bool,
) -> anyhow::Result<(Features, usize)> {
    let too_large = || anyhow::anyhow!("windows of {length} x {channels} are too large");
    let (c, l) = match (u32::try_from(channels), u32::try_from(length)) {
        (Ok(c), Ok(l)) => (c, l),
        _ => return Err(too_large()),
    };
    Ok(if raw {
        (
            Features::RawWindow {
                channels: c,
                length: l,
            },
            channels.checked_mul(length).ok_or_else(too_large)?,
        )
    } else {
        (
            Features::WindowStats {
                channels: c,
                length: l,
            },
            channels.checked_mul(STATS.len()).ok_or_else(too_large)?,
        )
    })
}

/// Reads the inputs `detector` scores from the file `data` (tables loaded
/// with `load`): windows of its length every `stride` rows (default: the
/// window length) for a windowed detector, else points; fails when the
/// file's channels or feature columns are not the detector's.
pub fn inputs_for(
    detector: &Detector<'_>,
    data: &Path,
    load: &LoadOptions,
    stride: Option<usize>,
) -> anyhow::Result<Vec<f32>> {
    let spec_features = detector.features();
    let (window, channels) = match spec_features.window() {
        None => (None, detector.input_len()),
        Some((channels, length)) => (Some(length), channels),
    };
    let DetectorInputs {
        features,
        dim,
        inputs,
        ..
    } = detector_inputs(
        data,
        load,
        window,
        stride,
        &[],
        matches!(spec_features, Features::RawWindow { .. }),
    )?;
    let given = features.window().map_or(dim, |(channels, _)| channels);
    ensure!(
        given == channels,
        "{} has {given} {} but the detector expects {channels}{}",
        data.display(),
        if window.is_some() {
            "channels"
        } else {
            "feature columns"
        },
        crate::host::surplus_columns_hint(given, channels)
    );
    Ok(inputs)
}
