#!/usr/bin/env bash
# Sandbox launch benchmark (issues 4 and 12): whole-process timing with hyperfine, baselines in the
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
# ER_BEFORE=/path/to/an/older/edge-runner adds its native row to the same hyperfine run
# (a before/after comparison measured together).
BEFORE=()
if [ -n "${ER_BEFORE:-}" ]; then
    BEFORE=(-n "edge-runner native (before)" "$ER_BEFORE --config $WORK/config.toml sandbox exec --backend native -- PROG")
fi

for target in true script; do
    if [ $target = true ]; then prog=/bin/true; else prog=$WORK/hello.sh; fi
    hyperfine -N --warmup 5 --runs "$RUNS" --export-markdown "$OUT/native-$target.md" --export-json "$OUT/native-$target.json" \
        -n "bare exec" "$prog" \
        -n "unshare (user,mount,pid,net,ipc,uts,cgroup)" "$UNSHARE $prog" \
        -n "bwrap --unshare-all" "$BWRAP $prog" \
        -n "edge-runner native" "$ERX --backend native -- $prog" \
        "${BEFORE[@]//PROG/$prog}"
    hyperfine -N --warmup 3 --runs "$((RUNS / 2))" --export-markdown "$OUT/runsc-$target.md" --export-json "$OUT/runsc-$target.json" \
        -n "bare runsc run" "$RUNSC --bundle=$WORK/bundle/$target bench-$target" \
        -n "edge-runner runsc" "$ERX --backend runsc -- $prog"
done

# cgroup v1 against cgroup v2 (issue 12). This host keeps pids and memory on v1; the v2
# rows run in a private mount namespace whose /sys/fs/cgroup is a cgroup2 mount, inside a
# cgroup marked delegated (trusted.delegate=1, as systemd's Delegate=yes does). The
# kernel's pids and memory controllers stay bound to v1, so the v2 run cgroup carries no
# limits (cgroups = "if-available"): the rows compare the cgroup path itself (create,
# join: v1 writes "0" to each hierarchy's tasks, v2 is born there by clone3
# CLONE_INTO_CGROUP; kill, remove), with a no-cgroup row as the floor of each.
UNIFIED=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
V2TOP="$UNIFIED/er-bench-$$"
mkdir -p "$V2TOP/unit"
python3 -c "import os, sys; os.setxattr(sys.argv[1], 'trusted.delegate', b'1')" "$V2TOP/unit"
trap 'rm -rf "$WORK"; rmdir "$V2TOP/unit/edge-runner/"* "$V2TOP/unit/edge-runner" "$V2TOP/unit" "$V2TOP" 2>/dev/null || true' EXIT
sed 's/^apparmor = .*/&\ncgroups = "off"/' "$WORK/config.toml" >"$WORK/nocg.toml"
sed 's/^apparmor = .*/&\ncgroups = "if-available"/' "$WORK/config.toml" >"$WORK/v2.toml"
hyperfine -N --warmup 5 --runs "$RUNS" --export-markdown "$OUT/cgroup-v1.md" --export-json "$OUT/cgroup-v1.json" \
    -n "bare exec" /bin/true \
    -n "native, no cgroups" "$ER --config $WORK/nocg.toml sandbox exec --backend native -- /bin/true" \
    -n "native, cgroup v1 (pids, memory)" "$ERX --backend native -- /bin/true"
unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    umount -R /sys/fs/cgroup
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
    echo $$ >"/sys/fs/cgroup/$1/unit/cgroup.procs"
    hyperfine -N --warmup 5 --runs "$2" --export-markdown "$3/cgroup-v2.md" --export-json "$3/cgroup-v2.json" \
        -n "bare exec" /bin/true \
        -n "native, no cgroups" "$4 --config $5/nocg.toml sandbox exec --backend native -- /bin/true" \
        -n "native, cgroup v2 (delegated, CLONE_INTO_CGROUP)" "$4 --config $5/v2.toml sandbox exec --backend native -- /bin/true"
' _ "er-bench-$$" "$RUNS" "$OUT" "$ER" "$WORK"
cat "$OUT"/native-true.md "$OUT"/native-script.md "$OUT"/runsc-true.md "$OUT"/runsc-script.md \
    "$OUT"/cgroup-v1.md "$OUT"/cgroup-v2.md
