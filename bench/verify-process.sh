#!/usr/bin/env bash
# Whole-process timing of `edge-runner verify` (release build): a first run (cold
# compile cache: every plugin is compiled) and a second run (warm cache: deserialized),
# with `true` as the process-spawn baseline, all in the same hyperfine invocation.
#
# Usage: bench/verify-process.sh   (needs hyperfine; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p edge-runner >/dev/null
bin="$PWD/target/release/edge-runner"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'state_dir = "%s/state"\n[runner]\nid = "bench-runner"\n' "$work" > config.toml
export EDGE_RUNNER_CONFIG="$work/config.toml"
"$bin" keys generate --alg ES256 --kid k1 >/dev/null
printf '{"manifest_version":"1","task_context":{"task_id":"t-1","tenant_id":"acme"},"tool_sha256":"sha256:%s"}' \
    "$(printf 'ab%.0s' $(seq 32))" > m.json
"$bin" manifest sign --fill --aud bench-runner --key signing-key.jwk m.json > task.jws
"$bin" verify --keys keys.json task.jws >/dev/null   # warm the cache once

# One --prepare per command, in order: only the cold run clears the cache.
hyperfine -N --warmup 3 --runs 30 \
    --export-markdown "$work/verify.md" \
    --prepare 'true' --prepare 'true' --prepare "rm -rf $work/state/plugin-cache" \
    -n 'baseline: true' 'true' \
    -n 'verify, second run (warm cache)' "$bin verify --keys keys.json task.jws" \
    -n 'verify, first run (cold cache)' "$bin verify --keys keys.json task.jws"
cat "$work/verify.md"
