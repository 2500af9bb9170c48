#!/usr/bin/env python3
"""Model file -> accelerator parameter image (docs/register-map.md §6) for the RTL test benches.

Writes, for MODEL.safetensors:
  OUT.bin   the image bytes (exactly what `aiotctl upload-weights` writes at 0x010000)
  OUT.hex   one byte per line, for $readmemh
  OUT.meta  one line: `length crc32 W F d H N P` (decimal), read by the test benches
The test benches read the shared vector file (NAME.vectors.txt) directly; nothing to convert.

usage: rtl_image.py MODEL.safetensors OUT_PREFIX
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aiot.modelfile import load_model  # noqa: E402
from aiot.paramimage import crc32, serialize  # noqa: E402


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model = load_model(argv[1])
    image = serialize(model)
    out = argv[2]
    with open(out + ".bin", "wb") as f:
        f.write(image)
    with open(out + ".hex", "w") as f:
        f.write("\n".join(f"{b:02x}" for b in image) + "\n")
    s = model.shape
    with open(out + ".meta", "w") as f:
        f.write(f"{len(image)} {crc32(image)} {s.window} {s.features} {s.d_model} {s.heads} {s.layers} {s.horizon}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
