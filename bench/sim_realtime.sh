#!/usr/bin/env bash
# Realtime factor of `--device sim` (every compiled design simulated on the host) on a clip,
# default the 87 s Gettysburg address, with the per-op-kind table of `--timings` (launches,
# simulated time, host time). Target on the 2-core dev machine: >= 1x realtime.
# Usage: bench/sim_realtime.sh [CLIP.wav] [PRECISION]   (precision int8 (default) or bf16)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clip=${1:-$root/../shared/speech/audio/synthetic_espeak/gettysburg.wav}
precision=${2:-int8}
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin aiec
aiec=$root/target/release/aiec
"$aiec" models install whisper-base >&2
duration=$(python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" "$clip")
start=$(date +%s.%N)
"$aiec" run whisper-base "$clip" --device sim --precision "$precision" --timings
end=$(date +%s.%N)
python3 - "$duration" "$start" "$end" <<'PY'
import sys
audio, start, end = (float(v) for v in sys.argv[1:])
wall = end - start
print(f"sim, whisper-base: {audio:.1f} s of audio in {wall:.1f} s wall (model load and JIT "
      f"compiles included): {audio / wall:.3f}x realtime")
PY
