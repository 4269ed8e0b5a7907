#!/usr/bin/env bash
# Pipeline overhead benchmark (issue 6): whole-process timing with hyperfine of
#   edge-runner run TASK                      (ES256 task, warm plugin cache: verify through
#                                              the plugin, claims, nonce recorded (fsync),
#                                              armory resolve (copy + sha256), sandbox,
#                                              mapper plugin, event to stdout)
# against
#   edge-runner sandbox exec -- TOOL          (the bare sandbox: same backend, same policy,
#                                              same tool bytes, same private copy)
# in the same hyperfine run. Target: `run` adds at most 5 ms on the native backend.
#
# Nonces are single-use, so every timed `run` needs a task of its own: hyperfine's
# --prepare signs a fresh one (`manifest sign --fill`) before each timing, outside the
# measured time. The baseline gets the same --prepare, so both are timed right after the
# same work on the machine.
#
# Needs root, hyperfine and a release build:
#   cargo build --release -p edge-runner && sudo bench/run-overhead.sh
# Environment: RUNS (default 40), BACKEND (default native), ER (the binary).
set -euo pipefail

ER=${ER:-$(cd "$(dirname "$0")/.." && pwd)/target/release/edge-runner}
RUNS=${RUNS:-40}
BACKEND=${BACKEND:-native}
WORK=$(mktemp -d /var/tmp/er-run-bench.XXXXXX)
OUT=$(cd "$(dirname "$0")" && pwd)/results
mkdir -p "$OUT"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# Keys, an armory holding the tool (the bytes of /bin/true, authorized), a configuration:
# hardened defaults, AppArmor relaxed only because this kernel has none, events to stdout.
"$ER" keys generate --alg ES256 --kid bench >/dev/null
chmod 600 keys.json
cat >config.toml <<TOML
keys = "$WORK/keys.json"
state_dir = "$WORK/state"
[runner]
id = "bench-runner"
[sandbox]
backend = "$BACKEND"
apparmor = "if-available"
TOML
C="$ER --config $WORK/config.toml"
DIGEST=$($C armory add /bin/true --name true --by bench)
$C armory authorize "$DIGEST" --by bench >/dev/null
printf '{"manifest_version":"1","task_context":{"task_id":"bench","tenant_id":"bench"},"tool_sha256":"%s"}' \
    "$DIGEST" >manifest.json
SIGN="$C manifest sign --key $WORK/signing-key.jwk --fill --aud bench-runner $WORK/manifest.json"

# Warm the plugin compile cache and check that both commands work.
$SIGN >task.jws
$C run task.jws >/dev/null
$C sandbox exec --backend "$BACKEND" -- /bin/true 2>/dev/null

# The runner's own measure of its overhead (time outside the sandbox, in-process, plugin
# loading excluded), for profiling: a few runs at -v.
for _ in 1 2 3 4 5; do
    $SIGN >task.jws
    $C -v run task.jws 2>&1 >/dev/null | grep -o 'overhead_us=[0-9]*' || true
done

hyperfine -N --warmup 5 --runs "$RUNS" \
    --export-markdown "$OUT/run-overhead-$BACKEND.md" --export-json "$OUT/run-overhead-$BACKEND.json" \
    --prepare "sh -c '$SIGN >$WORK/task.jws'" --prepare "sh -c '$SIGN >$WORK/task.jws'" \
    -n "sandbox exec (bare sandbox)" "$C sandbox exec --backend $BACKEND -- /bin/true" \
    -n "run (ES256 task, whole pipeline)" "$C run $WORK/task.jws"
python3 - "$OUT/run-overhead-$BACKEND.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
med = [statistics.median(x["times"]) * 1000 for x in r]
mn = [min(x["times"]) * 1000 for x in r]
for x, m, n in zip(r, med, mn):
    print(f"{x['command']}: median {m:.2f} ms, min {n:.2f} ms")
print(f"pipeline overhead: median {med[1] - med[0]:+.2f} ms, min {mn[1] - mn[0]:+.2f} ms")
PY
