#!/usr/bin/env bash
# What `--vad-filter` saves on audio with long silences: four dev-set clips (jfk and three
# LibriVox passages, 27.4 s of speech) glued with 20 s of digital silence before, between and
# after them (127.4 s in all), transcribed by `aiec run` with and without the filter. Prints
# both wall times (model load included, best of RUNS), their ratio, the VAD's own load and
# run time, and both transcripts. (tests/vad.rs prints the VAD's time over the dev set.)
# Usage: bench/vad.sh [MODEL] [RUNS]   (default tiny.en, 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-tiny.en}
runs=${2:-3}
speech=${AIEC_SPEECH_DIR:-$root/../shared/speech}/audio
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin aiec
aiec=$target/release/aiec
"$aiec" models install "$model" >&2
"$aiec" models install silero-vad >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/glued.wav" \
  "$speech/jfk/jfk.wav" \
  "$speech/pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav" \
  "$speech/pocketsphinx/sense_and_sensibility_01_austen_64kb-0920.wav" \
  "$speech/pocketsphinx/sense_and_sensibility_01_austen_64kb-0930.wav" <<'PY'
import sys, wave
out, clips = sys.argv[1], sys.argv[2:]
silence = b"\0\0" * 16000 * 20
with wave.open(out, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(silence)
    for c in clips:
        r = wave.open(c)
        assert (r.getframerate(), r.getnchannels(), r.getsampwidth()) == (16000, 1, 2), c
        w.writeframes(r.readframes(r.getnframes()))
        w.writeframes(silence)
PY

best() {  # best wall seconds of $runs runs of aiec run "$@"; the last transcript in $work/text
  local best=""
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s.%N)
    "$aiec" run "$model" "$work/glued.wav" "$@" > "$work/text"
    end=$(date +%s.%N)
    best=$(python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); b=sys.argv[3]; print(t if not b else min(t, float(b)))" "$start" "$end" "$best")
  done
  echo "$best"
}
plain=$(best)
plain_text=$(cat "$work/text")
filtered=$(best --vad-filter)
filtered_text=$(cat "$work/text")
# The VAD's own share: its model load, and the span search over the whole clip.
AIEC_LOG=aiec_runtime::pipeline=debug "$aiec" run "$model" "$work/glued.wav" --vad-filter --timings 2>&1 >/dev/null \
  | grep -E "VAD" || true
python3 - "$plain" "$filtered" <<PY
import sys
plain, filtered = (float(v) for v in sys.argv[1:])
print(f"$model, 127.4 s of audio (27.4 s speech): without VAD {plain:.2f} s, --vad-filter "
      f"{filtered:.2f} s (best of $runs): {plain / filtered:.2f}x faster")
PY
echo "without VAD:  $plain_text"
echo "--vad-filter: $filtered_text"
