#!/usr/bin/env bash
# Whole-process timing of `edge-runner armory pull` (release build) of a 50 MB tool from a
# real registry (Debian's docker-registry on a loopback port, TLS with a throwaway CA),
# against two baselines in the same hyperfine run: `armory add` of the same local file
# (hash + durable store, no network) and `curl` of the same blob to /dev/null (the
# registry and TLS, no hashing or storing). Each pull and add goes into an empty armory.
#
# Usage: bench/armory-pull.sh   (needs hyperfine, openssl, curl, docker-registry)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p edge-runner >/dev/null
bin="$PWD/target/release/edge-runner"
work=$(mktemp -d)
reg_pid=
trap '[[ -n $reg_pid ]] && kill $reg_pid; rm -rf "$work"' EXIT
cd "$work"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    -keyout reg.key -out reg.crt 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir storage
cat > registry.yml <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $work/reg.crt
    key: $work/reg.key
YML
/usr/bin/docker-registry serve registry.yml 2>/dev/null &
reg_pid=$!
for _ in $(seq 100); do curl -s --cacert reg.crt "https://localhost:$port/v2/" >/dev/null && break; sleep 0.1; done

printf 'state_dir = "%s/state"\n[armory.pull]\nca_file = "%s/reg.crt"\n' "$work" "$work" > config.toml
export EDGE_RUNNER_CONFIG="$work/config.toml"
{ printf '\177ELF'; head -c 50000000 /dev/urandom; } > tool
ref=$("$bin" armory push tool "localhost:$port/bench/tool" | head -1)
digest=${ref##*@}

hyperfine -N --warmup 2 --runs 15 \
    --export-markdown "$work/pull.md" \
    --prepare "rm -rf $work/state/armory" \
    -n 'baseline: curl the blob' "curl -s --cacert $work/reg.crt -o /dev/null https://localhost:$port/v2/bench/tool/blobs/$digest" \
    -n 'baseline: armory add (local file)' "$bin armory add $work/tool --name tool" \
    -n 'armory pull' "$bin armory pull $ref"
cat "$work/pull.md"
