//! edge-runner: a hardened edge execution host.
//!
//! A task arrives as a compact JWS whose payload is the execution manifest. The pipeline,
//! one module per stage, data flowing one way:
//!
//! ```text
//! jws::parse -> verify (keys + plugins) -> manifest/claims -> replay -> armory -> sandbox -> events
//! ```
//!
//! Every stage hands the next a typed, already-checked value; any stage that says no
//! produces a [`reason::Refusal`] with a stable code. Only `sandbox` may contain unsafe
//! code (and `plugins::cache`, for wasmtime's deserialization).
#![deny(unsafe_code)]
// Every public item says what it is; `warn` so that a work-in-progress build still runs, while
// the lint gate (`clippy -- -D warnings`) refuses an undocumented one.
#![warn(missing_docs)]

pub mod armory;
pub mod config;
pub mod conformance;
pub mod digest;
pub mod durable;
pub mod events;
pub mod fleet;
pub mod fsperm;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod json;
pub mod jws;
pub mod keys;
pub mod manifest;
pub mod pipeline;
pub mod plugins;
pub mod reason;
pub mod replay;
pub mod sandbox;
pub mod sign;
pub mod text;
pub(crate) mod timing;
pub mod verify;
