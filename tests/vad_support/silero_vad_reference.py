"""Reference speech timestamps from the PyPI package `silero-vad` itself (the version whose
ONNX graph `aiec models install silero-vad` installs), run in the test's private venv.

For each clip and each parameter set it reports
- `spans`: `silero_vad.get_speech_timestamps` with the package's streaming ONNX model
  (`load_silero_vad(onnx=True)`: one 512-sample window per call, the package's own
  context and state handling);
- `sequence_spans`: `silero_vad.get_speech_timestamps_sequence` with
  `load_silero_vad(sequence=True)`, the very graph aiec runs;
and, once per clip, `probs`: that graph's per-window speech probabilities.

usage: silero_vad_reference.py '{"clips": ["a.f32", ...], "option_sets": [{...}, ...]}'
Each clip is raw little-endian float32 16 kHz samples (decoded by aiec, so both sides see the
same samples). Prints JSON: {"version", "clips": [{"probs", "sets": [{"spans",
"sequence_spans"}]}]}.
"""

import json
import sys

import numpy as np
import torch
import silero_vad

plan = json.loads(sys.argv[1])
streaming = silero_vad.load_silero_vad(onnx=True)
sequence = silero_vad.load_silero_vad(sequence=True)


def pairs(spans):
    return [[int(s["start"]), int(s["end"])] for s in spans]


clips = []
for clip in plan["clips"]:
    audio = np.fromfile(clip, dtype="<f4")
    sets = []
    for options in plan["option_sets"]:
        spans = silero_vad.get_speech_timestamps(
            torch.from_numpy(audio), streaming, sampling_rate=16000, **options
        )
        sequence_spans = silero_vad.get_speech_timestamps_sequence(
            audio, sequence, sampling_rate=16000, **options
        )
        sets.append({"spans": pairs(spans), "sequence_spans": pairs(sequence_spans)})
    probs = sequence.audio_forward(audio, sampling_rate=16000)
    clips.append({"probs": [float(p) for p in probs], "sets": sets})
print(json.dumps({"version": silero_vad.__version__, "clips": clips}))
