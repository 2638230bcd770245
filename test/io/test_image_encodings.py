"""Camera buffers -> images: every supported encoding against an independent OpenCV/numpy
reference, padded rows, big-endian data, and a clear refusal for each malformed input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robot_instseg.engine.errors import InputError
from robot_instseg.io.image_encodings import decode_compressed, decode_raw, encode_raw
from robot_instseg.node.frame_mailbox import FrameMailbox

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def _padded(rows: np.ndarray, pad: int) -> tuple[int, bytes]:
    """Rows of bytes with ``pad`` junk bytes after each: (step, data)."""
    h = rows.shape[0]
    flat = rows.reshape(h, -1)
    out = np.concatenate([flat, np.full((h, pad), 0xEE, np.uint8)], 1)
    return out.shape[1], out.tobytes()


@pytest.mark.parametrize("encoding,make,order", [
    ("rgb8", lambda: RGB, "rgb"),
    ("bgr8", lambda: RGB[..., ::-1], "bgr"),
    ("rgba8", lambda: np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)]), "rgb"),
    ("bgra8", lambda: np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 7, np.uint8)]), "bgr"),
    ("mono8", lambda: RGB[..., 0], "rgb"),
])
@pytest.mark.parametrize("pad", [0, 5])
def test_plain_encodings_with_and_without_row_padding(encoding, make, order, pad) -> None:
    pixels = np.ascontiguousarray(make())
    step, data = _padded(pixels.reshape(pixels.shape[0], -1), pad)
    image, got_order = decode_raw(encoding, 6, 8, step, data)
    assert got_order == order
    expected = pixels[..., :3] if pixels.ndim == 3 else pixels
    if encoding in ("rgba8", "bgra8"):
        image = image[..., :3]
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("big", [False, True])
def test_mono16_little_and_big_endian_scale_to_their_range(big) -> None:
    values = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000 + 500
    data = values.astype(">u2" if big else "<u2").tobytes()
    image, _ = decode_raw("mono16", 6, 8, 16, data, is_bigendian=big)
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
    np.testing.assert_array_equal(np.argsort(image.ravel(), kind="stable"), np.arange(48))


@pytest.mark.parametrize("encoding,code", [("bayer_rggb8", cv2.COLOR_BayerBG2RGB), ("bayer_bggr8", cv2.COLOR_BayerRG2RGB),
                                           ("bayer_gbrg8", cv2.COLOR_BayerGR2RGB), ("bayer_grbg8", cv2.COLOR_BayerGB2RGB)])
def test_bayer_patterns_demosaic_like_opencv(encoding, code) -> None:
    raw = RNG.integers(0, 256, (6, 8), dtype=np.uint8)
    image, order = decode_raw(encoding, 6, 8, 8, raw.tobytes())
    assert order == "rgb"
    np.testing.assert_array_equal(image, cv2.cvtColor(raw, code))


def test_bayer_rggb_puts_red_where_red_is() -> None:
    raw = np.zeros((6, 8), np.uint8)
    raw[0::2, 0::2] = 200  # R sites of an RGGB mosaic
    image, _ = decode_raw("bayer_rggb8", 6, 8, 8, raw.tobytes())
    assert image[2:4, 2:6, 0].mean() > 150 and image[2:4, 2:6, 2].mean() < 20


@pytest.mark.parametrize("encoding,code", [("yuv422", cv2.COLOR_YUV2RGB_UYVY), ("uyvy", cv2.COLOR_YUV2RGB_UYVY),
                                           ("yuv422_yuy2", cv2.COLOR_YUV2RGB_YUYV), ("yuyv", cv2.COLOR_YUV2RGB_YUYV)])
def test_yuv422_layouts(encoding, code) -> None:
    packed = RNG.integers(0, 256, (6, 8, 2), dtype=np.uint8)
    step, data = _padded(packed, 4)
    image, _ = decode_raw(encoding, 6, 8, step, data)
    np.testing.assert_array_equal(image, cv2.cvtColor(packed, code))


@pytest.mark.parametrize("fields,words", [
    (dict(encoding="rgb_fancy"), ["'rgb_fancy' is not supported", "rgb8"]),
    (dict(step=10), ["step 10 is smaller than one row", "24 bytes"]),
    (dict(data=RGB.tobytes()[:-1]), ["143 bytes, shorter than step 24 x height 6 = 144"]),
    (dict(data=RGB.tobytes() + b"\0"), ["145 bytes, longer than"]),
    (dict(width=0, height=0, step=0, data=b""), ["image is empty: width 0, height 0"]),
])
def test_malformed_raw_frames_are_refused_with_the_reason(fields, words) -> None:
    args = dict(encoding="rgb8", height=6, width=8, step=24, data=RGB.tobytes())
    args.update(fields)
    with pytest.raises(InputError) as info:
        decode_raw(**args)
    for word in words:
        assert word in str(info.value)


def test_compressed_jpeg_png_and_broken_streams() -> None:
    big = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_NEAREST)
    bgr = cv2.cvtColor(big, cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    image, order = decode_compressed("png", png)
    assert order == "bgr"
    np.testing.assert_array_equal(image, bgr)
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    image, _ = decode_compressed("jpeg", jpeg)
    assert image.shape == (48, 64, 3)
    for data, reason, text in ((jpeg[: len(jpeg) // 2], "compressed", "truncated"),
                               (png[:-20], "compressed", "truncated"),
                               (b"not an image at all", "compressed", "neither JPEG nor PNG"),
                               (b"", "compressed", "no data")):
        with pytest.raises(InputError) as info:
            decode_compressed("jpeg", data)
        assert info.value.reason == reason and text in str(info.value)


def test_encode_raw_round_trips() -> None:
    for encoding in ("rgb8", "bgr8"):
        h, w, step, data = encode_raw(RGB, encoding)
        image, order = decode_raw(encoding, h, w, step, data)
        np.testing.assert_array_equal(cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if order == "bgr" else image, RGB)


def test_mailbox_keeps_only_the_newest_frame_and_counts_the_dropped() -> None:
    box: FrameMailbox = FrameMailbox()
    assert box.take(timeout=0.01) is None
    assert box.put(1) is False
    assert box.put(2) is True and box.put(3) is True
    assert box.take(timeout=0.01) == 3 and box.take(timeout=0.01) is None
    assert (box.received, box.dropped) == (3, 2)
    box.close()
    assert box.take(timeout=5) is None  # closed: returns at once


BOMB_CHECK = r'''
import resource, struct, sys, zlib
import cv2, numpy as np
from robot_instseg.engine.errors import InputError
from robot_instseg.io.image_encodings import decode_compressed

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

side = 20000  # a real PNG of 20000 x 20000 grey zeros: 400 MB decoded, under 1 MB on the wire
packer, row, parts = zlib.compressobj(9), b"\x00" * (side + 1), []
for _ in range(side):
    parts.append(packer.compress(row))
parts.append(packer.flush())
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
small = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
sof = small.index(b"\xff\xc0")
jpeg = small[:sof + 5] + (65000).to_bytes(2, "big") * 2 + small[sof + 9:]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reasons = []
for data in (png, jpeg):
    try:
        decode_compressed("png", data)
    except InputError as exc:
        reasons.append(exc.reason)
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(len(png), reasons, grown_mb)
'''


def test_decompression_bombs_are_refused_before_decoding_within_100_mb() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", BOMB_CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()  # PNG size, the refusal reasons, peak RSS growth in MB
    assert int(words[0]) < 1_000_000 and "['too_large', 'too_large']" in done.stdout, done.stdout
    assert float(words[-1]) < 100, done.stdout
