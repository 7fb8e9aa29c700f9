#!/usr/bin/env python3
"""torchvision reference for the model zoo (tests/zoo_parity.rs).

    zoo_ref.py ARCH --classes N --size S --pth OUT.pth --out OUT.safetensors

Builds torchvision's model for our architecture name ARCH (shufflenetv2-0.5x, mobilenetv2-0.75x,
squeezenet-1.0, densenet-121, resnet-18, ...) with N classes, gives every batch norm random statistics
and affine parameters, saves its state dict with torch.save (OUT.pth, as torchvision's checkpoints are),
runs a seeded 2×3×S×S input through it in eval mode and writes the input `x` and the `logits` to
OUT.safetensors. Prints JSON: the trainable parameter count and every state-dict key with its shape.
"""
import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skipblock_ref import save_safetensors  # noqa: E402

M = torchvision.models
BUILDERS = {
    "shufflenetv2-0.5x": lambda n: M.shufflenet_v2_x0_5(num_classes=n),
    "shufflenetv2-1.0x": lambda n: M.shufflenet_v2_x1_0(num_classes=n),
    "mobilenetv2-0.75x": lambda n: M.mobilenet_v2(num_classes=n, width_mult=0.75),
    "mobilenetv2-1.0x": lambda n: M.mobilenet_v2(num_classes=n),
    "squeezenet-1.0": lambda n: M.squeezenet1_0(num_classes=n),
    "squeezenet-1.1": lambda n: M.squeezenet1_1(num_classes=n),
    "densenet-121": lambda n: M.densenet121(num_classes=n),
    "resnet-18": lambda n: M.resnet18(num_classes=n),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", choices=sorted(BUILDERS))
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pth", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = BUILDERS[a.arch](a.classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) * 0.5 + 0.75)
                m.weight.copy_(torch.rand_like(m.weight) * 0.5 + 0.75)
                m.bias.copy_(torch.randn_like(m.bias) * 0.1)
        if a.arch.startswith("squeezenet"):
            # torchvision's N(0, 0.01) head gives logits too small to compare meaningfully.
            model.classifier[1].weight.normal_(0, 0.1)
    model.eval()
    torch.save(model.state_dict(), a.pth)
    x = torch.randn(2, 3, a.size, a.size)
    with torch.no_grad():
        logits = model(x)
    save_safetensors({"x": x, "logits": logits.contiguous()}, a.out)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    keys = {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    print(json.dumps({"params": params, "keys": keys}))


if __name__ == "__main__":
    main()
