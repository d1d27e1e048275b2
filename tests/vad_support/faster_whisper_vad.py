"""Reference speech timestamps: faster-whisper's own `get_speech_timestamps` (its vad.py,
with its SileroVADModel running the network under onnxruntime), read from an unpacked
faster-whisper wheel. Importing the faster_whisper package would pull in CTranslate2 and
PyAV, which the VAD does not use, so vad.py is loaded on its own with the one helper it
imports (`faster_whisper.utils.get_assets_path`) answering ASSETS_DIR: a directory whose
silero_vad_v6.onnx is the model to run (the wheel's own assets, or another Silero graph
with the same interface).

usage: faster_whisper_vad.py WHEEL_DIR ASSETS_DIR '{"clips": ["a.f32", ...], "options": {...}}'
Each clip is raw little-endian float32 16 kHz samples. Prints JSON: per clip, the spans
(start/end samples) and the per-chunk speech probabilities.
"""

import importlib.util
import json
import os
import sys
import types

import numpy as np

wheel_dir, assets_dir, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
package_dir = os.path.join(wheel_dir, "faster_whisper")

utils = types.ModuleType("faster_whisper.utils")
utils.get_assets_path = lambda: assets_dir
package = types.ModuleType("faster_whisper")
package.__path__ = [package_dir]
sys.modules["faster_whisper"] = package
sys.modules["faster_whisper.utils"] = utils

spec = importlib.util.spec_from_file_location(
    "faster_whisper.vad", os.path.join(package_dir, "vad.py")
)
vad = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vad)

options = vad.VadOptions(**plan.get("options", {}))
results = []
for clip in plan["clips"]:
    audio = np.fromfile(clip, dtype="<f4")
    spans = vad.get_speech_timestamps(audio, options)
    padded = np.pad(audio, (0, 512 - audio.shape[0] % 512))
    probs = vad.get_vad_model()(padded)
    results.append(
        {
            "spans": [[int(s["start"]), int(s["end"])] for s in spans],
            "probs": [float(p) for p in np.asarray(probs).reshape(-1)],
        }
    )
print(json.dumps(results))
