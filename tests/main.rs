//! The integration and adversarial suites: one test binary, modules by theme.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sandbox;
