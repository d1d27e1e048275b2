#!/usr/bin/env bash
# Every spec in kernel-specs/: `aiec build` time (no external tools: spec -> design -> MLIR ->
# verify -> artefacts + dry-run plan), the whole set's build time, and `aiec sim` against the
# op's float64 reference with its errors and times. Targets: one build < 1 s, all < 5 s.
# Usage: bench/specs.sh [--no-sim]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p aiec --quiet
bin=$PWD/target/release/aiec
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
specs=$(find kernel-specs -name '*.toml' | sort)
now() { date +%s.%N; }
all_start=$(now)
printf '%-48s %9s\n' spec build_s
for s in $specs; do
  t0=$(now)
  "$bin" build "$s" -o "$out/$(echo "$s" | tr / _)" --dry-run > /dev/null
  printf '%-48s %9.3f\n' "$s" "$(echo "$(now) - $t0" | bc -l)"
done
printf 'all %d specs built in %.3f s\n' "$(echo "$specs" | wc -l)" "$(echo "$(now) - $all_start" | bc -l)"
[ "${1:-}" = "--no-sim" ] && exit 0
echo
printf '%-48s %8s %8s %12s %12s %14s %s\n' spec wall_s run_s max_abs rel_l2 exact verdict
for s in $specs; do
  t0=$(now)
  res=$("$bin" sim "$s" --seed 1 2>&1) && verdict=PASS || verdict=FAIL
  wall=$(echo "$(now) - $t0" | bc -l)
  field() { grep -E "^$1" <<<"$res" | head -1 | awk -v n="$2" '{print $n}' || true; }
  exact=$(grep -E '^exact' <<<"$res" | awk '{print $2 "/" $4}' || true)
  printf '%-48s %8.2f %8s %12s %12s %14s %s\n' "$s" "$wall" "$(field run 2)" "$(field 'max abs' 4)" "$(field 'rel L2' 4)" "${exact:--}" "$verdict"
done
