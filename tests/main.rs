//! The integration-test binary: one module per theme (STYLE: one test binary).
// Tests may unwrap and panic; shipped code may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod events;
