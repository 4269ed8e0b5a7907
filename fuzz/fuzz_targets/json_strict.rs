//! The strict JSON reader (`json::parse_strict`) and its streaming twin
//! (`json::check_strict`). Invariants: the two accept exactly the same documents and
//! report the same top-level strings; an accepted document has no duplicate members (an
//! independent last-wins parser reads the same value), is within the depth cap, and
//! survives a serialize-and-reparse round trip unchanged.
#![no_main]

use edge_runner::json::{JsonError, check_strict, parse_strict};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const WANTED: &[&str] = &["alg", "kid", "task_id", "id", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&d, input)) = data.split_first() else {
        return;
    };
    let max_depth = usize::from(d % 24);
    let tree = parse_strict(input, max_depth);
    // check_strict takes text: the document must be UTF-8 to be JSON at all.
    if let Ok(text) = std::str::from_utf8(input) {
        let streamed = check_strict(text, max_depth, WANTED);
        match (&tree, &streamed) {
            (Ok(v), Ok(c)) => {
                assert_eq!(c.is_object, v.is_object());
                for (name, got) in WANTED.iter().zip(&c.strings) {
                    let want = v.get(*name).and_then(Value::as_str);
                    assert_eq!(got.as_deref(), want, "member {name}");
                }
            }
            (Err(a), Err(b)) => {
                // Same class of refusal (the syntax message may differ in wording).
                let class = |e: &JsonError| std::mem::discriminant(e);
                assert_eq!(class(a), class(b), "{a} vs {b}");
            }
            (a, b) => panic!("the readers disagree: tree {a:?}, streaming {b:?}"),
        }
    } else {
        assert!(tree.is_err(), "accepted non-UTF-8 input");
    }
    let Ok(value) = tree else {
        return;
    };
    let lenient: Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => panic!("strict accepted what serde_json refuses: {e}"),
    };
    assert_eq!(lenient, value, "a duplicate member slipped through");
    assert!(
        edge_runner_fuzz::depth(&value) <= max_depth,
        "depth cap exceeded"
    );
    let text = match serde_json::to_vec(&value) {
        Ok(t) => t,
        Err(e) => panic!("an accepted value does not serialize: {e}"),
    };
    assert_eq!(
        parse_strict(&text, max_depth).as_ref(),
        Ok(&value),
        "round trip"
    );
});
