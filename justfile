# Developer verbs. `just` is optional: each recipe is a plain command you can run by hand.

# Build the host (the plugins are built and embedded by host/build.rs).
build:
    cargo build -p edge-runner

# The whole test suite, exactly as CI runs it.
test:
    scripts/test

# Formatting and lints, as CI enforces them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Benchmarks (criterion, release) and the whole-process timings.
bench:
    cargo bench -p edge-runner
    bench/verify-process.sh

# Fuzz every target for SECONDS each (libFuzzer via cargo-fuzz; see fuzz/README.md).
fuzz seconds="60":
    scripts/fuzz {{seconds}}

# Set up this machine and run the demo.
demo:
    scripts/demo

# Build only the plugin components (wasm32-wasip2) into target/plugins.
plugins:
    cargo build -p edge-runner -vv 2>&1 | grep -E 'Running .*cargo rustc' || true
    ls -l target/plugins/wasm32-wasip2/plugin/*.wasm

# CI, locally.
ci:
    .ci/run
