"""Metric depth for a synthetic scene, with per-pixel ground truth and optional sensor artefacts.

The camera hangs ``CAMERA_HEIGHT_M`` over the table plane, pitched ``CAMERA_PITCH_DEG`` down,
with focal length ``FOCAL_FRACTION`` x the image width and the principal point at the centre.
The table's depth follows from that geometry (about 0.68 m at the bottom edge to 1.41 m at
the top). Each object is a rounded solid facing the camera: its surface rises from its outline
towards its inside (a parabolic profile of the distance to the outline, as high as 0.6 x
its largest inscribed radius). It stands where its lowest pixel meets the table, and is lifted
towards the camera when it has to, so that it is in front of every object drawn before it
wherever they overlap: the depth agrees with the image's occlusion order, and the nearest
surface is what the painter drew. Objects lie between about 0.4 and 1.45 m.

Artefacts (seeded, optional) imitate an RGB-D camera's aligned depth: a registration error of
up to ``REGISTRATION_PX`` pixels between depth and colour (so background bleeds into one side
of every mask), noise growing with z², flying pixels (mixtures of the two surfaces) in a band
``FLYING_BAND_PX`` wide along depth edges, invalid shadows beside depth edges, and scattered
holes. Depth is written as 16UC1 millimetres.

None of this changes ``generate_scene``: the depth uses its own random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.synthetic.scenes import Scene

CAMERA_HEIGHT_M = 0.70
CAMERA_PITCH_DEG = 50.0
FOCAL_FRACTION = 0.9
RELIEF_OF_RADIUS = 0.6
OCCLUSION_GAP_M = 0.03
NOISE_AT_1M = 0.003  # m; sigma = NOISE_AT_1M * z**2 (a D435-class stereo camera: about 2-4 mm at 1 m)
EDGE_STEP_M = 0.02  # a neighbour this much farther makes a depth edge
FLYING_FRACTION = 0.6
FLYING_BAND_PX = 2
REGISTRATION_PX = 1.5
SHADOW_FRACTION = 0.3
HOLE_FRACTION = 0.03


def scene_intrinsics(scene: Scene) -> Intrinsics:
    """The synthetic camera's intrinsics for this scene's image size."""
    f = FOCAL_FRACTION * scene.width
    return Intrinsics(f, f, (scene.width - 1) / 2.0, (scene.height - 1) / 2.0, scene.width, scene.height)


def table_depth(k: Intrinsics) -> np.ndarray:
    """(H, W) depth of the table plane seen by the pitched camera."""
    pitch = math.radians(CAMERA_PITCH_DEG)
    y = (np.arange(k.height, dtype=np.float64) - k.cy) / k.fy  # ray slope, y down
    z = CAMERA_HEIGHT_M / (y * math.cos(pitch) + math.sin(pitch))
    return np.repeat(z[:, None], k.width, axis=1)


def _relief(silhouette: np.ndarray) -> np.ndarray:
    """0 at the outline, 1 at the most inside pixel: 1 - (1 - d / dmax)^2 of the distance d to the outline."""
    d = cv2.distanceTransform(silhouette.astype(np.uint8), cv2.DIST_L2, 3)
    dmax = float(d.max())
    if dmax <= 0:
        return d
    return 1.0 - (1.0 - d / dmax) ** 2


@dataclass
class SceneDepth:
    """Clean per-pixel depth (metres, NaN nowhere: the table is everywhere) and each object's own surface."""

    depth: np.ndarray  # (H, W) float64, what a perfect sensor sees
    surfaces: list[np.ndarray]  # per object: (H, W) float64 depth of its full surface, inf outside it
    intrinsics: Intrinsics


def render_depth(scene: Scene) -> SceneDepth:
    """Ground-truth depth of a scene, consistent with its occlusion order (see the module docstring)."""
    k = scene_intrinsics(scene)
    table = table_depth(k)
    depth = table.copy()
    surfaces: list[np.ndarray] = []
    shape = (scene.height, scene.width)
    for obj in scene.objects:
        sil = obj.silhouette(shape)
        surface = np.full(shape, np.inf)
        if not sil.any():
            surfaces.append(surface)
            continue
        ys, xs = np.nonzero(sil)
        bottom = ys.max()
        base = float(table[bottom, int(np.median(xs[ys == bottom]))])
        radius_px = float(cv2.distanceTransform(sil.astype(np.uint8), cv2.DIST_L2, 3).max())
        relief = _relief(sil)[sil] * RELIEF_OF_RADIUS * radius_px * base / k.fx
        for earlier in surfaces:  # in front of every earlier object it overlaps
            overlap = np.isfinite(earlier[sil])
            if overlap.any():
                base = min(base, float(np.min(earlier[sil][overlap] + relief[overlap])) - OCCLUSION_GAP_M)
        surface[sil] = base - relief
        surfaces.append(surface)
        depth[sil] = surface[sil]
    return SceneDepth(depth, surfaces, k)


def sensor_depth(truth: SceneDepth, seed: int) -> np.ndarray:
    """What a depth camera would report: float32 metres with NaN holes, flying pixels and z² noise."""
    rng = np.random.default_rng([seed, 0xD3])
    z = truth.depth.astype(np.float32)
    h, w = z.shape
    dx, dy = rng.uniform(-REGISTRATION_PX, REGISTRATION_PX, 2)
    shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    z = np.asarray(cv2.warpAffine(z, shift, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE),
                   np.float32)
    window = np.ones((2 * FLYING_BAND_PX + 1, 2 * FLYING_BAND_PX + 1), np.uint8)
    near = cv2.erode(z, window)
    far = cv2.dilate(z, window)
    edge = (far - near) > EDGE_STEP_M
    mixed = z.copy()
    a = rng.uniform(0.15, 0.85, z.shape).astype(np.float32)
    mixed[edge] = (a * near + (1 - a) * far)[edge]
    flying = edge & (rng.random(z.shape) < FLYING_FRACTION)
    out = np.where(flying, mixed, z)
    out = out + rng.normal(0.0, 1.0, z.shape).astype(np.float32) * np.float32(NOISE_AT_1M) * out * out
    shadow = edge & (z > near + EDGE_STEP_M) & (rng.random(z.shape) < SHADOW_FRACTION)
    coarse = rng.random((max(h // 16, 2), max(w // 16, 2))).astype(np.float32)
    holes = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR) < HOLE_FRACTION
    out[shadow | holes] = np.nan
    return np.round(out * 1000.0) / 1000.0  # the sensor's millimetre steps


def depth_png(depth_m: np.ndarray) -> np.ndarray:
    """16UC1 millimetres (0 = no reading), for ``cv2.imwrite`` as a 16-bit PNG."""
    mm = np.where(np.isfinite(depth_m), np.round(depth_m * 1000.0), 0.0)
    return np.clip(mm, 0, 65535).astype(np.uint16)


def visible_surface_points(scene: Scene, truth: SceneDepth) -> list[np.ndarray]:
    """Per object, the ground-truth camera-frame points of its visible pixels (clean depth)."""
    from robot_instseg.geometry.fusion import back_project

    out = []
    for mask in scene.visible_masks():
        vs, us = np.nonzero(mask)
        out.append(back_project(us, vs, truth.depth[vs, us], truth.intrinsics))
    return out
