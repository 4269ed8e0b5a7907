//! The spool's file decoders: entry file names (`<20-digit sequence>.json`) and the retry
//! state (`.backoff`), first as pure functions, then as the HTTP sink reads a real spool
//! directory holding arbitrary files. Invariants: one sequence number has exactly one
//! file name (so a directory listing cannot reorder or double-deliver the queue), the
//! retry state round-trips, and the queue read from a directory is strictly ordered and
//! holds exactly the files whose names decode.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use edge_runner::fuzzing::{
    spool_backoff_parse, spool_backoff_render, spool_entries, spool_entry_name, spool_entry_seq,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    names: Vec<String>,
    seqs: Vec<u64>,
    backoff: String,
    on_disk: bool,
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(bytes)) else {
        return;
    };
    for name in &input.names {
        if let Some(seq) = spool_entry_seq(name) {
            assert_eq!(&spool_entry_name(seq), name, "two names for sequence {seq}");
        }
    }
    for &seq in &input.seqs {
        assert_eq!(spool_entry_seq(&spool_entry_name(seq)), Some(seq));
    }
    if let Some((f, t)) = spool_backoff_parse(&input.backoff) {
        assert_eq!(
            spool_backoff_parse(&spool_backoff_render(f, t)),
            Some((f, t))
        );
    }
    if !input.on_disk {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let (q, dead) = (dir.path().join("q"), dir.path().join("dead"));
    let Ok(_) = spool_entries(&q, &dead) else {
        panic!("a fresh spool does not open");
    };
    let mut expected = std::collections::BTreeSet::new();
    for name in input.names.iter().chain(
        input
            .seqs
            .iter()
            .map(|s| spool_entry_name(*s))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        // Only plain names: the spool lists one directory.
        if name.is_empty() || name.contains('/') || name.contains('\0') || name.starts_with('.') {
            continue;
        }
        if std::fs::write(q.join(name), b"{}").is_ok()
            && let Some(seq) = spool_entry_seq(name)
        {
            expected.insert(seq);
        }
    }
    let entries = match spool_entries(&q, &dead) {
        Ok(e) => e,
        Err(e) => panic!("the spool cannot be listed: {e}"),
    };
    let seqs: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "queue not strictly ordered: {seqs:?}"
    );
    assert_eq!(seqs, expected.into_iter().collect::<Vec<_>>());
    for (seq, path) in &entries {
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(spool_entry_name(*seq).as_str())
        );
    }
});
