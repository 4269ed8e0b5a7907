//! Issue 11: swappable crypto backends. Every embedded backend of an algorithm passes the
//! same vectors; one configuration line selects another backend, no rebuild; bad
//! selections and misdeclared plugins are refused with a sentence naming the problem.

use crate::support::{fixture_path, verifiers_with};
use edge_runner::plugins::PluginLimits;

#[test]
fn a_plugin_declaring_an_algorithm_twice_or_none_is_refused_at_load() {
    let e = verifiers_with(
        "ES256",
        &fixture_path("declares-twice"),
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(e.contains("declares the algorithm \"ES256\" twice"), "{e}");
    let e = verifiers_with(
        "ES256",
        &fixture_path("declares-none"),
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(e.contains("declares no algorithm"), "{e}");
}
