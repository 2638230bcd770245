"""Robust statistics shared by the 3D code: the median by one partial sort and the MAD-to-sigma factor.

Why one place: the fusion's depth band, the support plane's inlier test and the completion's depth
band all read "the median" and "robust sigmas" and must mean the same by them."""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826  # a normal distribution's sigma per median absolute deviation


def upper_median(values: np.ndarray) -> float:
    """The (upper) median by one partial sort: np.median's generality costs more than the work here."""
    middle = len(values) // 2
    return float(np.partition(values, middle)[middle])
