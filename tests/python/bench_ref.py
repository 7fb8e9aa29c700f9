"""PyTorch eager reference timings for `skipblock bench` (same architecture, same weights).

  bench_ref.py forward --weights W.safetensors --classes N --threads T --iters K [--batch 1 --size 224]
  bench_ref.py train-step --weights W.safetensors --classes N --threads T --iters K [--batch 32 --size 224]
  bench_ref.py train-model --weights W.safetensors --device cpu|cuda[:N] [--channels-last] [--amp bf16]
      [--batch 256 --size 224 --iters K]: model-only training steps (forward, bias loss, backward,
      torch.optim.SGD with its default implementation) on a fixed random batch, timed as the mean over
      K steps between two device barriers (`skipblock bench train` measures the same way).
  bench_ref.py loader-cls --dir D [--size 224 --iters K]: torchvision's ImageFolder-style training
      pipeline on one core: PIL decode, RandomResizedCrop, RandomHorizontalFlip, PILToTensor (uint8, as
      our workers hand samples over), for every JPEG under D.
  bench_ref.py loader-ssd --dir VOC2007 [--size 300 --iters K]: torchvision's SSD training recipe
      (references/detection presets, transforms.v2) on one core: PIL decode, VOC XML, PILToTensor,
      RandomPhotometricDistort, RandomZoomOut (mean fill), RandomIoUCrop, RandomHorizontalFlip,
      SanitizeBoundingBoxes, Resize to S×S, for every image of ImageSets/Main/trainval.txt.
  The loaders report CPU milliseconds per image (`time.process_time`, one thread) as "ms_per_iter".

--arch names the architecture (default skipblocknet-m; the model zoo's networks are torchvision's, with
the last-conv features the bias loss takes caught by a forward hook).

Prints one JSON object: {"ms_per_iter": median milliseconds, "iters": K}.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from skipblock_ref import bias_loss, load_weights, skipblocknet_m  # noqa: E402


def features_module(arch, model):
    """The module whose output is our `features` (see src/core/src/model/zoo/)."""
    if arch.startswith("shufflenetv2"):
        return model.conv5
    if arch.startswith("resnet"):
        return model.layer4
    if arch.startswith("mobilenetv2"):
        return model.features[-1]
    return model.features  # squeezenet: the last fire; densenet: norm5 (ReLU applied below)


class WithFeatures(torch.nn.Module):
    """A torchvision classifier returning (logits, last-conv features) like ours."""

    def __init__(self, arch, model):
        super().__init__()
        self.model, self.relu = model, arch.startswith("densenet")
        self.captured = None
        features_module(arch, model).register_forward_hook(lambda m, i, o: setattr(self, "captured", o))

    def forward(self, x):
        logits = self.model(x)
        return logits, (F.relu(self.captured) if self.relu else self.captured)


def build(args):
    if args.arch == "skipblocknet-m":
        return skipblocknet_m(args.classes)
    from zoo_ref import BUILDERS

    if args.arch not in BUILDERS:
        sys.exit(f"no PyTorch reference for {args.arch} (use --no-reference)")
    return WithFeatures(args.arch, BUILDERS[args.arch](args.classes))


def load(args):
    model = build(args)
    target = model.model if isinstance(model, WithFeatures) else model
    load_weights(target, args.weights)
    return model


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def bench_forward(args):
    model = load(args).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    times = []
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        for _ in range(args.iters):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000.0)
    return times


def bench_train_step(args):
    model = load(args).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, args.classes, (args.batch,))
    times = []
    for i in range(args.warmup + args.iters):
        t = time.perf_counter()
        opt.zero_grad()
        logits, features = model(x)
        loss, _ = bias_loss(logits, features, y)
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append((time.perf_counter() - t) * 1000.0)
    return times


def bench_train_model(args):
    device = torch.device(args.device)
    model = load_weights(skipblocknet_m(args.classes), args.weights).train().to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        opt.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            logits, features = model(x)
        loss, _ = bias_loss(logits.float(), features.float(), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync()
    return [(time.perf_counter() - t) * 1000.0 / max(args.iters, 1)]


def per_image_cpu_ms(load, items, iters):
    """CPU milliseconds per item of `load` over `iters` passes through `items` (after one warm-up item)."""
    load(items[0])
    t = time.process_time()
    for _ in range(iters):
        for item in items:
            load(item)
    return [(time.process_time() - t) * 1000.0 / max(len(items) * iters, 1)]


def bench_loader_cls(args):
    import glob

    import torchvision.transforms as T
    from PIL import Image

    files = sorted(glob.glob(os.path.join(args.dir, "**", "*.jpg"), recursive=True))
    if not files:
        sys.exit(f"no JPEG under {args.dir}")
    tf = T.Compose([T.RandomResizedCrop(args.size), T.RandomHorizontalFlip(), T.PILToTensor()])

    def load(path):
        with Image.open(path) as img:
            return tf(img.convert("RGB"))

    return per_image_cpu_ms(load, files, args.iters)


def bench_loader_ssd(args):
    import xml.etree.ElementTree as ET

    import torchvision.transforms.v2 as T
    from PIL import Image
    from torchvision import tv_tensors

    with open(os.path.join(args.dir, "ImageSets/Main/trainval.txt")) as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        sys.exit(f"no image listed in {args.dir}/ImageSets/Main/trainval.txt")
    mean = [124, 116, 104]
    tf = T.Compose(
        [
            T.PILToTensor(),
            T.RandomPhotometricDistort(),
            T.RandomZoomOut(fill={tv_tensors.Image: mean, "others": 0}),
            T.RandomIoUCrop(),
            T.RandomHorizontalFlip(),
            T.SanitizeBoundingBoxes(),
            T.Resize((args.size, args.size)),
        ]
    )

    def load(image_id):
        root = ET.parse(os.path.join(args.dir, "Annotations", image_id + ".xml")).getroot()
        boxes, labels = [], []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            boxes.append([float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
            labels.append(obj.find("name").text)
        with Image.open(os.path.join(args.dir, "JPEGImages", image_id + ".jpg")) as img:
            img = img.convert("RGB")
            target = {
                "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(img.height, img.width)),
                "labels": torch.arange(len(labels)),
            }
            return tf(img, target)

    return per_image_cpu_ms(load, ids, args.iters)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["forward", "train-step", "train-model", "loader-cls", "loader-ssd"])
    p.add_argument("--dir")
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--amp", choices=["off", "bf16"], default="off")
    p.add_argument("--weights")
    p.add_argument("--arch", default="skipblocknet-m")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run = {
        "forward": bench_forward,
        "train-step": bench_train_step,
        "train-model": bench_train_model,
        "loader-cls": bench_loader_cls,
        "loader-ssd": bench_loader_ssd,
    }
    if args.what.startswith("loader") and not args.dir:
        sys.exit(f"{args.what} needs --dir")
    if not args.what.startswith("loader") and not args.weights:
        sys.exit(f"{args.what} needs --weights")
    times = run[args.what](args)
    print(json.dumps({"ms_per_iter": median(times), "iters": len(times), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
