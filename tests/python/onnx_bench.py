#!/usr/bin/env python3
"""onnxruntime's batch-1 latency of an ONNX file, the reference of `skipblock bench export`.

    onnx_bench.py --model F --runs N [--warmup W] [--threads T]

Feeds a random float32 input of the file's `images` shape (batch 1) to a CPU session with T intra-op
threads (0: onnxruntime's default), times N runs after W warm-up runs and prints one JSON line:
{"median_ms": …, "p90_ms": …, "runs": N, "onnxruntime": version}.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    s = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in s.get_inputs()[0].shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(args.warmup):
        s.run(None, {"images": x})
    times = []
    for _ in range(max(args.runs, 1)):
        t = time.perf_counter()
        s.run(None, {"images": x})
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    print(json.dumps({"median_ms": times[len(times) // 2], "p90_ms": p90, "runs": len(times),
                      "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
