#!/usr/bin/env bash
# Tasks per second through `edge-runner serve` (native backend, /bin/true, ES256) against
# the same tasks through one `edge-runner run` process each, in the same invocation; and
# publish-to-event latency (p50/p99) with no queue. Needs root, nats-server, hyperfine is
# not used (the load generator times itself).
#
#   sudo bench/serve-throughput.sh            # N=500 tasks by default
#   sudo N=2000 CONCURRENCY=2 bench/serve-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
CONCURRENCY=${CONCURRENCY:-0}
PROFILE=${PROFILE:-release}   # PROFILE=debug to try the script without a release build
if [[ $PROFILE == release ]]; then
    cargo build --release --locked -p edge-runner --bins --example serve_load >&2
else
    cargo build --locked -p edge-runner --bins --example serve_load >&2
fi
bin="$PWD/target/$PROFILE/edge-runner"
load="$PWD/target/$PROFILE/examples/serve_load"
dir=$(mktemp -d /tmp/serve-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
chmod 700 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/js" >"$dir/nats.log" 2>&1 &
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
cd "$dir"
"$bin" keys generate --alg ES256 --kid bench >/dev/null
mkdir -m 700 state
cat >config.toml <<TOML
keys = "$dir/keys.json"
state_dir = "$dir/state"
[runner]
id = "bench"
[sandbox]
backend = "native"
apparmor = "if-available"
[events]
sinks = [{ type = "file", path = "$dir/run-events.jsonl" }]
[fleet]
nats_url = "nats://127.0.0.1:$port"
tenants = ["bench"]
concurrency = $CONCURRENCY
TOML
chmod 600 config.toml
export EDGE_RUNNER_CONFIG="$dir/config.toml"
digest=$("$bin" armory add /bin/true --name true | grep -o 'sha256:[0-9a-f]*' | head -1)
"$bin" armory authorize "$digest" >/dev/null

# Baseline: one `edge-runner run` process per task, as many at once as the serve run.
mkdir tasks
"$load" "nats://127.0.0.1:$port" signing-key.jwk "$digest" bench bench "$N" tasks
par=$CONCURRENCY; [[ $par -gt 0 ]] || par=$(nproc)
start=$(date +%s.%N)
ls tasks/*.jws | xargs -P "$par" -n 1 "$bin" run >/dev/null
end=$(date +%s.%N)
echo "{\"baseline\":\"one run process per task\",\"tasks\":$N,\"parallel\":$par,\"tasks_per_second\":$(python3 -c "print(round($N/($end-$start),1))")}"

# serve: the same number of fresh tasks, all at once, then one at a time.
"$bin" serve >"$dir/serve.log" 2>&1 &
for _ in $(seq 200); do grep -q serving "$dir/serve.log" 2>/dev/null && break; sleep 0.05; done
"$load" "nats://127.0.0.1:$port" signing-key.jwk "$digest" bench bench "$N" | sed 's/^{/{"mode":"serve, burst",/'
"$load" "nats://127.0.0.1:$port" signing-key.jwk "$digest" bench bench 200 --serial | sed 's/^{/{"mode":"serve, one at a time",/'
