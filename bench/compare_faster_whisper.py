#!/usr/bin/env python3
"""aiec vs faster-whisper, side by side in one run: same clips, same model, same thread count.

Systems (each run is its own process, so each has its own peak RSS):
  faster-whisper  float32, int8 (default ISA), int8 with CT2_FORCE_CPU_ISA=AVX512, and
                  BatchedInferencePipeline (int8, AVX512: its best configuration here);
  aiec cpu        --precision f32, bf16 and int8.
Decoding: greedy (beam 1) and beam 5, both systems at their defaults otherwise.

For every clip and beam the runs alternate between the two systems (fw, aiec, fw, aiec, ...)
and repeat REPEATS times; the fastest run of each configuration counts. Model loading is
timed separately and left out of the realtime factor (RTF = transcription time / audio
length, lower is faster). Every RTF, every ratio (faster-whisper time / aiec time: above 1
means aiec is faster) and each peak RSS is printed.

Run through bench/compare_faster_whisper.sh, which sets up the private venv and builds the
long-form file.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

FW_CONFIGS = [
    # name, compute_type, forced ISA (None: CTranslate2's own choice), batched pipeline
    ("fw float32", "float32", None, False),
    ("fw int8", "int8", None, False),
    ("fw int8 AVX512", "int8", "AVX512", False),
    ("fw batched int8 AVX512", "int8", "AVX512", True),
]
AIEC_CONFIGS = [("aiec f32", "f32"), ("aiec bf16", "bf16"), ("aiec int8", "int8")]


def run_measured(cmd, env=None):
    """Runs cmd to completion; returns (stdout, stderr, peak RSS in MiB) of that one process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{stderr[-2000:]}")
    # ru_maxrss is in KiB on Linux.
    return stdout, stderr, usage.ru_maxrss / 1024


def fw_worker(args):
    """One faster-whisper run in this process; prints a JSON line. CT2_FORCE_CPU_ISA must be
    in the environment before ctranslate2 is imported, which is why this is a subprocess."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    t0 = time.perf_counter()
    model = WhisperModel(args.model_dir, device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    if args.batched:
        pipeline = BatchedInferencePipeline(model=model)
        segments, info = pipeline.transcribe(args.clip, beam_size=args.beam, batch_size=8)
    else:
        segments, info = model.transcribe(args.clip, beam_size=args.beam)
    text = "".join(s.text for s in segments)  # the generator does the work
    elapsed = time.perf_counter() - t0
    print(json.dumps({"load": load, "elapsed": elapsed, "duration": info.duration,
                      "text": " ".join(text.split())}))


def run_fw(args, config, clip, beam):
    _, compute_type, isa, batched = config
    env = dict(os.environ)
    env.pop("CT2_FORCE_CPU_ISA", None)
    if isa:
        env["CT2_FORCE_CPU_ISA"] = isa
    cmd = [sys.executable, os.path.abspath(__file__), "--fw-worker", "--model-dir", args.model_dir,
           "--clip", clip, "--threads", str(args.threads), "--beam", str(beam),
           "--compute-type", compute_type]
    if batched:
        cmd.append("--batched")
    stdout, _, rss = run_measured(cmd, env)
    r = json.loads(stdout.strip().splitlines()[-1])
    return {"load": r["load"], "elapsed": r["elapsed"], "duration": r["duration"],
            "text": r["text"], "rss": rss}


def run_aiec(args, precision, clip, beam):
    cmd = [args.aiec, "run", "whisper-base", "--model-dir", args.model_dir, clip,
           "--beam-size", str(beam), "--threads", str(args.threads), "--precision", precision,
           "--timings"]
    stdout, stderr, rss = run_measured(cmd)
    load = float(re.search(r"timing: model load ([0-9.]+) s", stderr).group(1))
    m = re.search(r"timing: .*?: ([0-9.]+) s for ([0-9.]+) s of audio", stderr)
    return {"load": load, "elapsed": float(m.group(1)), "duration": float(m.group(2)),
            "text": " ".join(stdout.split()), "rss": rss}  # txt output: one line per segment


def alternating(fw, aiec):
    """fw[0], aiec[0], fw[1], aiec[1], ...: each faster-whisper run is next to an aiec run."""
    order = []
    for i in range(max(len(fw), len(aiec))):
        if i < len(fw):
            order.append(("fw", fw[i]))
        if i < len(aiec):
            order.append(("aiec", aiec[i]))
    return order


def bench_clip(args, clip, beam):
    best = {}
    for rep in range(args.repeats):
        for system, config in alternating(FW_CONFIGS, AIEC_CONFIGS):
            name = config[0]
            if system == "fw":
                r = run_fw(args, config, clip, beam)
            else:
                r = run_aiec(args, config[1], clip, beam)
            print(f"    run {rep + 1}: {name:24s} {r['elapsed']:7.2f} s  RSS {r['rss']:5.0f} MiB",
                  file=sys.stderr, flush=True)
            old = best.get(name)
            if old is None or r["elapsed"] < old["elapsed"]:
                r["rss"] = max(r["rss"], old["rss"]) if old else r["rss"]
                best[name] = r
            else:
                old["rss"] = max(old["rss"], r["rss"])
    return best


def report(clip, beam, best):
    duration = best["aiec f32"]["duration"]
    print(f"\n{os.path.basename(clip)}  ({duration:.1f} s of audio)  beam {beam}")
    print(f"  {'system':24s} {'load s':>7s} {'time s':>8s} {'RTF':>7s} {'x realtime':>10s} {'peak RSS':>9s}")
    for name, r in best.items():
        print(f"  {name:24s} {r['load']:7.2f} {r['elapsed']:8.2f} {r['elapsed'] / r['duration']:7.4f}"
              f" {r['duration'] / r['elapsed']:10.1f} {r['rss']:6.0f} MiB")
    fw_names = [c[0] for c in FW_CONFIGS]
    fw_int8 = [n for n in fw_names if "int8" in n]
    fw_best_int8 = min(fw_int8, key=lambda n: best[n]["elapsed"])
    print("  ratios, faster-whisper time / aiec time (above 1: aiec is faster):")
    print(f"  {'':12s}" + "".join(f"{n:>24s}" for n in fw_names))
    for name, _ in AIEC_CONFIGS:
        a = best[name]["elapsed"]
        print(f"  {name:12s}" + "".join(f"{best[n]['elapsed'] / a:23.2f}x" for n in fw_names))
    print(f"  headline: aiec f32 vs fw float32 {best['fw float32']['elapsed'] / best['aiec f32']['elapsed']:.2f}x;"
          f" aiec int8 vs fw int8 at its best here ({fw_best_int8})"
          f" {best[fw_best_int8]['elapsed'] / best['aiec int8']['elapsed']:.2f}x")
    fw_words = words(best["fw float32"]["text"])
    edits = word_edits(fw_words, words(best["aiec f32"]["text"]))
    print(f"  aiec f32 vs fw float32 text: {edits} word edits over fw's {len(fw_words)} words"
          f" ({100.0 * edits / max(len(fw_words), 1):.2f}%)")


def words(text):
    """Lowercase words without punctuation, so only the words themselves are compared."""
    return re.sub(r"[^\w\s']", " ", text.lower().replace("-", " ")).split()


def word_edits(a, b):
    """Levenshtein distance between two word lists."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aiec")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--clip", action="append", required=True, help="repeat for several clips")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--repeats", type=int, default=1)
    # The faster-whisper worker (one run, in its own process).
    ap.add_argument("--fw-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--beam", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--compute-type", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--batched", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fw_worker:
        args.clip = args.clip[0]
        return fw_worker(args)
    if not args.aiec:
        ap.error("--aiec is required")

    print(f"threads: {args.threads}  repeats: {args.repeats}  model: {args.model_dir}")
    print(f"cpu: {cpu_name()}")
    for clip in args.clip:
        for beam in [int(b) for b in args.beams.split(",")]:
            print(f"  {os.path.basename(clip)} beam {beam} ...", file=sys.stderr, flush=True)
            report(clip, beam, bench_clip(args, clip, beam))
            sys.stdout.flush()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
