//! tinygen's trainer: data loading, model fitting, evaluation and export.
//!
//! The `tinygen` binary (see `main.rs`) drives these modules; the model file
//! format itself lives in the runtime crate (`tinygen_runtime::format`).
pub mod commands;
pub mod data;
pub mod density;
pub mod detector;
pub mod divergence;
pub mod host;
pub mod io;
pub mod nn;
pub mod plot;
