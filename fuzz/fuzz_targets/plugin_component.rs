//! The plugin boundary, load side: arbitrary bytes as a plugin component file (pinned by
//! its digest, as a configuration would), loaded as a mapper and as a verifier. The
//! seeds are small valid components (fuzz/corpus) and, when built, the real plugins.
//! Invariants: loading fails with an error, never a crash; a component that loads and
//! answers yields, through the host, either its own valid event or the flagged fallback
//! (never an invalid event), and a verifier that loads never accepts a signature for a
//! key it refused.
#![no_main]

use edge_runner::digest::sha256_id;
use edge_runner::events::Mapping;
use edge_runner::events::record::{Denial, Disposition, ExecutionRecord, TaskContext};
use edge_runner::fuzzing::EventMapper;
use edge_runner::plugins::{
    CompileCache, PinnedFile, PluginHost, PluginLimits, Verifiers, VerifyFailure,
};
use edge_runner::reason::{Reason, Refusal};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        // Small budgets: a fuzzed component that loops or allocates is stopped quickly.
        let limits = PluginLimits {
            fuel: 2_000_000,
            memory_bytes: 8 * 1024 * 1024,
            ..PluginLimits::default()
        };
        match PluginHost::new(limits, CompileCache::disabled()) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("plugin.wasm");
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let pinned = PinnedFile {
        path: path.clone(),
        sha256: sha256_id(bytes),
    };
    let host = host();
    if let Ok(plugin) = host.load_mapper(Some(&pinned)) {
        let mapper = EventMapper::with_plugin(host.clone(), plugin, 8 * 1024);
        let record = ExecutionRecord {
            task: TaskContext {
                task_id: Some("t-1".into()),
                tenant_id: Some("acme".into()),
                ..TaskContext::default()
            },
            disposition: Disposition::Denied(Denial::from(Refusal::new(
                Reason::SignatureInvalid,
                "fuzz",
            ))),
        };
        let mapped = mapper.map(&record, "e-1", "2026-11-26T21:00:00.000Z", "urn:x:fuzz");
        if let Err(e) = edge_runner::events::validate::check_json(&mapped.json, None) {
            panic!("emitted an invalid event ({e}) for a loaded component");
        }
        let v = edge_runner_fuzz::json(&mapped.json);
        edge_runner_fuzz::assert_cloudevent(&v);
        assert_eq!(v["id"], "e-1");
        if matches!(mapped.mapping, Mapping::Fallback { .. }) {
            assert_eq!(v["mapperfailed"], true, "fallback not flagged");
        }
    }
    let mut overrides = BTreeMap::new();
    overrides.insert("ES256".to_owned(), pinned.into());
    if let Ok(verifiers) = Verifiers::load_for(host.clone(), &overrides, &Default::default()) {
        // The host took the component for ES256 only if it says it implements ES256.
        let Some(plugin) = verifiers.get("ES256") else {
            panic!("a verifier loaded for ES256 that does not serve ES256");
        };
        assert!(!plugin.algorithms.is_empty());
        assert!(plugin.algorithms.iter().any(|a| a.name == "ES256"));
        assert!(
            !plugin.name.chars().any(char::is_control),
            "plugin name reaches logs unsanitized: {:?}",
            plugin.name
        );
        let key = vec![
            ("kty".to_owned(), "EC".to_owned()),
            ("crv".to_owned(), "P-256".to_owned()),
            ("x".to_owned(), "AA".to_owned()),
            ("y".to_owned(), "AA".to_owned()),
        ];
        // Whatever the component does (trap, loop, garbage), the host returns an answer.
        let _ = verifiers.validate_key(plugin, "ES256", &key);
        if let Err(VerifyFailure::Fault(f)) =
            verifiers.verify(plugin, "ES256", &key, b"a.b", &[0; 64])
        {
            assert!(!f.to_string().is_empty());
        }
    }
});
