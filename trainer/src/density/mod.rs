//! Density models fitted on the host.
mod em_kernels;
mod em_pass;
pub mod gmm;
pub mod gmm_gd;
pub mod kde;
pub mod kmeans;
pub mod sample;
pub mod shrinkage;
pub mod standardize;
