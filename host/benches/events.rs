//! Event pipeline benchmarks (issue 5). Run: `cargo bench --bench events`.
//!
//! - `events_map/*`: record -> mapper plugin (fresh instance, fuel, memory cap) ->
//!   validated, serialized event; the 4 KiB case is the target (<= 50 us).
//! - `file_sink/*`: the file sink (flock, append, fdatasync per event) against a plain
//!   append + fdatasync loop in the same run, on the same filesystem.
// Benchmark setup may unwrap: a failure aborts the run, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edge_runner::config::Config;
use edge_runner::events::{Disposition, EventPipeline, EventSinks, ExecutionRecord, TaskContext};
use edge_runner::plugins::{CompileCache, PluginHost, PluginLimits};
use edge_runner::sandbox::{Captured, Outcome, Posture, Termination};
use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

fn record(stdout: Vec<u8>) -> ExecutionRecord {
    ExecutionRecord {
        task: TaskContext {
            task_id: Some("task-42".into()),
            tenant_id: Some("tenant-a".into()),
            operator_id: Some("operator-7".into()),
            target_urn: Some("urn:edge:target:pump-3".into()),
            tool_sha256: Some(format!("sha256:{}", "ab".repeat(32))),
            action: Some("inspect".into()),
            ..TaskContext::received(
                format!("{}.{}.{}", "h".repeat(60), "p".repeat(400), "s".repeat(86)).as_bytes(),
            )
        },
        disposition: Disposition::Completed(Outcome {
            termination: Termination::Exited(0),
            timed_out: false,
            stdout: Captured::complete(stdout),
            stderr: Captured::complete(b"warning: something\n".to_vec()),
            wall_ms: 12,
            cpu_ms: 3,
            peak_memory_bytes: 4 << 20,
            posture: Posture {
                backend: "native".into(),
                namespaces: ["pid", "net", "mount", "ipc", "uts", "user"]
                    .map(String::from)
                    .to_vec(),
                capabilities: vec![],
                seccomp: "filter".into(),
                seccomp_extra: vec![],
                landlock: "abi:7".into(),
                cgroup: "v1:pids,memory".into(),
                apparmor: "unavailable".into(),
                network: "none".into(),
                uid: 65534,
                gid: 65534,
                no_new_privs: true,
                read_only_root: true,
            },
        }),
    }
}

fn config(dir: &Path, extra: &str) -> Config {
    let text = format!("state_dir = {:?}\n{extra}", dir.display().to_string());
    Config::parse(&text, Path::new("bench.toml")).unwrap()
}

fn text_output(n: usize) -> Vec<u8> {
    let line = b"2024-05-01T12:00:00Z scan: 17 files checked, 0 findings, ok\n";
    line.iter().copied().cycle().take(n).collect()
}

fn map(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let host = PluginHost::long_lived(PluginLimits::default(), CompileCache::disabled()).unwrap();
    let digest = format!(
        "[plugins.mapper]\npath = {:?}\nsha256 = \"{}\"\n",
        env!("EDGE_RUNNER_PLUGIN_DIGEST_MAPPER"),
        edge_runner::digest::sha256_id(
            &std::fs::read(env!("EDGE_RUNNER_PLUGIN_DIGEST_MAPPER")).unwrap()
        )
    );
    let default = EventPipeline::new(&config(dir.path(), ""), &host).unwrap();
    let digest = EventPipeline::new(&config(dir.path(), &digest), &host).unwrap();
    let mut g = c.benchmark_group("events_map");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in [("empty", 0usize), ("4KiB", 4096), ("60KiB", 60 * 1024)] {
        let r = record(text_output(bytes));
        g.bench_with_input(BenchmarkId::new("cloudevents-mapper", name), &r, |b, r| {
            b.iter(|| black_box(default.build(black_box(r))))
        });
    }
    let r = record(text_output(4096));
    g.bench_with_input(BenchmarkId::new("digest-mapper", "4KiB"), &r, |b, r| {
        b.iter(|| black_box(digest.build(black_box(r))))
    });
    g.finish();
}

fn file_sink(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("events.jsonl");
    let cfg = format!(
        "[[events.sinks]]\ntype = \"file\"\npath = {:?}\nmax_bytes = 1073741824\n",
        path.display().to_string()
    );
    let sinks = EventSinks::open(&config(dir.path(), &cfg)).unwrap();
    let host = PluginHost::long_lived(PluginLimits::default(), CompileCache::disabled()).unwrap();
    let p = EventPipeline::new(&config(dir.path(), &cfg), &host).unwrap();
    let json = p.build(&record(text_output(4096))).json;

    let mut g = c.benchmark_group("file_sink");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function("events_file_sink_fsync", |b| {
        b.iter(|| black_box(sinks.deliver(black_box(&json))))
    });
    let plain_path = dir.path().join("plain.jsonl");
    let mut plain = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&plain_path)
        .unwrap();
    g.bench_function("plain_append_fsync", |b| {
        b.iter(|| {
            let mut line = Vec::with_capacity(json.len() + 1);
            line.extend_from_slice(&json);
            line.push(b'\n');
            plain.write_all(&line).unwrap();
            plain.sync_data().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, map, file_sink);
criterion_main!(benches);
