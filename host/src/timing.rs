//! Where the time of a task went, stage by stage, logged at debug level (`-v -v`): for
//! operators asking why a task was slow, and for the benchmarks' profiling.

use std::time::{Duration, Instant};

/// Wall time between named points; logs one line when dropped, however the work ended.
pub(crate) struct StageClock {
    what: &'static str,
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl StageClock {
    /// Starts the clock; `what` is the log message ("stage timings", "sandbox timings").
    pub(crate) fn start(what: &'static str) -> Self {
        Self {
            what,
            last: Instant::now(),
            laps: Vec::with_capacity(12),
        }
    }

    /// Ends the stage `stage` now.
    pub(crate) fn lap(&mut self, stage: &'static str) {
        let now = Instant::now();
        self.laps.push((stage, now - self.last));
        self.last = now;
    }
}

impl Drop for StageClock {
    fn drop(&mut self) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let laps: Vec<String> = self
                .laps
                .iter()
                .map(|(stage, d)| format!("{stage}={}us", d.as_micros()))
                .collect();
            tracing::debug!(stages = %laps.join(" "), "{}", self.what);
        }
    }
}
