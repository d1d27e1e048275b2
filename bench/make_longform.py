#!/usr/bin/env python3
"""Builds a long-form benchmark file from the dev set's real recordings.

Every file of ../shared/speech/references.tsv except the synthetic (espeak) one, decoded to
16 kHz mono the way faster-whisper decodes it, joined with 0.5 s of silence between files,
in the table's order (from the top again if needed) until the result is --minutes long.
Writes a 16-bit PCM wav. The prompts are short, so the result has the many segment
boundaries and pauses of real long-form audio (a meeting, a call recording).
Usage: make_longform.py SPEECH_DIR OUT.wav [--minutes 10]
"""
import argparse
import csv
import os
import wave

import numpy as np
from faster_whisper.audio import decode_audio

RATE = 16000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("speech_dir")
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()

    with open(os.path.join(args.speech_dir, "references.tsv"), newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if "espeak" not in r["source"]]
    if not rows:
        raise SystemExit(f"no real recordings listed in {args.speech_dir}/references.tsv")
    clips = [decode_audio(os.path.join(args.speech_dir, r["file"]), sampling_rate=RATE) for r in rows]
    gap = np.zeros(RATE // 2, dtype=np.float32)
    parts, samples, target = [], 0, int(args.minutes * 60 * RATE)
    while samples < target:
        for clip in clips:
            parts += [clip, gap]
            samples += len(clip) + len(gap)
            if samples >= target:
                break
    audio = np.concatenate(parts)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with wave.open(args.out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    print(f"{args.out}: {len(audio) / RATE:.1f} s from {len(rows)} recordings")


if __name__ == "__main__":
    main()
