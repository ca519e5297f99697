//! Density models fitted on the host.
pub mod gmm;
pub mod gmm_gd;
pub mod kmeans;
pub mod standardize;
