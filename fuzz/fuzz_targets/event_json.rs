//! The event validator on structured-mode JSON (`events::validate::check_json`, what
//! `events validate` and a receiver run). Invariants on an accepted event: it passes the
//! official CloudEvents v1.0.2 JSON schema (an independent validator) and the spec rules
//! the schema leaves out, and the SDK event it reads back serializes to an event that is
//! accepted again with the same attributes.
#![no_main]

use edge_runner::events::validate::check_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = check_json(data, Some(64 * 1024)) else {
        return;
    };
    assert!(data.len() <= 64 * 1024);
    let value = edge_runner_fuzz::json(data);
    edge_runner_fuzz::assert_cloudevent(&value);
    let again = match serde_json::to_vec(&event) {
        Ok(b) => b,
        Err(e) => panic!("an accepted event does not serialize: {e}"),
    };
    match check_json(&again, None) {
        Ok(back) => assert_eq!(back, event, "the event changed in a round trip"),
        Err(e) => panic!(
            "the re-serialized event is refused ({e}): {}",
            String::from_utf8_lossy(&again)
        ),
    }
});
