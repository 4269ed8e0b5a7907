//! Where events go: stdout as JSON lines, an append-only file with rotation, or a
//! CloudEvents receiver over HTTP or HTTPS (structured mode) behind a durable spool. Each sink
//! reports what became of one event ([`Delivery`]); none drops an event without saying
//! so. This module does not build or judge events.

mod file;
mod http;
pub mod spool;
mod stdout;
pub mod tls;

pub(crate) use file::FileSink;
pub use http::FlushReport;
pub(crate) use http::HttpSink;
pub(crate) use stdout::StdoutSink;

use std::path::PathBuf;

/// What became of one event at one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Written (stdout, file) or acknowledged by the receiver (HTTP 2xx).
    Delivered,
    /// Durably queued; it will be delivered, in order, when the receiver is back (by a
    /// later emit or `edge-runner events flush`).
    Spooled {
        /// Events in the spool now, this one included.
        pending: u64,
        /// Why it was not delivered yet.
        reason: String,
    },
    /// Refused for good (an HTTP 4xx, say) or the spool was full: kept in the
    /// dead-letter directory for an operator (`edge-runner events requeue`).
    DeadLettered {
        /// Where the event was kept.
        path: PathBuf,
        /// Why it was given up on.
        reason: String,
    },
    /// The sink could not take the event at all (a write error with no spool behind it).
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl Delivery {
    /// True when the event is not on its way to this sink and needs a person.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            Delivery::DeadLettered { .. } | Delivery::Failed { .. }
        )
    }
}

/// A configured sink.
#[derive(Debug)]
pub(crate) enum Sink {
    Stdout(StdoutSink),
    File(FileSink),
    Http(Box<HttpSink>),
}

impl Sink {
    pub(crate) fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "stdout".to_owned(),
            Sink::File(f) => format!("file:{}", f.path().display()),
            Sink::Http(h) => format!("http:{}", h.name()),
        }
    }

    pub(crate) fn deliver(&self, json: &[u8]) -> Delivery {
        match self {
            Sink::Stdout(s) => s.deliver(json),
            Sink::File(f) => f.deliver(json),
            Sink::Http(h) => h.deliver(json),
        }
    }
}
