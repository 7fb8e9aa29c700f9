"""Reads a run's TensorBoard folder with TensorBoard's own reader and prints what it holds as JSON.

    python tb_read.py runs/<name>/tb

Output: {"scalars": {tag: [[step, value], ...]},
         "images": {tag: [{"step": s, "width": w, "height": h, "png_size": [w, h] or null}, ...]}}
`width`/`height` are the summary's fields, `png_size` the size in the PNG's own header (null when the
bytes are not a PNG). Every event is kept (size guidance 0) and TensorBoard's own purge of what an
interrupted run logged after its restart point applies, as in the TensorBoard UI.
"""

import json
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator as ea

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    """(width, height) from a PNG's IHDR chunk, or None."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return list(struct.unpack(">II", data[16:24]))


def main(folder):
    acc = ea.EventAccumulator(folder, size_guidance={kind: 0 for kind in ea.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags.get(ea.SCALARS, [])},
        "images": {
            t: [
                {"step": e.step, "width": e.width, "height": e.height, "png_size": png_size(e.encoded_image_string)}
                for e in acc.Images(t)
            ]
            for t in tags.get(ea.IMAGES, [])
        },
    }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tb_read.py RUN/tb")
    main(sys.argv[1])
