"""The Python parameter image equals the Swift one: both are pinned to the same sizes and CRC-32s
(Tests/AIOTBoardTests/EngineTests.swift `pythonImages`)."""
import pathlib
import struct
import zlib

import pytest

from aiot.modelfile import load_model
from aiot.paramimage import serialize

ROOT = pathlib.Path(__file__).resolve().parents[2]
PINNED = {
    "w12f1d32h1n2p3-w6a8i16o16": (30380, 0x454C519B),
    "w12f2d8h2n2p3-w4a8": (4372, 0x390C13C5),
    "w24f1d16h1n1p1-w4a4": (5192, 0xD5010184),
    "w24f1d16h1n1p1-w4a8": (5672, 0x8F554A7E),
    "w24f1d16h1n1p1-w6a6": (5288, 0xE0896620),
    "w24f1d16h1n1p1-w6a8": (5672, 0x6242E8A8),
    "w24f1d16h1n1p1-w8a8": (5672, 0x83E8CEBB),
    "w24f1d16h1n1p1-w8a8o16": (5672, 0x83E0F51A),
    "w24f2d8h1n1p3-w6a6": (2216, 0xC6B7106C),
    "w24f7d32h2n1p1-w8a8": (16680, 0x127A9338),
    "w24f1d16h1n1p1-w8a8i16p16o16": (5672, 0x1BAB7ABD),
    "w12f2d16h2n1p3-w8a8i16p16o16": (5344, 0xF88D8755),
}
# contract v2 (models/random-v2): image format 2, the skip path appended
PINNED_V2 = {
    "w12f2d8h2n2p3-w6a8o16-skip": (4500, 0xFA9F2FA3),
    "w24f1d16h1n1p1-w4a8-skip": (5744, 0xEBA35B10),
    "w24f1d16h1n1p1-w8a8-skip": (5744, 0xF0DB29C2),
    "w24f1d16h1n1p1-w8a8i16p16o16-skip": (5744, 0x8CE710ED),
    "w24f2d16h1n1p48-w8a8i16o16-skip": (9168, 0xB427ACB4),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_image_matches_swift(name):
    image = serialize(load_model(ROOT / "models" / "random" / f"{name}.safetensors"))
    assert (len(image), zlib.crc32(image)) == PINNED[name]
    magic, version, header, total = struct.unpack_from("<8sHHI", image, 0)
    assert (magic, version, header, total) == (b"AIOTPRM1", 1, 64, len(image))


@pytest.mark.parametrize("name", sorted(PINNED_V2))
def test_v2_image_matches_swift(name):
    image = serialize(load_model(ROOT / "models" / "random-v2" / f"{name}.safetensors"))
    assert (len(image), zlib.crc32(image)) == PINNED_V2[name]
    magic, version, header, total = struct.unpack_from("<8sHHI", image, 0)
    assert (magic, version, header, total) == (b"AIOTPRM1", 2, 64, len(image))
    # the counts of the header: activations +2 (head, skip), weights +1, requants +2, tensors +2
    w, f, d, h, n, ffn, p = struct.unpack_from("<7H", image, 16)
    acts, wts, rqs, tens = struct.unpack_from("<IxxxxIxxxxIxxxxI", image, 36)
    assert (acts, wts, rqs, tens) == (6 + 13 * n + 2, 2 + 8 * n + 1, 4 + 12 * n + 2, 5 + 17 * n + 2)
