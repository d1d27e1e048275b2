#!/usr/bin/env python3
"""aiec vs faster-whisper on the same clip, same model, same thread count, in one run.

Prints each system's transcription time, realtime factor (RTF, lower is faster) and the
speed ratio (faster-whisper time / aiec time: above 1 means aiec is faster), for greedy and
beam 5, plus aiec's peak RSS. Model loading is timed separately and left out of the RTF.
Run through bench/compare_faster_whisper.sh, which sets up the private venv.
"""
import argparse
import re
import resource
import subprocess
import sys
import time


def run_faster_whisper(model_dir, clip, threads, beam, repeats):
    from faster_whisper import WhisperModel

    t0 = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=threads)
    load = time.perf_counter() - t0
    best = None
    text = ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        segments, info = model.transcribe(clip, beam_size=beam)
        text = "".join(s.text for s in segments)  # the generator does the work
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    return load, best, info.duration, " ".join(text.split())


def run_aiec(aiec, model_dir, clip, threads, beam, repeats):
    best = None
    load = None
    text = ""
    duration = None
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run(
            [aiec, "run", "whisper-base", "--model-dir", model_dir, clip, "--beam-size", str(beam),
             "--threads", str(threads), "--timings"],
            capture_output=True, text=True, check=True)
        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        m = re.search(r"timing: model load ([0-9.]+) s", proc.stderr)
        load = float(m.group(1))
        m = re.search(r"timing: .*?: ([0-9.]+) s for ([0-9.]+) s of audio", proc.stderr)
        elapsed, duration = float(m.group(1)), float(m.group(2))
        best = elapsed if best is None else min(best, elapsed)
        text = " ".join(proc.stdout.split())  # txt output is one line per segment
    return load, best, duration, text, max(rss_kib, before)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--aiec", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    print(f"clip: {args.clip}  threads: {args.threads}  model: {args.model_dir}")
    for beam in [int(b) for b in args.beams.split(",")]:
        fl, ft, dur, ftext = run_faster_whisper(args.model_dir, args.clip, args.threads, beam, args.repeats)
        al, at, adur, atext, rss = run_aiec(args.aiec, args.model_dir, args.clip, args.threads, beam, args.repeats)
        print(f"\nbeam {beam}  (audio {dur:.1f} s)")
        print(f"  faster-whisper float32: load {fl:6.2f} s  transcribe {ft:7.2f} s  RTF {ft / dur:.4f}  ({dur / ft:5.1f}x realtime)")
        print(f"  aiec cpu f32:           load {al:6.2f} s  transcribe {at:7.2f} s  RTF {at / adur:.4f}  ({adur / at:5.1f}x realtime)")
        print(f"  ratio (faster-whisper time / aiec time): {ft / at:.2f}x")
        print(f"  aiec peak RSS: {rss / 1024:.0f} MiB")
        print(f"  same text: {ftext == atext}")
        if ftext != atext:
            print(f"    fw:   {ftext[:300]}")
            print(f"    aiec: {atext[:300]}")


if __name__ == "__main__":
    sys.exit(main())
