#!/usr/bin/env bash
# Side-by-side benchmark: aiec (cpu, f32) vs faster-whisper (CTranslate2, float32) on the same
# >= 60 s clip with the same thread count, greedy and beam 5. Installs faster-whisper into a
# private venv (bench/.venv) the first time. Usage: bench/compare_faster_whisper.sh [CLIP] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
clip=${1:-$root/../shared/speech/audio/synthetic_espeak/gettysburg.wav}
threads=${2:-$(nproc)}
venv=$here/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet faster-whisper
fi
cargo build --release --manifest-path "$root/Cargo.toml" --bin aiec
aiec=$root/target/release/aiec
"$aiec" models install whisper-base >&2
model_dir=$("$aiec" models path whisper-base)
"$venv/bin/python" "$here/compare_faster_whisper.py" --aiec "$aiec" --model-dir "$model_dir" \
  --clip "$clip" --threads "$threads" --repeats "${REPEATS:-1}"
