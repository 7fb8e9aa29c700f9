#!/usr/bin/env python3
"""Checks of `skipblock export`'s files with the real runtimes (onnx, onnxruntime, torch.jit).

    make-pth   --out X.pth --classes N          a SkipblockNet-M state dict (skipblock_ref.py), random
                                                batch-norm statistics and a head with visible logits
    classify   --io IO.safetensors --onnx F [--onnx-dynamic F] [--torchscript F]
    detect     --io IO.safetensors --onnx F [--onnx-dynamic F] [--torchscript F] [--nms F]
    all-archs  --dir D                          every D/*.onnx with D/*.io.safetensors (classifiers):
                                                max-abs difference / max(1, max |logit|)

IO.safetensors holds `input` [N, 3, S, S] (the network input the Rust side fed) and the libtorch
outputs (`logits`, or `boxes` and `scores`). Every command prints one JSON object: onnx.checker's
verdict and the max-abs differences of each runtime's outputs from libtorch's; `detect --nms` also
returns the detections gathered from `selected` as the contract says (docs/export.md).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from skipblock_ref import load_safetensors, skipblocknet_m  # noqa: E402


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def checked(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    return meta["skipblock"]


def diff(a, b):
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def compare(args, names):
    io = {k: v.numpy() for k, v in load_safetensors(args.io).items()}
    x = io["input"]
    out = {"meta": checked(args.onnx)}
    got = session(args.onnx).run(names, {"images": x[:1]})
    out["onnx"] = max(diff(g, io[n][:1]) for g, n in zip(got, names))
    if args.onnx_dynamic:
        checked(args.onnx_dynamic)
        got = session(args.onnx_dynamic).run(names, {"images": x})
        out["onnx_dynamic"] = max(diff(g, io[n]) for g, n in zip(got, names))
        out["dynamic_batch"] = int(got[0].shape[0])
    if args.torchscript:
        m = torch.jit.load(args.torchscript)
        with torch.no_grad():
            got = m(torch.from_numpy(x[:1]))
        got = got if isinstance(got, tuple) else (got,)
        out["torchscript"] = max(diff(g.numpy(), io[n][:1]) for g, n in zip(got, names))
    return out, io


def nms_detections(path, x):
    """Detections per image from an --nms file: gather, drop degenerate boxes, sort by score (ties: lower
    label), keep max_det."""
    meta = checked(path)
    boxes, scores, selected = session(path).run(["boxes", "scores", "selected"], {"images": x})
    per_image = [[] for _ in range(x.shape[0])]
    for b, c, p in selected.tolist():
        x1, y1, x2, y2 = boxes[b, p].tolist()
        if x2 <= x1 or y2 <= y1:  # degenerate after clipping: `postprocess` drops them too
            continue
        label = c + 1
        per_image[b].append({"label": label, "score": float(scores[b, p, label]), "bbox": boxes[b, p].tolist()})
    for dets in per_image:
        dets.sort(key=lambda d: (-d["score"], d["label"]))
        del dets[meta["nms"]["max_det"]:]
    return per_image


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-pth")
    p.add_argument("--out", required=True)
    p.add_argument("--classes", type=int, default=10)
    for name in ("classify", "detect"):
        p = sub.add_parser(name)
        p.add_argument("--io", required=True)
        p.add_argument("--onnx", required=True)
        p.add_argument("--onnx-dynamic")
        p.add_argument("--torchscript")
        p.add_argument("--nms")
    p = sub.add_parser("all-archs")
    p.add_argument("--dir", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)

    if args.cmd == "make-pth":
        torch.manual_seed(0)
        m = skipblocknet_m(num_classes=args.classes)
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.3, 0.3)
                    mod.running_var.uniform_(0.5, 2.0)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
                if isinstance(mod, torch.nn.Linear):
                    mod.weight.uniform_(-0.1, 0.1)
        torch.save(m.state_dict(), args.out)
        print(json.dumps({"out": args.out}))
    elif args.cmd == "classify":
        out, _ = compare(args, ["logits"])
        print(json.dumps(out))
    elif args.cmd == "detect":
        out, io = compare(args, ["boxes", "scores"])
        if args.nms:
            out["nms_meta"] = checked(args.nms)["nms"]
            out["detections"] = nms_detections(args.nms, io["input"])
        print(json.dumps(out))
    elif args.cmd == "all-archs":
        result = {}
        for f in sorted(os.listdir(args.dir)):
            if not f.endswith(".onnx"):
                continue
            name = f[: -len(".onnx")]
            io = {k: v.numpy() for k, v in load_safetensors(os.path.join(args.dir, name + ".io.safetensors")).items()}
            path = os.path.join(args.dir, f)
            meta = checked(path)
            got = session(path).run(["logits"], {"images": io["input"]})[0]
            # relative to the logits' scale where it exceeds 1 (random DenseNets reach hundreds)
            result[meta["arch"]] = diff(got, io["logits"]) / max(1.0, float(np.abs(io["logits"]).max()))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
