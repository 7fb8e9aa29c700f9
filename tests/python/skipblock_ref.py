#!/usr/bin/env python3
"""PyTorch reference implementation of SkipblockNet and the bias loss.

Used by the Rust tests as an independent oracle (CPU only).  Everything follows
the paper (§3: the bias loss; §4: SkipblockNet); module and
attribute names are chosen so that ``state_dict()`` reproduces the authors'
key names and shapes (see shared/reference/skipblocknet-m-official-state-dict.txt).

The file is self-contained: it needs torch only (no numpy, no safetensors
package) and carries its own minimal safetensors reader/writer.

Command line (run with ``--help`` on any subcommand for details):

    keys        --classes N
    check-keys  [--reference PATH]
    stats       [--classes N] [--size S]
    forward     --weights W.safetensors --input X.safetensors --out OUT.safetensors --classes N
    bias-loss   --input IN.safetensors --out OUT.safetensors [--alpha A] [--beta B]
                [--no-clamp] [--mode local|global|release] [--global-min G]
    other-loss  --input IN.safetensors --out OUT.safetensors --kind ce|focal|ls [--gamma G] [--eps E]
    save-pth    --weights W.safetensors --out X.pth --classes N
"""

import argparse
import ctypes
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# Channel rounding
# --------------------------------------------------------------------------------------------


def make_divisible(v, divisor=8, min_value=None):
    """Round ``v`` to a multiple of ``divisor``: max(min_value, int(v + d/2) // d * d),
    plus ``divisor`` if that falls below 0.9 * v (paper §4)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


class h_sigmoid(nn.Module):
    """Hard sigmoid: relu6(x + 3) / 6."""

    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


class h_swish(nn.Module):
    """Hard swish: x * relu6(x + 3) / 6."""

    def __init__(self):
        super().__init__()
        self.sigmoid = h_sigmoid()

    def forward(self, x):
        return x * self.sigmoid(x)


class SELayer(nn.Module):
    """Squeeze-excite: global avg pool -> Linear(c, c/4 rounded) -> ReLU -> Linear(-> c)
    -> hard sigmoid -> channel-wise scale.  Keys: fc.0.{weight,bias}, fc.2.{weight,bias}."""

    def __init__(self, channel):
        super().__init__()
        squeeze = make_divisible(channel / 4)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, squeeze),
            nn.ReLU(),
            nn.Linear(squeeze, channel),
            h_sigmoid(),
        )

    def forward(self, x):
        b, c = x.shape[0], x.shape[1]
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y


def _act(use_hs):
    return h_swish() if use_hs else nn.ReLU()


class InvertedResidual(nn.Module):
    """MobileNetV3 inverted residual.  ``conv`` indices (they are the state-dict indices):
    0 expand 1x1, 1 BN, 2 act, 3 depthwise kxk, 4 BN, 5 act, 6 SE or Identity,
    7 project 1x1, 8 BN.  The expand conv is present even when hidden == inp."""

    def __init__(self, inp, hidden_dim, oup, kernel_size, stride, use_se, use_hs):
        super().__init__()
        assert stride in (1, 2)
        self.identity = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden_dim),
            _act(use_hs),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size, stride, (kernel_size - 1) // 2,
                      groups=hidden_dim, bias=False),
            nn.BatchNorm2d(hidden_dim),
            _act(use_hs),
            SELayer(hidden_dim) if use_se else nn.Identity(),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x):
        if self.identity:
            return x + self.conv(x)
        return self.conv(x)


class SkipBlock(nn.Module):
    """Skip block: adaptive avg pool of the base-block output to the target spatial size,
    then ``core_block`` = 0 conv1x1, 1 BN, 2 ReLU, 3 dw kxk, 4 BN, 5 ReLU, 6 conv1x1, 7 BN."""

    def __init__(self, inp, hidden_dim, oup, kernel_size):
        super().__init__()
        self.core_block = nn.Sequential(
            nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size, 1, (kernel_size - 1) // 2,
                      groups=hidden_dim, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x, target_hw):
        x = F.adaptive_avg_pool2d(x, tuple(int(s) for s in target_hw))
        return self.core_block(x)


# --------------------------------------------------------------------------------------------
# SkipblockNet
# --------------------------------------------------------------------------------------------

# Per stage, per block: (kernel, expansion t, out channels, use_se, use_hs, stride).
SKIPBLOCKNET_M_CFGS = [
    [(3, 4, 24, 0, 0, 2), (3, 3, 24, 0, 0, 1), (5, 3, 40, 1, 0, 2), (5, 3, 40, 1, 0, 1),
     (5, 6, 40, 1, 1, 1)],
    [(3, 6, 80, 0, 1, 2), (3, 2.5, 80, 0, 1, 1), (3, 2.3, 80, 0, 1, 1), (3, 2.3, 80, 0, 1, 1)],
    [(3, 6, 112, 1, 1, 1), (3, 6, 112, 1, 1, 1)],
    [(5, 6, 160, 1, 1, 2), (5, 6, 160, 1, 1, 1), (5, 6, 160, 1, 1, 1)],
]


class SkipblockNet(nn.Module):
    """SkipblockNet (paper §4).

    Submodules, in state-dict order: first_layer, base_block, blocks (4 stages), skip1, skip2,
    conv (last 1x1 conv, its output is the bias-loss feature map), avgpool, classifier.

    ``skip1``/``skip2`` are (hidden, out, kernel) of the two skip blocks; their input is the
    base block's output.  ``last_conv`` defaults to make_divisible(960 * width_mult).
    ``forward`` returns (logits, features)."""

    def __init__(self, cfgs, num_classes=1000, width_mult=1.0, last_channel=1280,
                 skip1=(96, 40, 5), skip2=(40, 80, 3), dropout=0.2, last_conv=None):
        super().__init__()
        assert len(cfgs) == 4, "SkipblockNet has exactly four stages"

        # Stem: conv 3x3 stride 2 + BN + h_swish.
        input_channel = make_divisible(16 * width_mult)
        self.first_layer = nn.Sequential(
            nn.Conv2d(3, input_channel, 3, 2, 1, bias=False),
            nn.BatchNorm2d(input_channel),
            h_swish(),
        )
        # Base block: IR with expansion 1 (hidden == in == out), k3, s1, no SE, h_swish.
        base_channels = input_channel
        self.base_block = InvertedResidual(input_channel, input_channel, base_channels,
                                           3, 1, False, True)
        input_channel = base_channels

        stages = []
        stage_out = []
        for stage_cfg in cfgs:
            layers = []
            for k, t, c, use_se, use_hs, s in stage_cfg:
                out_channel = make_divisible(c * width_mult)
                hidden = make_divisible(input_channel * t)
                layers.append(InvertedResidual(input_channel, hidden, out_channel, k, s,
                                               bool(use_se), bool(use_hs)))
                input_channel = out_channel
            stages.append(nn.Sequential(*layers))
            stage_out.append(input_channel)
        self.blocks = nn.ModuleList(stages)

        # Skip blocks; their outputs must match stage 0 / stage 1 output channels.
        assert skip1[1] == stage_out[0], "skip1 out channels must equal stage 0 output"
        assert skip2[1] == stage_out[1], "skip2 out channels must equal stage 1 output"
        self.skip1 = SkipBlock(base_channels, skip1[0], skip1[1], skip1[2])
        self.skip2 = SkipBlock(base_channels, skip2[0], skip2[1], skip2[2])

        # Last conv 1x1 + BN + h_swish (features for the bias loss).
        if last_conv is None:
            last_conv = make_divisible(960 * width_mult)
        self.conv = nn.Sequential(
            nn.Conv2d(input_channel, last_conv, 1, 1, 0, bias=False),
            nn.BatchNorm2d(last_conv),
            h_swish(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, last_channel),
            h_swish(),
            nn.Dropout(dropout),
            nn.Linear(last_channel, num_classes),
        )
        self._initialize_weights()

    def forward(self, x):
        x = self.first_layer(x)
        base = self.base_block(x)
        x = self.blocks[0](base)
        x = x + self.skip1(base, x.shape[-2:])
        x = self.blocks[1](x)
        x = x + self.skip2(base, x.shape[-2:])
        x = self.blocks[2](x)
        x = self.blocks[3](x)
        features = self.conv(x)
        x = self.avgpool(features)
        x = torch.flatten(x, 1)
        logits = self.classifier(x)
        return logits, features

    def _initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()


def skipblocknet_m(num_classes=1000, **kwargs):
    """SkipblockNet-M, width 1.0: 5,532,352 parameters and 236.6 M MACs at 224x224."""
    return SkipblockNet(SKIPBLOCKNET_M_CFGS, num_classes=num_classes, width_mult=1.0,
                        last_channel=1280, skip1=(96, 40, 5), skip2=(40, 80, 3), **kwargs)


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def _normalise(v, lo, hi):
    """(v - lo) / (hi - lo); all zeros when the range is zero or not finite."""
    rng = hi - lo
    if not bool(torch.isfinite(rng)) or float(rng) <= 0.0:
        return torch.zeros_like(v)
    return (v - lo) / rng


RELEASE_INITIAL_MIN = 100000.0


def release_weights(var, running_min, alpha, beta):
    """The authors' public release, transcribed (its BiasLoss.norm_global and forward):

        min = tensor.clone().min(); max = tensor.clone().max()
        if min < self.global_min: self.global_min = min          # global_min starts at 100000
        normalised = ((tensor - self.global_min) / (max - min))
        weights = ((torch.exp(normalised * self.beta) - 1.) / 1.) + self.alpha

    with ``tensor`` the unbiased per-sample variances and no clamp.  ``running_min`` is the release's
    global_min before this batch (None: its initial 100000).  One addition, as in the Rust code: a zero batch
    range (max == min), where the release divides by zero, gives normalised = 0, i.e. weights = alpha.

    Returns (weights, new running minimum as a Python float)."""
    g = torch.as_tensor(RELEASE_INITIAL_MIN if running_min is None else running_min, dtype=var.dtype)
    batch_min = var.clone().min()
    batch_max = var.clone().max()
    if batch_min < g:
        g = batch_min
    rng = batch_max - batch_min
    if bool(torch.isfinite(rng)) and float(rng) > 0.0:
        normalised = (var - g) / rng
    else:
        normalised = torch.zeros_like(var)
    weights = ((torch.exp(normalised * beta) - 1.) / 1.) + alpha
    return weights, float(g)


def bias_loss(logits, features, targets, alpha=0.3, beta=0.3, clamp=(0.5, 1.5),
              mode="local", global_min=None):
    """Bias loss (paper §3): mean_i z(v_i) * CE(logits_i, y_i), z(v) = exp(alpha*v) - beta.

    v_i is the unbiased variance of sample i's detached features flattened to c*h*w values,
    scaled to [0, 1] over the batch:
      * mode="local":  (v - min_batch) / (max_batch - min_batch)
      * mode="global": (v - g) / (max_batch - g), g = min(global_min, min_batch); pass
        global_min=None on the first batch.
      * mode="release": the authors' release (``release_weights``): (v - g) / (max_batch - min_batch),
        g as in "global" but starting from 100000, and z = exp(beta*v) - 1 + alpha (alpha and
        beta swapped with respect to the paper), never clamped (``clamp`` must be None).
    A zero or non-finite range (batch of one, identical samples) gives every normalised
    variance 0, i.e. z = 1 - beta before clamping (alpha in release mode).  z is clamped to ``clamp`` unless it is None.

    Returns (loss, weights) in local mode and (loss, weights, new_global_min) in global and release
    modes, new_global_min being a Python float.  ``weights`` (the z values) carry no gradient.
    """
    with torch.no_grad():
        feats = features.detach().reshape(features.shape[0], -1)
        var = torch.var(feats, dim=1, unbiased=True)
        batch_min = var.min()
        batch_max = var.max()
        new_global_min = None
        if mode == "release":
            if clamp is not None:
                raise ValueError("the release never clamps: pass clamp=None (--no-clamp)")
            vn = None
            weights, new_global_min = release_weights(var, global_min, alpha, beta)
        elif mode == "local":
            vn = _normalise(var, batch_min, batch_max)
        elif mode == "global":
            if global_min is None:
                g = batch_min
            elif not bool(torch.isfinite(batch_min)):
                g = torch.as_tensor(global_min, dtype=var.dtype)  # keep the running minimum
            else:
                g = torch.minimum(batch_min, torch.as_tensor(global_min, dtype=var.dtype))
            new_global_min = float(g)
            vn = _normalise(var, g, batch_max)
        else:
            raise ValueError("mode must be 'local', 'global' or 'release'")
        if vn is not None:
            weights = torch.exp(alpha * vn) - beta
        if clamp is not None:
            weights = weights.clamp(clamp[0], clamp[1])
        weights = weights.to(logits.dtype)
    ce = F.cross_entropy(logits, targets, reduction="none")
    loss = (weights * ce).mean()
    if mode in ("global", "release"):
        return loss, weights, new_global_min
    return loss, weights


def focal_loss(logits, targets, gamma=2.0):
    """Focal loss (Lin et al.): mean_i (1 - p_t)^gamma * CE_i."""
    logp = F.log_softmax(logits, dim=1)
    logp_t = logp.gather(1, targets.view(-1, 1)).squeeze(1)
    p_t = logp_t.exp()
    return ((1.0 - p_t) ** gamma * (-logp_t)).mean()


def label_smoothing_ce(logits, targets, eps=0.1):
    """Cross-entropy with label smoothing (PyTorch semantics: eps spread over all classes)."""
    return F.cross_entropy(logits, targets, label_smoothing=eps)


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


def count_params(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model, input_size=(1, 3, 224, 224)):
    """Multiply-adds of Conv2d and Linear layers only (forward hooks):
    conv: out_elements * in_channels/groups * kh * kw; linear: in * out per row."""
    total = [0]

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inp, out):
        rows = out.numel() // m.out_features
        total[0] += rows * m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(*input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total[0]


# --------------------------------------------------------------------------------------------
# Minimal safetensors I/O (8-byte LE header length, JSON header, raw LE data)
# --------------------------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def load_safetensors(path):
    """Read a safetensors file into an ordered dict name -> CPU tensor."""
    assert sys.byteorder == "little", "reader assumes a little-endian host"
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES[info["dtype"]]
        shape = [int(s) for s in info["shape"]]
        start, end = info["data_offsets"]
        buf = data[base + start:base + end]
        if len(buf) == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(buf), dtype=dtype).reshape(shape).clone()
        out[name] = t
    return out


def save_safetensors(tensors, path):
    """Write name -> tensor to a safetensors file (names sorted, header padded to 8 bytes)."""
    assert sys.byteorder == "little", "writer assumes a little-endian host"
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        nbytes = t.numel() * t.element_size()
        raw = ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b""
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        chunks.append(raw)
        offset += nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)


# --------------------------------------------------------------------------------------------
# Helpers for the CLI
# --------------------------------------------------------------------------------------------

def _default_reference():
    """shared/reference/... next to the repository root, or one level above it."""
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    rel = os.path.join("shared", "reference", "skipblocknet-m-official-state-dict.txt")
    for cand in (os.path.join(root, rel), os.path.join(os.path.dirname(root), rel)):
        if os.path.exists(cand):
            return cand
    return os.path.join(root, rel)


DEFAULT_REFERENCE = _default_reference()


def state_dict_lines(model):
    """Lines "name (d0, d1) dtype" as in the reference key file."""
    lines = []
    for name, t in model.state_dict().items():
        lines.append("%s %s %s" % (name, str(tuple(t.shape)), str(t.dtype).replace("torch.", "")))
    return lines


def load_weights(model, path):
    """Load safetensors weights; only num_batches_tracked buffers may be missing."""
    sd = load_safetensors(path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    bad_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if bad_missing or unexpected:
        raise SystemExit("weight mismatch: missing %s, unexpected %s" % (bad_missing, unexpected))
    return model


def _cmd_keys(args):
    torch.manual_seed(0)
    for line in state_dict_lines(skipblocknet_m(args.classes)):
        print(line)


def _cmd_check_keys(args):
    torch.manual_seed(0)
    model = skipblocknet_m(1000)
    ours = state_dict_lines(model)
    with open(args.reference) as f:
        ref = [l.strip() for l in f if l.strip()]
    errors = []
    if ours != ref:
        ref_set, our_set = set(ref), set(ours)
        for l in ref:
            if l not in our_set:
                errors.append("missing/different: " + l)
        for l in ours:
            if l not in ref_set:
                errors.append("unexpected: " + l)
        if not errors:
            errors.append("same entries but in a different order")
    n = count_params(model)
    if n != 5532352:
        errors.append("trainable parameters %d != 5532352" % n)
    if errors:
        print("check-keys FAILED:\n  " + "\n  ".join(errors[:50]), file=sys.stderr)
        sys.exit(1)
    print("check-keys OK: %d entries, %d trainable parameters" % (len(ours), n))


def _cmd_stats(args):
    torch.manual_seed(0)
    model = skipblocknet_m(args.classes)
    print("params %d" % count_params(model))
    print("macs %d" % count_macs(model, (1, 3, args.size, args.size)))


def _cmd_forward(args):
    torch.manual_seed(0)
    model = load_weights(skipblocknet_m(args.classes), args.weights).eval()
    x = load_safetensors(args.input)["x"].float()
    with torch.no_grad():
        logits, features = model(x)
    save_safetensors({"logits": logits, "features": features}, args.out)


def _cmd_bias_loss(args):
    t = load_safetensors(args.input)
    logits = t["logits"].clone().requires_grad_(True)
    features = t["features"]
    targets = t["targets"].long()
    clamp = None if args.no_clamp else (0.5, 1.5)
    res = bias_loss(logits, features, targets, alpha=args.alpha, beta=args.beta, clamp=clamp,
                    mode=args.mode, global_min=args.global_min)
    loss, weights = res[0], res[1]
    loss.backward()
    out = {"loss": loss.detach(), "weights": weights.detach(), "grad": logits.grad.detach()}
    if args.mode in ("global", "release"):
        out["global_min"] = torch.tensor(res[2], dtype=features.dtype)
    save_safetensors(out, args.out)


def _cmd_other_loss(args):
    t = load_safetensors(args.input)
    logits = t["logits"].clone().requires_grad_(True)
    targets = t["targets"].long()
    if args.kind == "ce":
        loss = F.cross_entropy(logits, targets)
    elif args.kind == "focal":
        loss = focal_loss(logits, targets, args.gamma)
    else:
        loss = label_smoothing_ce(logits, targets, args.eps)
    loss.backward()
    save_safetensors({"loss": loss.detach(), "grad": logits.grad.detach()}, args.out)


def _cmd_save_pth(args):
    torch.manual_seed(0)
    model = load_weights(skipblocknet_m(args.classes), args.weights)
    torch.save(model.state_dict(), args.out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("keys", help="print state-dict keys and shapes of skipblocknet_m(N)")
    s.add_argument("--classes", type=int, default=1000)
    s.set_defaults(fn=_cmd_keys)

    s = sub.add_parser("check-keys", help="compare with the official key file and param count")
    s.add_argument("--reference", default=DEFAULT_REFERENCE)
    s.set_defaults(fn=_cmd_check_keys)

    s = sub.add_parser("stats", help="print trainable parameters and MACs")
    s.add_argument("--classes", type=int, default=1000)
    s.add_argument("--size", type=int, default=224)
    s.set_defaults(fn=_cmd_stats)

    s = sub.add_parser("forward", help="eval-mode forward; writes logits and features")
    s.add_argument("--weights", required=True)
    s.add_argument("--input", required=True, help="safetensors with tensor 'x' (N,3,H,W)")
    s.add_argument("--out", required=True)
    s.add_argument("--classes", type=int, default=1000)
    s.set_defaults(fn=_cmd_forward)

    s = sub.add_parser("bias-loss", help="bias loss, weights and d loss / d logits")
    s.add_argument("--input", required=True, help="safetensors with logits, features, targets")
    s.add_argument("--out", required=True)
    s.add_argument("--alpha", type=float, default=0.3)
    s.add_argument("--beta", type=float, default=0.3)
    s.add_argument("--no-clamp", action="store_true")
    s.add_argument("--mode", choices=["local", "global", "release"], default="local")
    s.add_argument("--global-min", type=float, default=None,
                   help="global/release mode: running minimum before this batch (omit on the first "
                        "batch: global starts from the batch minimum, release from 100000)")
    s.set_defaults(fn=_cmd_bias_loss)

    s = sub.add_parser("other-loss", help="ce / focal / label-smoothing loss and gradient")
    s.add_argument("--input", required=True, help="safetensors with logits, targets")
    s.add_argument("--out", required=True)
    s.add_argument("--kind", choices=["ce", "focal", "ls"], required=True)
    s.add_argument("--gamma", type=float, default=2.0)
    s.add_argument("--eps", type=float, default=0.1)
    s.set_defaults(fn=_cmd_other_loss)

    s = sub.add_parser("save-pth", help="load safetensors weights, torch.save the state dict")
    s.add_argument("--weights", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--classes", type=int, default=1000)
    s.set_defaults(fn=_cmd_save_pth)

    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
