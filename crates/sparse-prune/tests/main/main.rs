//! The integration tests of sparse-prune, one module per subject, in one test binary (one link
//! instead of one per file): `cargo test -p sparse-prune --test main <module>` runs one subject.

mod common;
mod corrupt_checkpoints;
mod decay_effect;
mod end_to_end;
mod in_place;
mod learner;
mod masks;
mod properties;
mod resume;
mod schedules;
mod sparsity;
