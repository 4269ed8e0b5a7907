//! The integration and adversarial suite: one test binary, modules by theme.
//!
//! Tests that need root, runsc or network namespaces run in CI (root, runsc installed);
//! they fail, never skip, when a prerequisite is missing.

// Tests are exempt from the workspace's no-unwrap/no-panic lints: a failed expectation
// should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod support;

mod armory;
mod backends;
mod cli_verify;
mod contract;
mod eddsa;
mod events;
mod fleet;
mod jws_attacks;
mod manifest;
mod plugin_check;
mod plugin_faults;
mod properties;
mod registry;
mod replay;
mod run;
mod sandbox;
mod task_kit;
mod vectors;
mod vm;
