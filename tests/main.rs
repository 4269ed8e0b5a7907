//! The integration and adversarial suites: one test binary, one module per theme.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod armory;
mod manifest;
mod replay;
mod task_kit;
