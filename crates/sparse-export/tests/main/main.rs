//! The integration tests of sparse-export, one module per subject, in one test binary (one link
//! of Burn instead of one per file).

mod common;
mod corpus;
mod roundtrip;
mod transformer;
