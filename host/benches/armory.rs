//! Armory resolution cost: resolving (private copy + SHA-256 while copying) a 50 MB tool,
//! against `sha256sum` of the same blob and an in-process hash-only read, measured in the
//! same run. Results and the command are recorded in BENCHMARKS.md ("Armory resolution").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use edge_runner::armory::Armory;
use edge_runner::digest::Digest;
use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

const SIZE: usize = 50 * 1024 * 1024;

fn tool_bytes() -> Vec<u8> {
    // An ELF magic then incompressible bytes (a xorshift stream: no allocation of randomness).
    let mut bytes = vec![0u8; SIZE];
    bytes[..4].copy_from_slice(b"\x7fELF");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in bytes[4..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let armory = Armory::create(&dir.path().join("armory")).unwrap();
    let scratch = dir.path().join("state/tools");
    let bytes = tool_bytes();
    let added = armory
        .add(&mut &bytes[..], "bench", "bench", chrono::Utc::now())
        .unwrap();
    armory
        .authorize(&added.digest, "bench", chrono::Utc::now())
        .unwrap();
    let blob = dir
        .path()
        .join("armory/blobs/sha256")
        .join(added.digest.hex());
    drop(bytes);

    let mut g = c.benchmark_group("armory_resolution_50MB");
    g.sample_size(20).measurement_time(Duration::from_secs(15));
    g.bench_function("resolve (copy + sha256 + seal + cleanup)", |b| {
        b.iter(|| {
            let tool = armory.resolve(&added.digest, &scratch).unwrap();
            assert_eq!(tool.size(), SIZE as u64);
        })
    });
    g.bench_function("sha256sum (process)", |b| {
        b.iter(|| {
            let out = Command::new("sha256sum").arg(&blob).output().unwrap();
            assert!(out.stdout.starts_with(added.digest.hex().as_bytes()));
        })
    });
    g.bench_function("in-process read + sha256 only", |b| {
        b.iter(|| {
            let mut f = std::fs::File::open(&blob).unwrap();
            let mut buf = Vec::with_capacity(SIZE);
            f.read_to_end(&mut buf).unwrap();
            assert_eq!(Digest::of(&buf), added.digest);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
