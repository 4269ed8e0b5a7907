//! The size budget arithmetic: how many bytes an output costs in the serialized event,
//! where to cut it (at a UTF-8 boundary when it is text), and how to share the room
//! between stdout and stderr. Pure functions; no plugin, no I/O.

use super::super::record::{Disposition, ExecutionRecord};
use super::{Envelope, Streams};

/// Bytes of attribute and member names in a completed event, beyond the values the
/// estimate counts (the default mapping needs about 900).
const FIXED_OVERHEAD: usize = 1536;
/// Extra bytes removed per correction, for base64 rounding and char boundaries.
const SLACK: usize = 16;

/// An estimate of everything but the output: the values the event repeats, plus names.
pub(super) fn overhead(record: &ExecutionRecord, env: &Envelope) -> usize {
    let t = &record.task;
    let opt = |v: &Option<String>| v.as_deref().map_or(4, escaped_len);
    let mut n = FIXED_OVERHEAD + env.id.len() * 2 + env.time.len() + env.source.len() + 64;
    // task id and tenant id appear twice (attribute and data).
    n += 2 * opt(&t.task_id) + 2 * opt(&t.tenant_id);
    n += opt(&t.operator_id) + opt(&t.target_urn) + opt(&t.tool_sha256) + opt(&t.action);
    n += opt(&t.manifest_jws) + opt(&t.manifest_sha256);
    match &record.disposition {
        Disposition::Completed(o) => {
            let p = &o.posture;
            n += 2 * 72; // the two digests
            n += [&p.backend, &p.seccomp, &p.apparmor, &p.network]
                .iter()
                .map(|s| escaped_len(s))
                .sum::<usize>();
            n += p
                .namespaces
                .iter()
                .chain(&p.capabilities)
                .map(|s| escaped_len(s) + 3)
                .sum::<usize>();
        }
        Disposition::Denied(d) => n += escaped_len(&d.message),
    }
    n
}

/// Length of `s` inside a JSON string as serde_json writes it: `"` and `\` and the short
/// escapes take 2 bytes, other control characters 6 (`\u00XX`), everything else itself.
fn escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| usize::from(ESCAPED_LEN[usize::from(b)]))
        .sum()
}

fn escaped_byte_len(b: u8) -> usize {
    usize::from(ESCAPED_LEN[usize::from(b)])
}

/// [`escaped_byte_len`] of every byte, as a table (the outputs are walked byte by byte).
const ESCAPED_LEN: [u8; 256] = {
    let mut t = [1u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = 6;
        b += 1;
    }
    t[b'"' as usize] = 2;
    t[b'\\' as usize] = 2;
    t[b'\n' as usize] = 2;
    t[b'\r' as usize] = 2;
    t[b'\t' as usize] = 2;
    t[0x08] = 2;
    t[0x0c] = 2;
    t
};

/// Serialized length of an output as the default mapping encodes it: JSON-escaped text
/// when it is UTF-8, else padded base64.
pub(super) fn encoded_len(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(s) => escaped_len(s),
        Err(_) => bytes.len().div_ceil(3) * 4,
    }
}

/// The longest prefix of `bytes` whose encoding fits `budget` bytes, cut at a character
/// boundary when the bytes are UTF-8 (so text stays text).
pub(super) fn prefix_for_encoded(bytes: &[u8], budget: usize) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let mut used = 0;
            for (i, c) in s.char_indices() {
                let mut buf = [0u8; 4];
                let cost: usize = c.encode_utf8(&mut buf).bytes().map(escaped_byte_len).sum();
                if used + cost > budget {
                    return i;
                }
                used += cost;
            }
            bytes.len()
        }
        Err(_) => (budget / 4 * 3).min(bytes.len()),
    }
}

/// Removes at least `excess` (+ slack) raw bytes from the kept output, fairly.
pub(super) fn shrink(s: &Streams<'_>, keep: [usize; 2], excess: usize) -> [usize; 2] {
    let target = (keep[0] + keep[1]).saturating_sub(excess + SLACK);
    let share = fair_split(keep, target);
    [
        floor_boundary(&s.out[0].bytes, share[0]),
        floor_boundary(&s.out[1].bytes, share[1]),
    ]
}

/// Moves a cut back to a character boundary when the bytes are UTF-8.
fn floor_boundary(bytes: &[u8], at: usize) -> usize {
    let at = at.min(bytes.len());
    match std::str::from_utf8(bytes) {
        Ok(s) => (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0),
        Err(_) => at,
    }
}

/// Splits `budget` between two needs: each gets what it needs when that is under half,
/// the other gets the rest; otherwise half each.
pub(super) fn fair_split(need: [usize; 2], budget: usize) -> [usize; 2] {
    if need[0] + need[1] <= budget {
        return need;
    }
    let half = budget / 2;
    if need[0] <= half {
        [need[0], budget - need[0]]
    } else if need[1] <= half {
        [budget - need[1], need[1]]
    } else {
        [half, budget - half]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_split_gives_small_streams_all_they_need() {
        assert_eq!(fair_split([10, 20], 100), [10, 20]);
        assert_eq!(fair_split([10, 200], 100), [10, 90]);
        assert_eq!(fair_split([200, 10], 100), [90, 10]);
        assert_eq!(fair_split([200, 300], 100), [50, 50]);
    }

    #[test]
    fn cuts_respect_utf8_and_escapes() {
        let text = "aé\"b".as_bytes(); // a(1) é(2 bytes, 1 cost each) "(2) b(1)
        assert_eq!(encoded_len(text), 1 + 2 + 2 + 1);
        assert_eq!(prefix_for_encoded(text, 2), 1); // é would split mid-budget: cut before
        assert_eq!(prefix_for_encoded(text, 3), 3);
        assert_eq!(prefix_for_encoded(text, 4), 3);
        assert_eq!(prefix_for_encoded(text, 5), 4);
        assert_eq!(floor_boundary(text, 2), 1);
        let bin = [0xffu8; 10];
        assert_eq!(encoded_len(&bin), 16);
        assert_eq!(prefix_for_encoded(&bin, 8), 6);
        assert_eq!(floor_boundary(&bin, 7), 7);
    }
}
