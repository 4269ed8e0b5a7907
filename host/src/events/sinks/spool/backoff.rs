//! The retry schedule of one spool: consecutive failures and when the next attempt is
//! due, kept in `<spool>/.backoff` so that it survives restarts and is shared by every
//! runner process (each reads it under the spool lock). Exponential from the initial
//! delay, capped, with jitter; a receiver's `Retry-After` is honoured up to the cap.

use super::{Locked, STATE_FILE};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

impl Locked<'_> {
    /// When the next delivery attempt is due, and how many attempts failed in a row.
    pub(crate) fn backoff(&self) -> Backoff {
        let path = self.spool.dir.join(STATE_FILE);
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| Backoff::parse(&s))
            .unwrap_or_default()
    }

    /// Records a failed attempt: the next one waits `initial * 2^(failures-1)`, capped,
    /// with up to 20% jitter so that many runners do not retry in step.
    pub(crate) fn record_failure(&self, retry_after: Option<Duration>) -> Backoff {
        let previous = self.backoff();
        let failures = previous.failures.saturating_add(1);
        let limits = &self.spool.limits;
        let exp = limits
            .backoff_initial
            .saturating_mul(1u32 << (failures - 1).min(20))
            .min(limits.backoff_max);
        let jitter = exp.mul_f64(f64::from(jitter_permille()) / 5000.0);
        let wait = retry_after.map_or(exp + jitter, |r| r.min(limits.backoff_max).max(exp));
        let b = Backoff {
            failures,
            next_attempt_ms: now_ms() + wait.as_millis() as u64,
        };
        self.write_backoff(&b);
        b
    }

    /// Records a successful delivery.
    pub(crate) fn record_success(&self) {
        if self.backoff() != Backoff::default() {
            self.write_backoff(&Backoff::default());
        }
    }

    fn write_backoff(&self, b: &Backoff) {
        // Best effort: losing it only means an earlier retry.
        let path = self.spool.dir.join(STATE_FILE);
        let r = crate::durable::replace(&path, b.render().as_bytes(), 0o600);
        if let Err(e) = r {
            tracing::warn!(path = %path.display(), error = %e, "failed to record the retry schedule");
        }
    }
}

/// The retry schedule of one spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub failures: u32,
    pub next_attempt_ms: u64,
}

impl Backoff {
    /// Reads the state file's text: `<failures> <next attempt, ms since the epoch>`.
    /// Anything else is no schedule (the next attempt is due now).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (f, t) = text.trim().split_once(' ')?;
        Some(Backoff {
            failures: f.parse().ok()?,
            next_attempt_ms: t.parse().ok()?,
        })
    }

    /// The state file's text for this schedule.
    pub(crate) fn render(&self) -> String {
        format!("{} {}\n", self.failures, self.next_attempt_ms)
    }

    /// Time left before the next attempt is due.
    pub(crate) fn remaining(&self) -> Duration {
        Duration::from_millis(self.next_attempt_ms.saturating_sub(now_ms()))
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn jitter_permille() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 0;
    }
    u16::from_le_bytes(b) % 1000
}

#[cfg(test)]
mod tests {
    use super::super::tests::limits;
    use super::super::*;
    use super::Backoff;

    #[test]
    fn backoff_grows_exponentially_to_the_cap_and_resets() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(&d.path().join("q"), &d.path().join("dead"), limits(10)).unwrap();
        let l = s.lock().unwrap();
        let mut waits = Vec::new();
        for _ in 0..6 {
            let before = now_ms();
            let b = l.record_failure(None);
            waits.push(b.next_attempt_ms.saturating_sub(before));
        }
        assert!(waits[0] >= 100 && waits[0] <= 170, "{waits:?}");
        assert!(waits[1] >= 200 && waits[1] <= 290, "{waits:?}");
        assert!(waits[2] >= 400 && waits[2] <= 530, "{waits:?}");
        assert!(waits[5] >= 1000 && waits[5] <= 1250, "capped: {waits:?}");
        l.record_success();
        assert_eq!(l.backoff(), Backoff::default());
    }
}
