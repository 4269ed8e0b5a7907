//! `edge-runner plugin check`: the conformance suite a verifier or mapper component must
//! pass before an operator pins it. Everything it needs is inside the binary (vectors in
//! `vectors`, compiled in from `host/conformance/`); it reads only the plugin file.
//!
//! Verifiers: `info` declares what it implements; per declared algorithm the RFC 7515 /
//! RFC 8037 vectors, Wycheproof, the attack classes and resource behaviour. Mappers: every
//! record shape through the host's own mapping and validation, output proportional to
//! input. This module judges a plugin; it never loads one into a running pipeline.

mod mapper;
mod vectors;
mod verifier;

use crate::plugins::{Inspected, PluginError, PluginHost};
use std::path::Path;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// What was checked.
    pub check: String,
    /// Whether the plugin passed it.
    pub passed: bool,
    /// What was seen, for a person.
    pub detail: String,
}

impl Row {
    pub(crate) fn pass(check: &str, detail: String) -> Self {
        Self {
            check: check.to_owned(),
            passed: true,
            detail,
        }
    }

    pub(crate) fn fail(check: &str, detail: String) -> Self {
        Self {
            check: check.to_owned(),
            passed: false,
            detail,
        }
    }
}

/// The result of checking one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The file checked, as given.
    pub file: String,
    /// Its digest (`sha256:<hex>`), the pin to configure if it passes.
    pub sha256: String,
    /// `verifier`, `mapper`, or `unknown` when it did not load.
    pub kind: &'static str,
    /// The name the plugin gave itself, when it loaded.
    pub plugin: Option<String>,
    /// The checks, in the order they ran.
    pub rows: Vec<Row>,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.passed)
    }
}

/// The file could not be checked at all (as opposed to failing checks).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read.
    #[error("failed to read plugin file {path}")]
    Read {
        /// The plugin file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be loaded as a plugin at all (unreadable, too large, not a
    /// component, or of neither plugin world).
    #[error("{0}")]
    NotAPlugin(#[source] PluginError),
}

/// Checks the plugin at `path` on `host` (whose limits are the ones enforced);
/// `max_input` is the largest signing input the configuration admits
/// (`input.max_jws_bytes`).
pub fn check_file(host: &PluginHost, path: &Path, max_input: usize) -> Result<Report, CheckError> {
    let bytes = std::fs::read(path).map_err(|source| CheckError::Read {
        path: path.to_owned(),
        source,
    })?;
    let sha256 = crate::digest::sha256_id(&bytes);
    let mut report = Report {
        file: path.display().to_string(),
        sha256,
        kind: "unknown",
        plugin: None,
        rows: Vec::new(),
    };
    match host.inspect(path) {
        Ok(Inspected::Verifier(plugin)) => {
            report.kind = "verifier";
            report.plugin = Some(plugin.name.clone());
            report.rows = verifier::check(host, &plugin, max_input);
        }
        Ok(Inspected::Mapper(plugin)) => {
            report.kind = "mapper";
            report.plugin = Some(plugin.name.clone());
            report.rows = mapper::check(host, plugin);
        }
        // Not a component, or neither world: nothing to check.
        Err(
            e @ (PluginError::Compile { .. }
            | PluginError::NoWorld { .. }
            | PluginError::TooLarge { .. }
            | PluginError::Read { .. }),
        ) => return Err(CheckError::NotAPlugin(e)),
        // It is a plugin, and loading refused it: that is the first failed check.
        Err(e) => {
            report
                .rows
                .push(Row::fail("loads (world, imports, info)", chain(&e)));
        }
    }
    Ok(report)
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
