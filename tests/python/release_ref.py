#!/usr/bin/env python3
"""PyTorch reference of the three CIFAR-100 networks of the authors' bias-loss release
(ResNet-18, DenseNet-121, ShuffleNetV2 0.5x), written for the Rust parity tests.

The module and attribute names reproduce the state-dict keys of the release's CIFAR models (the
layout of the weiaicunzai/pytorch-cifar100 models their scripts build on), so a state dict saved
here has the keys of a released checkpoint. Each forward returns (logits, features), the features
being the map the bias loss reads (see src/core/src/model/release/mod.rs).

Command line:

    save --model resnet18|densenet121|shufflenetv2 --out DIR [--classes N] [--seed S] [--batch B]

writes DIR/<model>.pth as the release saves checkpoints ({'net': state_dict, 'acc', 'epoch'}), with
random weights and random batch-norm statistics, DIR/<model>-io.pth ({'input', 'logits',
'features'}: a fixed b x 3 x 32 x 32 input and the eval-mode outputs) and prints a JSON line with the
parameter count and the feature shape.
"""

import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- ResNet-18

class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.residual_function = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.residual_function(x) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes=100):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        cin = 64
        for i, (cout, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            setattr(self, "conv%d_x" % (i + 2), nn.Sequential(Basic(cin, cout, stride), Basic(cout, cout, 1)))
            cin = cout
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        for i in range(2, 6):
            x = getattr(self, "conv%d_x" % i)(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)), x


# ---------------------------------------------------------------- DenseNet-121

class Bottle(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bottle_neck = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x):
        return torch.cat([x, self.bottle_neck(x)], 1)


class Trans(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.down_sample = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2, 2))

    def forward(self, x):
        return self.down_sample(x)


class DenseNet121(nn.Module):
    def __init__(self, num_classes=100, growth=32, blocks=(6, 12, 24, 16)):
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.features = nn.Sequential()
        for i, n in enumerate(blocks):
            last = i == len(blocks) - 1
            block = nn.Sequential()
            for j in range(n):
                block.add_module("bottle_neck_layer_%d" % j, Bottle(c, growth))
                c += growth
            self.features.add_module("dense_block%d" % i if last else "dense_block_layer_%d" % i, block)
            if not last:
                self.features.add_module("transition_layer_%d" % i, Trans(c, c // 2))
                c //= 2
        self.features.add_module("bn", nn.BatchNorm2d(c))
        self.features.add_module("relu", nn.ReLU())
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x):
        f = self.features(self.conv1(x))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1)), f


# ---------------------------------------------------------------- ShuffleNetV2 0.5x

def shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class Unit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.split = stride == 1 and cin == cout
        c = cin // 2 if self.split else cin
        out = c if self.split else cout // 2
        self.residual = nn.Sequential(
            nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c), nn.BatchNorm2d(c),
            nn.Conv2d(c, out, 1), nn.BatchNorm2d(out), nn.ReLU(),
        )
        if self.split:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, out, 1), nn.BatchNorm2d(out), nn.ReLU(),
            )

    def forward(self, x):
        if self.split:
            a, b = torch.chunk(x, 2, dim=1)
        else:
            a, b = x, x
        return shuffle(torch.cat([self.shortcut(a), self.residual(b)], 1), 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes=100, channels=(48, 96, 192, 1024), repeats=(3, 7, 3)):
        super().__init__()
        self.pre = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.BatchNorm2d(24))
        cin = 24
        for s, (cout, r) in enumerate(zip(channels[:3], repeats)):
            setattr(self, "stage%d" % (s + 2), nn.Sequential(Unit(cin, cout, 2), *[Unit(cout, cout, 1) for _ in range(r)]))
            cin = cout
        self.conv5 = nn.Sequential(nn.Conv2d(cin, channels[3], 1), nn.BatchNorm2d(channels[3]), nn.ReLU())
        self.fc = nn.Linear(channels[3], num_classes)

    def forward(self, x):
        x = self.stage4(self.stage3(self.stage2(self.pre(x))))
        f = self.conv5(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1)), f


MODELS = {"resnet18": ResNet18, "densenet121": DenseNet121, "shufflenetv2": ShuffleNetV2}


def randomise_bn(model, gen):
    """Batch norms away from the identity: random affine parameters and running statistics."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)


def cmd_save(args):
    torch.manual_seed(args.seed)
    model = MODELS[args.model](num_classes=args.classes)
    gen = torch.Generator().manual_seed(args.seed + 1)
    randomise_bn(model, gen)
    model.eval()
    x = torch.randn(args.batch, 3, 32, 32, generator=gen)
    with torch.no_grad():
        logits, features = model(x)
    os.makedirs(args.out, exist_ok=True)
    torch.save({"net": model.state_dict(), "acc": 0.0, "epoch": 0}, os.path.join(args.out, args.model + ".pth"))
    io = {"input": x, "logits": logits, "features": features}
    torch.save(io, os.path.join(args.out, args.model + "-io.pth"))
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"model": args.model, "params": params, "features": list(features.shape)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save", help="random weights, a fixed input and its outputs")
    s.add_argument("--model", choices=sorted(MODELS), required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--classes", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"save": cmd_save}[args.cmd](args)


if __name__ == "__main__":
    main()
