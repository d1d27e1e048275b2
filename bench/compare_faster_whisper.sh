#!/usr/bin/env bash
# Side-by-side benchmark, aiec (cpu: f32, bf16, int8) vs faster-whisper (float32, int8 at its
# default ISA and at CT2_FORCE_CPU_ISA=AVX512, and its BatchedInferencePipeline), greedy and
# beam 5, same thread count, paired alternating runs, on a >= 60 s clip (Gettysburg, 87 s) and
# on a >= 10 min long-form file made from the dev set's real recordings (bench/make_longform.py).
# Prints every realtime factor, every ratio and each peak RSS. Installs faster-whisper into a
# private venv (bench/.venv) the first time.
# Usage: bench/compare_faster_whisper.sh [CLIP...]   env: THREADS (default: all cores),
# REPEATS (default 1), BEAMS (default 1,5), MINUTES (long-form length, default 10).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
speech=$root/../shared/speech
threads=${THREADS:-$(nproc)}
venv=$here/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet faster-whisper
fi
cargo build --release --manifest-path "$root/Cargo.toml" --bin aiec
aiec=$root/target/release/aiec
"$aiec" models install whisper-base >&2
model_dir=$("$aiec" models path whisper-base)
clips=("$@")
if [ ${#clips[@]} -eq 0 ]; then
  longform=$root/target/bench/longform-real-speech.wav
  if [ ! -f "$longform" ]; then
    "$venv/bin/python" "$here/make_longform.py" "$speech" "$longform" --minutes "${MINUTES:-10}" >&2
  fi
  clips=("$speech/audio/synthetic_espeak/gettysburg.wav" "$longform")
fi
clip_args=()
for c in "${clips[@]}"; do clip_args+=(--clip "$c"); done
mkdir -p "$root/target/bench"
"$venv/bin/python" "$here/compare_faster_whisper.py" --aiec "$aiec" --model-dir "$model_dir" \
  "${clip_args[@]}" --threads "$threads" --repeats "${REPEATS:-1}" --beams "${BEAMS:-1,5}" |
  tee "$root/target/bench/compare_faster_whisper-$(date +%F-%H%M).txt"
