//! The stdout sink: one event per line (JSON lines), flushed after each event so a
//! supervisor reading the pipe sees it at once. It owns nothing but the stdout handle.

use super::Delivery;
use std::io::Write as _;

#[derive(Debug, Default)]
pub(crate) struct StdoutSink;

impl StdoutSink {
    pub(crate) fn deliver(&self, json: &[u8]) -> Delivery {
        let mut out = std::io::stdout().lock();
        match out
            .write_all(json)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
        {
            Ok(()) => Delivery::Delivered,
            Err(e) => {
                tracing::error!(error = %e, "failed to write an event to stdout");
                Delivery::Failed {
                    error: format!("failed to write to stdout: {e}"),
                }
            }
        }
    }
}
