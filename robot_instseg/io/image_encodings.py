"""Raw camera buffers (the fields of sensor_msgs/Image and CompressedImage) -> numpy images.

rclpy-free, so the live node and the bag tools (rosbags messages carry the same fields)
decode alike. Every refusal is an ``InputError`` that names the field and the problem.
"""

from __future__ import annotations

import array
from typing import Union

import cv2
import numpy as np

from robot_instseg.engine.errors import InputError

DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096  # 16.8 MP: 4K UHD and 12 MP machine-vision cameras fit

Buffer = Union[bytes, bytearray, memoryview, np.ndarray, array.array]

# encoding -> (channels, numpy dtype, channel order of the result)
_PLAIN = {
    "rgb8": (3, np.uint8, "rgb"), "bgr8": (3, np.uint8, "bgr"),
    "rgba8": (4, np.uint8, "rgb"), "bgra8": (4, np.uint8, "bgr"),
    "mono8": (1, np.uint8, "rgb"), "8UC1": (1, np.uint8, "rgb"), "8UC3": (3, np.uint8, "bgr"),
    "mono16": (1, np.uint16, "rgb"), "16UC1": (1, np.uint16, "rgb"),
    "rgb16": (3, np.uint16, "rgb"), "bgr16": (3, np.uint16, "bgr"),
}
_BAYER = {  # OpenCV names Bayer patterns by the second row: ROS rggb == OpenCV BG
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB, "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB, "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
    "bayer_rggb16": cv2.COLOR_BayerBG2RGB, "bayer_bggr16": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg16": cv2.COLOR_BayerGR2RGB, "bayer_grbg16": cv2.COLOR_BayerGB2RGB,
}
_YUV422 = {  # two bytes per pixel
    "yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV, "yuyv": cv2.COLOR_YUV2RGB_YUYV,
}
_DEPTH = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}  # REP 118: millimetres / metres
SUPPORTED_ENCODINGS = tuple(sorted(set(_PLAIN) | set(_BAYER) | set(_YUV422)))


def bytes_per_pixel(encoding: str) -> int:
    """Bytes one pixel takes in a sensor_msgs/Image ``encoding``; InputError for an unknown one."""
    if encoding in _PLAIN:
        channels, dtype, _ = _PLAIN[encoding]
        return channels * np.dtype(dtype).itemsize
    if encoding in _BAYER:
        return 2 if encoding.endswith("16") else 1
    if encoding in _YUV422:
        return 2
    if encoding in _DEPTH:
        return np.dtype(_DEPTH[encoding]).itemsize
    raise InputError(f"encoding {encoding!r} is not supported (supported: {', '.join(SUPPORTED_ENCODINGS)})",
                     "encoding")


def _as_bytes(data: Buffer) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data), np.uint8)


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse a frame larger than ``max_pixels`` before anything is allocated for it."""
    if width * height > max_pixels:
        raise InputError(f"{what} is {width}x{height} = {width * height} pixels, over max_input_pixels "
                         f"{max_pixels}", "too_large")


def rows(height: int, width: int, step: int, data: Buffer, encoding: str,
         max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> np.ndarray:
    """The (height, width * bytes_per_pixel) uint8 view of the pixel rows, padding dropped."""
    if height <= 0 or width <= 0:
        raise InputError(f"image is empty: width {width}, height {height}", "empty")
    check_pixels(width, height, max_pixels, f"{encoding} image")
    bpp = bytes_per_pixel(encoding)
    row_bytes = width * bpp
    if step < row_bytes:
        raise InputError(f"step {step} is smaller than one row of {width} {encoding} pixels ({row_bytes} bytes)",
                         "step")
    buf = _as_bytes(data)
    expected = step * height
    if buf.size != expected:
        shortfall = "shorter" if buf.size < expected else "longer"
        raise InputError(f"data is {buf.size} bytes, {shortfall} than step {step} x height {height} = {expected}",
                         "data_size")
    return buf.reshape(height, step)[:, :row_bytes]


def decode_raw(encoding: str, height: int, width: int, step: int, data: Buffer,
               is_bigendian: bool = False, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[np.ndarray, str]:
    """Return (uint8 image, channel order) ready for ``Segmenter.segment``.

    16-bit data is byte-swapped when big-endian, then scaled to 8 bits by its own range
    (IR and mono16 cameras rarely fill 16 bits, so a fixed shift would leave them black).
    """
    pixel_rows = rows(height, width, step, data, encoding, max_pixels)
    if encoding in _YUV422:
        packed = np.ascontiguousarray(pixel_rows).reshape(height, width, 2)
        if width % 2:
            raise InputError(f"{encoding} needs an even width, got {width}", "step")
        return cv2.cvtColor(packed, _YUV422[encoding]), "rgb"
    if encoding in _BAYER:
        sixteen = encoding.endswith("16")
        raw = np.ascontiguousarray(pixel_rows).view(_endian(np.uint16, is_bigendian) if sixteen else np.uint8)
        raw = raw.reshape(height, width)
        if sixteen:
            raw = to_uint8(raw.astype(np.uint16))
        return cv2.cvtColor(raw, _BAYER[encoding]), "rgb"
    if encoding not in _PLAIN:
        raise InputError(f"encoding {encoding!r} is depth, not an image to segment", "encoding")
    channels, dtype, order = _PLAIN[encoding]
    image = np.ascontiguousarray(pixel_rows).view(_endian(dtype, is_bigendian)).reshape(height, width, channels)
    if image.dtype != np.uint8:
        image = to_uint8(image.astype(np.dtype(dtype).newbyteorder("=")))
    return (image[..., 0] if channels == 1 else image), order


def _endian(dtype, big: bool) -> np.dtype:
    dt = np.dtype(dtype)
    return dt.newbyteorder(">" if big else "<") if dt.itemsize > 1 else dt


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale an integer image to 0..255 by its own min and max (a flat image becomes 0)."""
    lo, hi = int(image.min()), int(image.max())
    if hi <= lo:
        return np.zeros(image.shape, np.uint8)
    return ((image.astype(np.float32) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _complete(fmt: str, buf: np.ndarray) -> None:
    """Refuse truncated JPEG/PNG streams, which OpenCV would decode half grey without an error."""
    tail = buf[-64:].tobytes().rstrip(b"\x00")
    if buf[:2].tobytes() == b"\xff\xd8" and not tail.endswith(b"\xff\xd9"):
        raise InputError(f"{fmt or 'jpeg'} data is truncated: no end-of-image marker ({buf.size} bytes)",
                         "compressed")
    if buf[:8].tobytes() == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail[-12:]:
        raise InputError(f"{fmt or 'png'} data is truncated: no IEND chunk ({buf.size} bytes)", "compressed")


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def compressed_size(buf: np.ndarray, fmt: str) -> tuple[int, int]:
    """(width, height) a JPEG or PNG stream declares in its header (PNG IHDR, JPEG SOFn), read
    without decoding, so a decompression bomb is refused before it costs memory."""
    head = buf[:8].tobytes()
    name = fmt or "compressed image"
    if head == _PNG_SIGNATURE:
        if buf.size < 24 or buf[12:16].tobytes() != b"IHDR":
            raise InputError(f"{name}: PNG without an IHDR header ({buf.size} bytes)", "compressed")
        return int.from_bytes(buf[16:20].tobytes(), "big"), int.from_bytes(buf[20:24].tobytes(), "big")
    if head[:2] == b"\xff\xd8":
        data = buf.tobytes()
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                raise InputError(f"{name}: JPEG marker expected at byte {pos}", "compressed")
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
                pos += 2
                continue
            length = int.from_bytes(data[pos + 2:pos + 4], "big")
            if marker in _JPEG_SOF:
                if pos + 9 > len(data):
                    break
                return int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big")
            if marker in (0xD9, 0xDA) or length < 2:
                break
            pos += 2 + length
        raise InputError(f"{name}: JPEG without a frame header (SOF) before the image data", "compressed")
    raise InputError(f"{name}: neither JPEG nor PNG data (starts {head[:4].hex()})", "compressed")


def decode_compressed(fmt: str, data: Buffer, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[np.ndarray, str]:
    """Return (uint8 image, channel order) for a CompressedImage (jpeg or png).

    The header's size is checked against ``max_pixels`` before decoding, and any decoder
    failure (OpenCV's own limits included) is bad input, never an exception of another kind.
    """
    buf = _as_bytes(data)
    if buf.size == 0:
        raise InputError(f"compressed image ({fmt or 'no format'}) has no data", "compressed")
    width, height = compressed_size(buf, fmt)
    if width <= 0 or height <= 0:
        raise InputError(f"compressed image ({fmt or 'no format'}) declares an empty size {width}x{height}", "empty")
    check_pixels(width, height, max_pixels, f"compressed image ({fmt or 'no format'})")
    _complete(fmt, buf)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"compressed image ({fmt or 'no format'}, {buf.size} bytes) could not be decoded: "
                         f"{str(exc).strip().splitlines()[-1]}", "compressed") from None
    if image is None:
        raise InputError(f"compressed image ({fmt or 'no format'}, {buf.size} bytes) could not be decoded: "
                         "corrupt or not an image", "compressed")
    if image.dtype != np.uint8:
        image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image, "bgr"


def encode_raw(image: np.ndarray, encoding: str = "rgb8") -> tuple[int, int, int, bytes]:
    """(height, width, step, data) for an RGB uint8 image in ``encoding`` (rgb8, bgr8 or mono8)."""
    if encoding == "rgb8":
        out = image
    elif encoding == "bgr8":
        out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif encoding == "mono8":
        out = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    else:
        raise ValueError(f"cannot encode to {encoding!r}: rgb8, bgr8 or mono8")
    out = np.ascontiguousarray(out)
    h, w = out.shape[:2]
    return h, w, out.strides[0], out.tobytes()


def decode_fields(raw_type: str, fields: dict) -> tuple[np.ndarray, str]:
    """(uint8 image, channel order) from an Image / CompressedImage's fields (a bag's message)."""
    if raw_type.endswith("CompressedImage"):
        return decode_compressed(fields["format"], fields["data"])
    return decode_raw(fields["encoding"], fields["height"], fields["width"], fields["step"], fields["data"],
                      bool(fields.get("is_bigendian", 0)))


def decode_depth(encoding: str, height: int, width: int, step: int, data: Buffer, is_bigendian: bool = False,
                 max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> np.ndarray:
    """A depth Image's pixels as float32 metres, NaN where there is no reading (REP 118: 16UC1 / mono16
    millimetres, 32FC1 metres); InputError (bad_encoding, step, data_size, ...) when malformed."""
    from robot_instseg.geometry.depth_image import depth_in_metres

    if encoding not in _DEPTH:
        raise InputError(f"depth encoding {encoding!r} is not a depth encoding; expected one of {sorted(_DEPTH)} "
                         "(REP 118)", "bad_encoding")
    pixel_rows = rows(height, width, step, data, encoding, max_pixels)
    raw = np.ascontiguousarray(pixel_rows).view(_endian(_DEPTH[encoding], is_bigendian)).reshape(height, width)
    return depth_in_metres(encoding, raw.astype(np.dtype(_DEPTH[encoding]).newbyteorder("="), copy=False))
