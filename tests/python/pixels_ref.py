"""torchvision's PIL-based preprocessing, the reference for `skipblock_pixels`' resizing and cropping.

  pixels_ref.py SRC.png OUT.raw OPS_JSON

SRC.png is an RGB image (lossless, so both sides start from the same pixels). OPS_JSON is a list of
operations, each run on the source image:
  {"op": "resized_crop", "box": [x, y, w, h], "size": [W, H]}  torchvision.transforms.functional.resized_crop
      (what RandomResizedCrop does once it has drawn its box)
  {"op": "resize", "size": [W, H]}                             transforms.Resize((H, W)) (the detectors')
  {"op": "eval", "resize": R, "crop": C}                       Resize(R) then CenterCrop(C) (classifiers' eval)
The results' HWC uint8 bytes are written one after the other to OUT.raw; stdout is a JSON list of their
[W, H].
"""
import json
import sys

import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image


def run(img, op):
    kind = op["op"]
    if kind == "resized_crop":
        x, y, w, h = op["box"]
        W, H = op["size"]
        return F.resized_crop(img, y, x, h, w, [H, W], interpolation=T.InterpolationMode.BILINEAR)
    if kind == "resize":
        W, H = op["size"]
        return T.Resize((H, W), interpolation=T.InterpolationMode.BILINEAR)(img)
    if kind == "eval":
        return T.Compose([T.Resize(op["resize"]), T.CenterCrop(op["crop"])])(img)
    sys.exit(f"unknown op {kind}")


def main():
    src, out, ops = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    img = Image.open(src).convert("RGB")
    sizes = []
    with open(out, "wb") as f:
        for op in ops:
            res = run(img, op)
            assert res.mode == "RGB"
            sizes.append(list(res.size))
            f.write(res.tobytes())
    print(json.dumps(sizes))


if __name__ == "__main__":
    main()
