#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each for a fixed number of inputs (default
# 20000): a crash or a failed contract assertion fails the script.
#
#   scripts/fuzz-smoke.sh                 # every target, 20000 runs each
#   RUNS=1000000 scripts/fuzz-smoke.sh api_json email
#
# Only the stable toolchain is installed here: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# flags, and `--sanitizer none` keeps the coverage instrumentation without ASan (the
# crates forbid `unsafe`; SANITIZER=address to add it where the runtime is available).
# Each run starts from the committed seeds in a scratch corpus, so the tree stays clean.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

RUNS=${RUNS:-20000}
SANITIZER=${SANITIZER:-none}
export RUSTC_BOOTSTRAP=1
# Its own target directory whatever CARGO_TARGET_DIR says: the instrumentation flags would
# otherwise rebuild the main workspace's artefacts. FUZZ_TARGET_DIR moves it.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build --sanitizer "$SANITIZER" -O

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  corpus="$scratch/$t"
  mkdir -p "$corpus"
  if [[ -d "seeds/$t" ]]; then cp "seeds/$t"/* "$corpus"/ 2>/dev/null || true; fi
  printf '=== %s: %s runs\n' "$t" "$RUNS"
  log="$scratch/$t.log"
  status=0
  cargo fuzz run --sanitizer "$SANITIZER" -O "$t" "$corpus" -- \
    -runs="$RUNS" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
  # libFuzzer's closing lines: executions, speed, coverage, memory.
  grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::)' "$log" || true
  if ((status != 0)); then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed (exit $status); the input is saved under fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
done
echo "all ${#targets[@]} fuzz targets ran $RUNS inputs without a failure"
