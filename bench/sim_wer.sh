#!/usr/bin/env bash
# Dev-set WER of whisper-base through `--device sim` (int8, every tensor op a compiled design
# on the host simulator) against the cpu in f32, greedy and beam 5 (the issue's bound is
# +0.5 points), and file by file against cpu int8 (the same numerics run natively): it prints
# every transcript on which the two int8 devices differ, with both edit counts. Slow (tens of
# minutes on 2 cores), hence not in CI, which runs a tiny.en subset.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test sim_device -- --ignored --nocapture --test-threads 1 dev_set_ 2>&1 |
  grep -E "^dev set beam|^tiny.en dev set|^differs|^        sim int8|test result|panicked"
