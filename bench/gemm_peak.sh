#!/usr/bin/env bash
# The encoder's matrix products (int8 VNNI accumulation, the whole int8 layer with its
# quantiser and epilogue, the f32 GEMM, the bf16-weight layer) in GOP/s and as a share of
# this CPU's peak, measured in the same run on registers (see runtime/examples/gemm_peak.rs).
# Usage: bench/gemm_peak.sh [D_MODEL] [FRAMES]   (whisper-base: 512 1500; small: 768 1500)
# THREADS=N pins the thread count (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p aiec-runtime --example gemm_peak --quiet
RAYON_NUM_THREADS="${THREADS:-$(nproc)}" target/release/examples/gemm_peak "$@"
