//! Density models fitted on the host.
pub mod gmm;
pub mod gmm_gd;
pub mod kde;
pub mod kmeans;
pub mod sample;
pub mod standardize;
