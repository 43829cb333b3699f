//! The integration tests of sparse-data, one module per subject, in one test binary (one link
//! instead of one per file).

mod cifar;
mod common;
mod download;
mod idx_errors;
mod mutations;
