//! Property tests of the spool (issue 15): any sequence of writes, removals, dead letters
//! and requeues reads back as the queue a simple model predicts: every event exactly
//! once, byte for byte, in the order written, with strictly increasing sequence numbers.
//! Also the file-name decoder's regression cases found while writing its fuzz target.

use super::tests::limits;
use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// Queue an event with these bytes.
    Write(Vec<u8>),
    /// Deliver (remove) the head.
    Deliver,
    /// The receiver refused the head for good: move it to the dead letters.
    Refuse,
    /// Put every dead letter back at the tail.
    Requeue,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Step::Write),
        2 => Just(Step::Deliver),
        1 => Just(Step::Refuse),
        1 => Just(Step::Requeue),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spool_write_then_read_matches_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(&d.path().join("q"), &d.path().join("dead"), limits(1000)).unwrap();
        // The model: the queue and the dead letters, oldest first.
        let mut queue: std::collections::VecDeque<Vec<u8>> = Default::default();
        let mut dead: Vec<Vec<u8>> = Vec::new();
        let mut delivered: Vec<Vec<u8>> = Vec::new();
        for step in steps {
            // A fresh lock per step, as separate runner processes would take it.
            let l = s.lock().unwrap();
            match step {
                Step::Write(b) => {
                    let queued = matches!(l.enqueue(&b).unwrap(), Enqueued::Queued { .. });
                    prop_assert!(queued, "the spool has room");
                    queue.push_back(b);
                }
                Step::Deliver => {
                    if let Some(head) = l.entries().unwrap().first().cloned() {
                        delivered.push(std::fs::read(&head.path).unwrap());
                        l.remove(&head).unwrap();
                        let expected = queue.pop_front();
                        prop_assert_eq!(delivered.last(), expected.as_ref());
                    }
                }
                Step::Refuse => {
                    if let Some(head) = l.entries().unwrap().first().cloned() {
                        l.dead_letter(&head, "refused by the model").unwrap();
                        dead.extend(queue.pop_front());
                    }
                }
                Step::Requeue => {
                    let n = l.requeue_dead_letters().unwrap();
                    prop_assert_eq!(n as usize, dead.len());
                    queue.extend(dead.drain(..));
                }
            }
            let entries = l.entries().unwrap();
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{:?}", seqs);
            let on_disk: Vec<Vec<u8>> =
                entries.iter().map(|e| std::fs::read(&e.path).unwrap()).collect();
            prop_assert_eq!(&on_disk, &queue.iter().cloned().collect::<Vec<_>>());
            for e in &entries {
                prop_assert_eq!(e.size, std::fs::metadata(&e.path).unwrap().len());
            }
            let dead_on_disk: Vec<Vec<u8>> = l
                .dead_letters()
                .unwrap()
                .iter()
                .map(|p| std::fs::read(p).unwrap())
                .collect();
            prop_assert_eq!(&dead_on_disk, &dead);
        }
    }

    #[test]
    fn entry_names_round_trip(seq in any::<u64>()) {
        prop_assert_eq!(entry_seq(&entry_name(seq)), Some(seq));
    }

    #[test]
    fn backoff_state_round_trips(failures in any::<u32>(), next in any::<u64>()) {
        let b = backoff::Backoff { failures, next_attempt_ms: next };
        prop_assert_eq!(backoff::Backoff::parse(&b.render()), Some(b));
    }
}

/// `u64::from_str` takes a sign and any number of digits: before issue 15 `+7.json`,
/// `7.json` and `00000000000000000007.json` were all entry 7, so two files could claim one
/// place in the queue and be delivered in directory order.
#[test]
fn one_sequence_number_has_one_file_name() {
    assert_eq!(entry_seq("00000000000000000007.json"), Some(7));
    for other in [
        "7.json",
        "+7.json",
        "+0000000000000000007.json",
        "007.json",
        "000000000000000000007.json",
        "00000000000000000007.JSON",
        "0000000000000000000-.json",
        "99999999999999999999.json",
    ] {
        assert_eq!(entry_seq(other), None, "{other}");
    }
    let d = tempfile::tempdir().unwrap();
    let s = Spool::open(&d.path().join("q"), &d.path().join("dead"), limits(10)).unwrap();
    for name in ["7.json", "+7.json", "00000000000000000007.json"] {
        std::fs::write(s.dir().join(name), name).unwrap();
    }
    let l = s.lock().unwrap();
    let e = l.entries().unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        std::fs::read(&e[0].path).unwrap(),
        b"00000000000000000007.json"
    );
}
