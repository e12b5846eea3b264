#!/usr/bin/env bash
# Usage: bash tests/bench/stress.sh [RUNS=10] [OUT=/tmp/nida-stress]
# RUNS runs of the whole test suite while a parallel cargo build keeps the
# machine busy (a release build of the workspace in its own target folder,
# cleaned and started again whenever it ends).
cd "$(dirname "$0")/../.."
RUNS=${1:-10}
export OUT=${2:-/tmp/nida-stress}
failed=0
mkdir -p "$OUT"; rm -f "$OUT/summary"
cargo test --workspace --no-run -q >/dev/null 2>&1
setsid bash -c 'while true; do CARGO_TARGET_DIR="$OUT/load-target" cargo build --release --workspace -q >/dev/null 2>&1; rm -rf "$OUT/load-target"; done' &
LOAD=$!
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s)
  cargo test --workspace --no-fail-fast > "$OUT/run-$i.log" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || failed=1
  end=$(date +%s)
  res=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }' "$OUT/run-$i.log")
  e2e=$(grep -A0 "test result" "$OUT/run-$i.log" | grep -o "finished in [0-9.]*s" | sort -t' ' -k3 -n | tail -1)
  echo "run $i: rc=$rc $res wall=$((end-start))s longest binary: $e2e" >> "$OUT/summary"
done
kill -- -$LOAD 2>/dev/null; sleep 1; rm -rf "$OUT/load-target"
cat "$OUT/summary"
exit "$failed"
