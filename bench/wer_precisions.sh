#!/usr/bin/env bash
# Dev-set WER of every cpu precision (f32, int8, bf16) at greedy and beam 5, each against f32
# (and f32 against faster-whisper's transcripts at both),
# including the runs CI leaves out for time. Lines go to target/aiec-reports/wer.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -p aiec-runtime --test wer -- --include-ignored --test-threads 1 dev_set_
tail -n 12 target/aiec-reports/wer.txt
