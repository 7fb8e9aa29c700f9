"""Fixtures and the onnxruntime reference of skipblock-edge's tests (edge/tests/).

  export-classifier OUT [--input 32] [--resize 36] [--classes 5] [--names] [--no-meta] [--width 8] [--dynamic]
      a tiny conv classifier (logits [N, K]) exported by torch.onnx with the contract's metadata
  export-detector OUT [--input 64] [--classes 4] [--nms] [--conf 0.3 --iou 0.45 --max-det 100]
      a tiny SSD-like detector: decoded corner boxes [N, P, 4] in [0, 1] (priors in the graph) and
      softmax scores [N, P, C]; --nms appends NonMaxSuppression (scalar constants, as exporters write
      them) over scores[:, :, 1:] transposed, output `selected` [M, 3]
  export-skipblocknet-m OUT [--input 224]   SkipblockNet-M (tests/python/skipblock_ref.py, seeded
      random weights, 1000 classes) with the contract's metadata: the latency benchmark's file
  run MODEL INPUT.f32…   onnxruntime on raw little-endian float32 [3, S, S] inputs, batch 1 each:
      one JSON line per input, {output name: {"shape": […], "data": […]}}
  bench MODEL [--runs 50] [--warmup 5] [--input S]   onnxruntime batch-1 latency (1 thread, as tract),
      {"median_ms":…,"p90_ms":…,"runs":N}

Everything is seeded: the same files every run.
"""
import argparse
import json
import sys
import time

import numpy as np


def meta(task, arch, s, resize, crop, classes, nms, batch="1"):
    return json.dumps({
        "format_version": 1, "task": task, "arch": arch, "input": s, "resize": resize, "crop": crop,
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "classes": classes, "nms": nms,
        "batch": batch, "opset": 17,
    })


def save(model_proto, out, meta_json):
    import onnx
    if meta_json is not None:
        onnx.helper.set_model_props(model_proto, {"skipblock": meta_json})
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, out)


def export(module, s, out, output_names, dynamic=False):
    import io
    import onnx
    import torch
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in ["images"] + output_names} if dynamic else None
    torch.onnx.export(module.eval(), (torch.zeros(1, 3, s, s),), buf, input_names=["images"],
                      output_names=output_names, opset_version=17, dynamo=False, dynamic_axes=axes)
    return onnx.load_from_string(buf.getvalue())


def export_classifier(a):
    import torch
    from torch import nn
    torch.manual_seed(0)
    w = a.width
    net = nn.Sequential(
        nn.Conv2d(3, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, groups=1), nn.BatchNorm2d(2 * w), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, a.classes))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        net[-1].weight.mul_(4.0)
    names = [f"class-{i}" for i in range(a.classes)] if a.names else []
    proto = export(net, a.input, a.out, ["logits"], a.dynamic)
    save(proto, a.out, None if a.no_meta else
         meta("classify", "skipblocknet-xs", a.input, a.resize, a.input, names, None,
              "dynamic" if a.dynamic else "1"))


def priors(fmap, scales):
    out = []
    for y in range(fmap):
        for x in range(fmap):
            for s in scales:
                out.append([(x + 0.5) / fmap, (y + 0.5) / fmap, s, s])
    return np.array(out, dtype=np.float32)


def export_detector(a):
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from torch import nn
    torch.manual_seed(1)
    c = a.classes
    pri = torch.from_numpy(priors(a.input // 8, [0.2, 0.4]))

    class Det(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
            self.loc = nn.Conv2d(16, 2 * 4, 3, padding=1)
            self.conf = nn.Conv2d(16, 2 * c, 3, padding=1)
            with torch.no_grad():
                self.conf.weight.mul_(20.0)

        def forward(self, x):
            f = self.body(x)
            n = x.shape[0]
            loc = self.loc(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
            conf = self.conf(f).permute(0, 2, 3, 1).reshape(n, -1, c)
            cxcy = pri[:, :2] + loc[..., :2] * 0.1 * pri[:, 2:]
            wh = pri[:, 2:] * torch.exp(loc[..., 2:] * 0.2)
            boxes = torch.cat([cxcy - wh / 2, cxcy + wh / 2], -1).clamp(0.0, 1.0)
            return boxes, conf.softmax(-1)

    proto = export(Det(), a.input, a.out, ["boxes", "scores"])
    nms = None
    if a.nms:
        nms = {"score_threshold": a.conf, "iou_threshold": a.iou, "max_det": a.max_det}
        g = proto.graph
        g.initializer.extend([
            numpy_helper.from_array(np.array([1], np.int64), "nms_starts"),
            numpy_helper.from_array(np.array([c], np.int64), "nms_ends"),
            numpy_helper.from_array(np.array([2], np.int64), "nms_axes"),
            numpy_helper.from_array(np.array(a.max_det, np.int64), "nms_max"),
            numpy_helper.from_array(np.array(a.iou, np.float32), "nms_iou"),
            numpy_helper.from_array(np.array(a.conf, np.float32), "nms_score"),
        ])
        g.node.extend([
            helper.make_node("Slice", ["scores", "nms_starts", "nms_ends", "nms_axes"], ["nms_fg"]),
            helper.make_node("Transpose", ["nms_fg"], ["nms_fg_t"], perm=[0, 2, 1]),
            helper.make_node("NonMaxSuppression", ["boxes", "nms_fg_t", "nms_max", "nms_iou", "nms_score"],
                             ["selected"], center_point_box=0),
        ])
        g.output.append(helper.make_tensor_value_info("selected", TensorProto.INT64, ["num_selected", 3]))
    names = [f"obj-{i}" for i in range(1, c)]
    save(proto, a.out, meta("detect", "ssdlite-skipblocknet-xs", a.input, None, None, names, nms))


def export_skipblocknet_m(a):
    import os
    import torch
    from torch import nn
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import skipblock_ref
    torch.manual_seed(0)

    class Logits(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = skipblock_ref.skipblocknet_m(1000)
            # Activations of a useful size: batch-norm statistics measured on one random batch (a fresh
            # network's vanish), and a head that spreads the logits.
            for m in self.net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = None
            with torch.no_grad():
                self.net.train()(torch.randn(4, 3, 224, 224))
                for m in self.net.classifier:
                    if isinstance(m, nn.Linear):
                        m.weight.normal_(0, 0.1)

        def forward(self, x):
            return self.net(x)[0]

    proto = export(Logits(), a.input, a.out, ["logits"])
    resize = round(a.input * 256 / 224)
    save(proto, a.out, meta("classify", "skipblocknet-m", a.input, resize, a.input, [], None))


def session(path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run(a):
    sess = session(a.model)
    s = sess.get_inputs()[0].shape[2]
    names = [o.name for o in sess.get_outputs()]
    for f in a.inputs:
        x = np.fromfile(f, dtype="<f4").reshape(1, 3, s, s)
        outs = sess.run(names, {"images": x})
        print(json.dumps({n: {"shape": list(o.shape), "data": o.reshape(-1).tolist()} for n, o in zip(names, outs)}))


def bench(a):
    sess = session(a.model)
    shape = sess.get_inputs()[0].shape
    s = a.input or shape[2]
    x = (np.arange(3 * s * s, dtype=np.int64) * 7919 % 255).astype(np.float32).reshape(1, 3, s, s) / 64.0 - 2.0
    for _ in range(a.warmup):
        sess.run(None, {"images": x})
    ms = []
    for _ in range(a.runs):
        t = time.perf_counter()
        sess.run(None, {"images": x})
        ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    n = len(ms)
    median = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    p90 = ms[max(1, min(n, int(np.ceil(0.9 * n)))) - 1]
    print(json.dumps({"median_ms": median, "p90_ms": p90, "runs": n}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("export-classifier")
    c.add_argument("out")
    c.add_argument("--input", type=int, default=32)
    c.add_argument("--resize", type=int, default=36)
    c.add_argument("--classes", type=int, default=5)
    c.add_argument("--width", type=int, default=8)
    c.add_argument("--names", action="store_true")
    c.add_argument("--no-meta", action="store_true")
    c.add_argument("--dynamic", action="store_true", help="a symbolic batch dimension")
    d = sub.add_parser("export-detector")
    d.add_argument("out")
    d.add_argument("--input", type=int, default=64)
    d.add_argument("--classes", type=int, default=4)
    d.add_argument("--nms", action="store_true")
    d.add_argument("--conf", type=float, default=0.3)
    d.add_argument("--iou", type=float, default=0.45)
    d.add_argument("--max-det", type=int, default=100)
    m = sub.add_parser("export-skipblocknet-m")
    m.add_argument("out")
    m.add_argument("--input", type=int, default=224)
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("inputs", nargs="+")
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("--runs", type=int, default=50)
    b.add_argument("--warmup", type=int, default=5)
    b.add_argument("--input", type=int, default=None)
    a = p.parse_args()
    {"export-classifier": export_classifier, "export-detector": export_detector,
     "export-skipblocknet-m": export_skipblocknet_m, "run": run, "bench": bench}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
