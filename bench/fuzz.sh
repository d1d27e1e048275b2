#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60), or until
# RUNS executions when RUNS is set, and prints each target's execution count. The seed
# corpora come from the real files: kernel specs and their expressions, the installed
# models' model.bin (cut to its header and first variables), config.json and tokenizer.json,
# the dev speech set's audio in every container, its decoded samples for the log-mel, and
# the golden instruction streams, multipart uploads of a dev clip as `aiec serve` receives them,
# and the xclbin fixtures.
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
[ ${#targets[@]} -gt 0 ] || targets=(spec expr model_bin model_config tokenizer audio log_mel insts multipart)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || { echo "fuzz: needs the nightly toolchain" >&2; exit 1; }

models="${AIEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aiec}/models"
# The shared speech set sits next to the main checkout (/work/shared beside /work/main), which
# from a worktree is not `../shared`; AIEC_SPEECH overrides it.
speech_root=${AIEC_SPEECH:-$(cd "$(git rev-parse --git-common-dir)/../.." && pwd)/shared/speech}
speech=$speech_root/audio
multipart_seed() { # multipart_seed FILE CONTROL BOUNDARY CLIP CLIP_TYPE NAME=VALUE...
  local out=$1 control=$2 boundary=$3 clip=$4 type=$5 field
  shift 5
  {
    printf "$control"
    printf 'multipart/form-data; boundary=%s\n' "$boundary"
    printf -- '--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\nContent-Type: %s\r\n\r\n' \
      "$boundary" "$(basename "$clip")" "$type"
    cat "$clip"
    for field in "$@"; do
      printf -- '\r\n--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s' "$boundary" "${field%%=*}" "${field#*=}"
    done
    printf -- '\r\n--%s--\r\n' "$boundary"
  } >"$out"
}
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
    multipart) # control byte, Content-Type line, then the body, as fuzz/fuzz_targets/multipart.rs reads them
      local clip flac
      clip=$(find "$speech" -name '*.wav' -printf '%s %p\n' | sort -n | sed -n 1p | cut -d' ' -f2-)
      flac=$(find "$speech" -name '*.flac' -printf '%s %p\n' | sort -n | sed -n 1p | cut -d' ' -f2-)
      # curl -F's boundary style, then the openai client's (httpx: 32 hex digits)
      multipart_seed "$dir/minimal" '\0' ------------------------d74496d66958873e "$clip" audio/wav \
        model=tiny.en
      multipart_seed "$dir/every_field" '\0' 5f1b2c3d4e5f60718293a4b5c6d7e8f9 "$clip" audio/x-wav \
        model=whisper-base language=en "prompt=Ask not what your country can do." \
        temperature=0,0.2,0.4 response_format=verbose_json 'timestamp_granularities[]=word' \
        'timestamp_granularities[]=segment' stream=false vad_filter=false
      multipart_seed "$dir/translate_over_4k" '\3' ------------------------0b5e1c7d2a9f4e36 "$clip" audio/wav \
        model=whisper-base language=German response_format=srt
      multipart_seed "$dir/bytewise_stream" '\4' 9c0ffee5eed5ca1ab1e0000000000001 "$clip" audio/wav \
        model=tiny.en stream=true response_format=text
      if [ -n "$flac" ]; then
        multipart_seed "$dir/flac" '\40' ------------------------7a3f0c9e1d2b4a58 "$flac" audio/flac \
          model=whisper-base response_format=vtt temperature=0.0
      fi ;;
    xclbin) # our own xclbin of the add spec, packaged around the config-only PDI fixture
      local out
      out=$(mktemp -d)
      cargo run --release --quiet --bin aiec -- build kernel-specs/add.toml -o "$out" \
        --pdi tests/data/xclbin/add_npu1_config_only.pdi >/dev/null
      cp "$out/final.xclbin" "$dir/add.xclbin"
      rm -rf "$out" ;;
    log_mel) # f32 samples as the decoder produced them, 1 s of each clip
      # (head before tail: tail piped into head dies of SIGPIPE, which pipefail turns into exit 141)
      for f in "$speech_root"/mel/*.pcm.npy; do
        { printf '\0'; head -c 64128 "$f" | tail -c +129; } >"$dir/$(basename "$f" .pcm.npy)"
      done ;;
  esac
}

# FUZZ_DEV=1: an unoptimised build without debug info (CI's brief run: it builds in well under
# half the time of the optimised one, though each target then links for longer; fewer
# executions per second).
if [ -n "${FUZZ_DEV:-}" ]; then
  build=(--dev)
  export CARGO_PROFILE_DEV_DEBUG=0
else
  build=(--release)
fi

for t in "${targets[@]}"; do
  seed "$t"
  limit=(-max_total_time="$seconds")
  [ -n "${RUNS:-}" ] && limit+=(-runs="$RUNS")
  log=$(mktemp)
  if ! (cd fuzz && cargo +nightly fuzz run "${build[@]}" --sanitizer "${FUZZ_SANITIZER:-none}" \
        "$t" "corpus/$t" -- "${limit[@]}" \
        -max_len=1048576 -rss_limit_mb=4096 -timeout=30) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz $t: FAILED (see fuzz/artifacts/$t)" >&2
    exit 1
  fi
  execs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo "?")
  echo "fuzz $t: $execs executions in at most ${seconds} s, no crash"
  rm -f "$log"
done
