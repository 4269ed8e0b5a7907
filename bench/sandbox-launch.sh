#!/usr/bin/env bash
# Sandbox launch benchmark (issue 4): whole-process timing with hyperfine, baselines in the
# same run. Needs root, hyperfine, bwrap, unshare (util-linux), runsc and a release build:
#   cargo build --release -p edge-runner && sudo bench/sandbox-launch.sh
# Results go to stdout (markdown) and bench/results/ (JSON); copy the table into
# BENCHMARKS.md under "Sandbox launch".
set -euo pipefail

ER=${ER:-$(cd "$(dirname "$0")/.." && pwd)/target/release/edge-runner}
RUNS=${RUNS:-40}
WORK=$(mktemp -d /var/tmp/er-bench.XXXXXX)
OUT=$(cd "$(dirname "$0")" && pwd)/results
mkdir -p "$OUT"
trap 'rm -rf "$WORK"' EXIT

# A runner configuration of its own: state, a key set to mask, AppArmor relaxed because
# this kernel has none (the policy is otherwise the hardened default).
mkdir -p "$WORK/state"
echo '{}' >"$WORK/keys.json"; chmod 600 "$WORK/keys.json"
cat >"$WORK/config.toml" <<TOML
keys = "$WORK/keys.json"
state_dir = "$WORK/state"
[sandbox]
apparmor = "if-available"
TOML
printf '#!/bin/sh\necho "hello from $0"\n' >"$WORK/hello.sh"; chmod 755 "$WORK/hello.sh"

# The bare runsc baseline: an equivalent bundle (same rootfs, read-only, same user, empty
# capabilities, tmpfs /tmp, no network), run directly.
mkdir -p "$WORK/bundle" "$WORK/runsc-root"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
for name, args in (("true", ["/bin/true"]), ("script", ["/run/tool"])):
    c = {
        "ociVersion": "1.0.2",
        "root": {"path": "/", "readonly": True},
        "hostname": "sandbox",
        "process": {
            "terminal": False, "cwd": "/", "args": args, "env": ["PATH=/usr/bin:/bin"],
            "user": {"uid": 65534, "gid": 65534, "additionalGids": []},
            "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "noNewPrivileges": True,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 256, "soft": 256}],
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=67108864"]},
            {"destination": "/run/tool", "type": "bind", "source": w + "/hello.sh", "options": ["rbind", "ro"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]},
    }
    import os
    os.makedirs(f"{w}/bundle/{name}", exist_ok=True)
    json.dump(c, open(f"{w}/bundle/{name}/config.json", "w"))
PY
# runsc run deletes its container when it ends, so one id serves every sequential run.
RUNSC="runsc --root=$WORK/runsc-root --network=none --ignore-cgroups run"

UNSHARE="unshare --user --map-root-user --mount --pid --fork --net --ipc --uts --cgroup"
BWRAP="bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --new-session --die-with-parent"
ERX="$ER --config $WORK/config.toml sandbox exec"

for target in true script; do
    if [ $target = true ]; then prog=/bin/true; else prog=$WORK/hello.sh; fi
    hyperfine -N --warmup 5 --runs "$RUNS" --export-markdown "$OUT/native-$target.md" --export-json "$OUT/native-$target.json" \
        -n "bare exec" "$prog" \
        -n "unshare (user,mount,pid,net,ipc,uts,cgroup)" "$UNSHARE $prog" \
        -n "bwrap --unshare-all" "$BWRAP $prog" \
        -n "edge-runner native" "$ERX --backend native -- $prog"
    hyperfine -N --warmup 3 --runs "$((RUNS / 2))" --export-markdown "$OUT/runsc-$target.md" --export-json "$OUT/runsc-$target.json" \
        -n "bare runsc run" "$RUNSC --bundle=$WORK/bundle/$target bench-$target" \
        -n "edge-runner runsc" "$ERX --backend runsc -- $prog"
done
cat "$OUT"/native-true.md "$OUT"/native-script.md "$OUT"/runsc-true.md "$OUT"/runsc-script.md
