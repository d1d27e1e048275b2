#!/usr/bin/env bash
# Times `aiec sim` on the 512x512x512 int8 matmul spec (JIT compile + simulated run +
# reference check), end to end. Target on the 2-core dev machine: < 2 s.
# Usage: bench/sim_matmul.sh [runs]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
cargo build --release -p aiec --quiet
bin=target/release/aiec
spec=kernel-specs/matmul.toml
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  out=$("$bin" sim "$spec" --seed "$i")
  end=$(date +%s.%N)
  compile=$(grep '^compile' <<<"$out" | awk '{print $2}')
  run=$(grep '^run' <<<"$out" | awk '{print $2}')
  exact=$(grep '^exact' <<<"$out" | awk '{print $2 "/" $4}')
  printf 'run %d: wall %.3f s (JIT compile %s s, simulation %s s), exact %s\n' \
    "$i" "$(echo "$end - $start" | bc -l)" "$compile" "$run" "$exact"
done
