"""Property-based fuzzing (hypothesis), bounded so it runs in CI on every change: whatever bytes
and fields a camera or a bag sends, the decoders return a uint8 image or raise InputError, and
parameter validation returns a reason or accepts, never anything else."""

from __future__ import annotations

import math

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_instseg.engine.errors import InputError
from robot_instseg.io.image_encodings import SUPPORTED_ENCODINGS, decode_compressed, decode_raw
from robot_instseg.node.node_stats import cdr_stamp_ns
from robot_instseg.node.params import PARAMS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_PIXELS = 1 << 16  # small, so the fuzzer reaches the limit


def _valid_image(image: np.ndarray, order: str) -> None:
    assert image.dtype == np.uint8 and image.ndim in (2, 3) and order in ("rgb", "bgr")
    assert image.shape[0] * image.shape[1] <= MAX_PIXELS


@FUZZ
@given(encoding=st.one_of(st.sampled_from(SUPPORTED_ENCODINGS), st.text(max_size=12)),
       height=st.one_of(st.integers(0, 40), st.integers(-5, 2**32)), width=st.one_of(st.integers(0, 40),
                                                                                      st.integers(-5, 2**32)),
       step=st.one_of(st.integers(0, 200), st.integers(-5, 2**32)), big=st.booleans(), data=st.data())
def test_raw_frames_decode_or_are_refused(encoding, height, width, step, big, data) -> None:
    size = max(0, min(height * step, 20000)) if height > 0 and step > 0 else 0
    payload = data.draw(st.one_of(st.binary(min_size=size, max_size=size), st.binary(max_size=64)))
    try:
        image, order = decode_raw(encoding, height, width, step, payload, big, MAX_PIXELS)
    except InputError as exc:
        assert exc.reason and str(exc)
    else:
        _valid_image(image, order)
        assert image.shape[:2] == (height, width)


def _seeds() -> list[bytes]:
    rgb = np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8)
    return [cv2.imencode(ext, rgb)[1].tobytes() for ext in (".jpg", ".png")]


@FUZZ
@given(seed=st.sampled_from(_seeds()), cuts=st.lists(st.tuples(st.integers(0, 4000), st.binary(max_size=8)),
                                                      max_size=4), fmt=st.sampled_from(["jpeg", "png", "", "bmp"]))
def test_mutated_jpeg_and_png_decode_or_are_refused(seed, cuts, fmt) -> None:
    data = bytearray(seed)
    for position, junk in cuts:  # overwrite bytes anywhere: headers, sizes, markers, pixel data
        position %= max(len(data), 1)
        data[position:position + len(junk)] = junk
    try:
        image, order = decode_compressed(fmt, bytes(data), MAX_PIXELS)
    except InputError as exc:
        assert exc.reason and str(exc)
    else:
        _valid_image(image, order)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_as_compressed_images_and_cdr_stamps(data) -> None:
    try:
        image, order = decode_compressed("jpeg", data, MAX_PIXELS)
    except InputError:
        pass
    else:
        _valid_image(image, order)
    stamp = cdr_stamp_ns(data)
    assert stamp is None or isinstance(stamp, int)


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                      st.text(max_size=20), st.lists(st.integers(), max_size=3))


@FUZZ
@given(index=st.integers(0, len(PARAMS) - 1), value=ANY_VALUE)
def test_parameter_validation_accepts_or_gives_a_reason(index, value) -> None:
    spec = PARAMS[index]
    reason = spec.validate(value)
    assert reason is None or (isinstance(reason, str) and spec.name in reason)
    if reason is None and isinstance(value, float):
        assert math.isfinite(value), f"{spec.name} accepted {value}"
