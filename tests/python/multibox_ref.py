#!/usr/bin/env python3
"""Independent PyTorch reference of the SSD multibox loss (ssd.pytorch / qfgaohao style).

Smooth-L1 (beta 1) on the positives' encoded offsets plus cross-entropy over the positives and, per
image, the min(ratio * num_pos, P - num_pos) negatives with the largest background loss
-log softmax(conf)[..., 0] (ties: lower prior index first); both summed and divided by the number of
positives in the batch (at least 1). Optional per-image weights scale each image's classification sum.
Written per image with plain Python ranking, unlike the vectorised Rust implementation it checks.

    multibox_ref.py --input IN.safetensors --out OUT.safetensors [--neg-pos-ratio 3]

IN holds loc_pred [B,P,4], conf_pred [B,P,C], loc_t [B,P,4], conf_t [B,P] (int64) and optionally
weights [B]. OUT gets loc_loss, conf_loss, num_pos and the gradients loc_grad, conf_grad of
loc_loss + conf_loss.
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skipblock_ref import load_safetensors, save_safetensors  # noqa: E402


def multibox_loss(loc_pred, conf_pred, loc_t, conf_t, weights=None, neg_pos_ratio=3):
    batch, num_priors, _ = conf_pred.shape
    with torch.no_grad():
        # Ranked in float32, as the network computes it (a double ranking could swap near-ties).
        background = -F.log_softmax(conf_pred.float(), dim=2)[:, :, 0]
    positive = conf_t > 0
    total_pos = int(positive.sum())
    conf_sum = conf_pred.new_zeros(())
    for i in range(batch):
        pos_idx = positive[i].nonzero().flatten().tolist()
        neg_idx = (~positive[i]).nonzero().flatten().tolist()
        num_neg = min(neg_pos_ratio * len(pos_idx), num_priors - len(pos_idx))
        ranked = sorted(neg_idx, key=lambda j: (-background[i, j].item(), j))
        chosen = torch.tensor(sorted(pos_idx + ranked[:num_neg]), dtype=torch.long)
        if len(chosen) == 0:
            continue
        ce = F.cross_entropy(conf_pred[i, chosen], conf_t[i, chosen], reduction="sum")
        if weights is not None:
            ce = ce * weights[i]
        conf_sum = conf_sum + ce
    loc_sum = F.smooth_l1_loss(loc_pred[positive], loc_t[positive], reduction="sum", beta=1.0)
    n = max(total_pos, 1)
    return loc_sum / n, conf_sum / n, total_pos


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--neg-pos-ratio", type=int, default=3)
    args = p.parse_args(argv)
    t = load_safetensors(args.input)
    loc_pred = t["loc_pred"].double().requires_grad_(True)
    conf_pred = t["conf_pred"].double().requires_grad_(True)
    weights = t["weights"].double() if "weights" in t else None
    loc_loss, conf_loss, num_pos = multibox_loss(
        loc_pred, conf_pred, t["loc_t"].double(), t["conf_t"].long(), weights, args.neg_pos_ratio)
    (loc_loss + conf_loss).backward()
    save_safetensors({
        "loc_loss": loc_loss.detach(),
        "conf_loss": conf_loss.detach(),
        "num_pos": torch.tensor(num_pos, dtype=torch.int64),
        "loc_grad": loc_pred.grad.detach(),
        "conf_grad": conf_pred.grad.detach(),
    }, args.out)


if __name__ == "__main__":
    main()
