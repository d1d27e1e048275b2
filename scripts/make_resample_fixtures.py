#!/usr/bin/env python3
"""Makes the resampling fixtures in runtime/tests/data/resample/ (see the README there).

Run in a private venv:  python3 -m venv /tmp/avenv && /tmp/avenv/bin/pip install av==18.1.0 \
numpy faster-whisper==1.2.1 --no-deps;  /tmp/avenv/bin/python scripts/make_resample_fixtures.py

Inputs at 22.05, 44.1 and 48 kHz: 2 s of examples/audio/jfk.wav (16 kHz, "And so, my fellow
Americans") upsampled to the rate by PyAV, plus seeded white noise at -40 dBFS so the whole band
up to the input's Nyquist holds energy (the 16 kHz speech alone would leave the resampler's
stopband untested), stored as 16-bit FLAC. The 44.1 kHz one is stereo (independent noise per
channel) to cover the downmix. References: faster-whisper's own `decode_audio` (PyAV ->
libswresample, s16 mono 16 kHz) of each input, stored as int16 .npy (the exact s16 samples).
"""

import importlib.util
import pathlib

import av
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "runtime/tests/data/resample"


def faster_whisper_audio():
    """faster_whisper/audio.py without the package __init__ (which needs ctranslate2)."""
    spec = importlib.util.find_spec("faster_whisper")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "audio.py"
    module_spec = importlib.util.spec_from_file_location("fw_audio", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def read_s16(path):
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(frames, axis=1)  # s16 packed: [1, n * channels]


def upsample(samples_16k, rate):
    """PyAV/libswresample 16 kHz -> rate, s16 mono."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(samples_16k[None, :], format="s16", layout="mono")
    frame.sample_rate = 16000
    out = [f.to_ndarray() for f in resampler.resample(frame)]
    out += [f.to_ndarray() for f in resampler.resample(None)]
    return np.concatenate(out, axis=1)[0]


def write_flac(path, channels, rate):
    """channels: int16 [ch, n] -> 16-bit FLAC."""
    layout = "mono" if channels.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate, layout=layout)
        stream.format = "s16"
        packed = np.ascontiguousarray(channels.T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(packed, format="s16", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main():
    fw = faster_whisper_audio()
    OUT.mkdir(parents=True, exist_ok=True)
    jfk = read_s16(ROOT / "examples/audio/jfk.wav")[0]
    speech = jfk[8000:40000]  # 0.5 s .. 2.5 s
    rng = np.random.default_rng(20261201)
    for rate, n_channels in [(22050, 1), (44100, 2), (48000, 1)]:
        up = upsample(speech, rate).astype(np.float64)
        noise = rng.standard_normal((n_channels, up.size)) * 0.01 * 32768
        mixed = np.clip(np.rint(up[None, :] + noise), -32768, 32767).astype(np.int16)
        name = f"jfk_noise_{rate}"
        write_flac(OUT / f"{name}.flac", mixed, rate)
        reference = fw.decode_audio(str(OUT / f"{name}.flac"))
        as_s16 = np.rint(reference * 32768).astype(np.int16)
        assert np.array_equal(as_s16.astype(np.float32) / 32768, reference)
        np.save(OUT / f"{name}.fw-s16.npy", as_s16)
        print(f"{name}.flac: {mixed.shape[1]} samples x {n_channels} ch -> {as_s16.size} at 16 kHz")
    # Output lengths libswresample gives (through PyAV, flushed) for short inputs.
    for rate in [8000, 11025, 22050, 44100, 48000]:
        lengths = []
        for n in [1000, 12345]:
            frame = av.AudioFrame.from_ndarray(
                (np.arange(n) % 200 - 100).astype(np.int16)[None, :], format="s16", layout="mono"
            )
            frame.sample_rate = rate
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            got = sum(f.samples for f in resampler.resample(frame))
            got += sum(f.samples for f in resampler.resample(None))
            lengths.append((n, got))
        print(f"{rate} Hz: lengths {lengths}")


if __name__ == "__main__":
    main()
