//! Tributary's typed API and the pure core that decides what a Pipeline may do.
//!
//! Nothing in this crate performs I/O: every decision takes the spec, the observed
//! state and the clock as arguments, so the operator, the runner and the CLI share
//! one tested source of truth.

pub mod api;
pub mod contract;
pub mod crd;
pub mod dag;
pub mod identifier;
pub mod lineage;
pub mod naming;
pub mod plan;
pub mod retry;
pub mod schedule;
pub mod template;
pub mod validate;
