#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60), or until
# RUNS executions when RUNS is set, and prints each target's execution count. The seed
# corpora come from the real files: kernel specs and their expressions, the installed
# models' model.bin (cut to its header and first variables), config.json and tokenizer.json,
# the dev speech set's audio in every container, its decoded samples for the log-mel, and
# the golden instruction streams, the xclbin fixtures.
# Crashes land in fuzz/artifacts/<target>/; each one is a bug to fix with a regression test.
# The targets are safe Rust over safe crates, so they build without AddressSanitizer by
# default (about twice the executions per second, and a shorter build for CI); set
# FUZZ_SANITIZER=address to build with it.
#   bench/fuzz.sh [SECONDS] [TARGET...]      e.g. RUNS=1000000 bench/fuzz.sh 1800
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(spec expr model_bin model_config tokenizer audio log_mel insts xclbin)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || { echo "fuzz: needs the nightly toolchain" >&2; exit 1; }

models="${AIEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aiec}/models"
speech=../shared/speech/audio
seed() { # seed TARGET: fill fuzz/corpus/TARGET from the real files, once.
  local dir="fuzz/corpus/$1"
  [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && return
  mkdir -p "$dir"
  case $1 in
    spec) for f in kernel-specs/*.toml kernel-specs/*/*.toml; do
            cp "$f" "$dir/$(echo "${f#kernel-specs/}" | tr / _)"; done ;;
    expr) grep -hoE '^(expr|epilogue) *= *"[^"]*"' kernel-specs/*.toml kernel-specs/whisper-base/*.toml |
            sed -E 's/^[a-z]+ *= *"(.*)"$/\1/' | sort -u | while IFS= read -r e; do
            printf '%s' "$e" >"$dir/$(printf '%s' "$e" | sha1sum | cut -c1-16)"; done ;;
    model_bin) for m in "$models"/*/model.bin; do
                 head -c 65536 "$m" >"$dir/$(basename "$(dirname "$m")").head"; done ;;
    model_config) for m in "$models"/*/config.json; do
                    cp "$m" "$dir/$(basename "$(dirname "$m")").json"; done ;;
    tokenizer) for m in "$models"/*/tokenizer.json; do
                 cp "$m" "$dir/$(basename "$(dirname "$m")").json"; done ;;
    audio) # one file of each container, the smallest of each, with a hint byte in front
      for ext in wav flac ogg mp3 m4a; do
        f=$(find "$speech" examples/audio -name "*.$ext" -printf '%s %p\n' 2>/dev/null | sort -n | sed -n 1p | cut -d' ' -f2-)
        [ -n "$f" ] && { printf '\0'; cat "$f"; } >"$dir/$ext"
      done ;;
    insts) cp golden/insts/*.bin "$dir"/ ;;
    xclbin) cp tests/data/xclbin/*.xclbin "$dir"/ ;;
    log_mel) # f32 samples as the decoder produced them, 1 s of each clip
      # (head before tail: tail piped into head dies of SIGPIPE, which pipefail turns into exit 141)
      for f in ../shared/speech/mel/*.pcm.npy; do
        { printf '\0'; head -c 64128 "$f" | tail -c +129; } >"$dir/$(basename "$f" .pcm.npy)"
      done ;;
  esac
}

for t in "${targets[@]}"; do
  seed "$t"
  limit=(-max_total_time="$seconds")
  [ -n "${RUNS:-}" ] && limit+=(-runs="$RUNS")
  log=$(mktemp)
  if ! (cd fuzz && cargo +nightly fuzz run --release --sanitizer "${FUZZ_SANITIZER:-none}" "$t" "corpus/$t" -- "${limit[@]}" \
        -max_len=1048576 -rss_limit_mb=4096 -timeout=30) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz $t: FAILED (see fuzz/artifacts/$t)" >&2
    exit 1
  fi
  execs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo "?")
  echo "fuzz $t: $execs executions in at most ${seconds} s, no crash"
  rm -f "$log"
done
