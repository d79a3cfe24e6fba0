//! The Tributary operator: reconciles Pipelines into Jobs along their DAG and DataSources into
//! connection checks, writing status, lineage and Events back.
//!
//! Decisions live in modules without I/O (`pipeline`, `datasource`, `jobs`, `observe`,
//! `conditions`, `budget`, `cached`, `results`, `recent`, `openlineage`), unit tested from fixtures;
//! `controller`, `leader`, `server`, `ratelimit`, `apicalls` and `openlineage_client` are the
//! thin shells that talk to the API server and the lineage endpoint.

pub mod apicalls;
pub mod budget;
pub mod cached;
pub mod conditions;
pub mod config;
pub mod controller;
pub mod creates;
pub mod datasource;
pub mod error;
pub mod events;
pub mod job_index;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod openlineage;
pub mod openlineage_client;
pub mod pipeline;
pub mod ratelimit;
pub mod recent;
pub mod results;
pub mod server;
pub mod settle;
pub mod status_queue;
pub mod time;

#[cfg(test)]
mod fixtures;

/// Field manager of every server-side apply the operator makes (status only; never spec).
pub const FIELD_MANAGER: &str = "tributary-operator";
/// Value of `app.kubernetes.io/managed-by` on every object the operator creates.
pub const MANAGED_BY: &str = "tributary-operator";
