"""``label serve``: a Label Studio ML backend serving our Segmenter.

The four endpoints Label Studio calls (``/health``, ``/setup``, ``/predict``, ``/webhook``) on
FastAPI + uvicorn: well kept, typed, and light, where the ``label-studio-ml`` package is the
outdated 1.x line pinned to Flask 1.1. Images are read from the Label Studio server (its URL
and an API key; /setup also hands one over) or straight from the local-files root.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np
from fastapi import FastAPI, Request  # module level: FastAPI resolves the handlers' annotations here
from fastapi.responses import JSONResponse

from robot_instseg.labelling.brush import region
from robot_instseg.labelling.client import fetch_file
from robot_instseg.labelling.errors import LabellingError

LOG = logging.getLogger(__name__)


@dataclass
class BackendSettings:
    """Where the backend finds task images."""

    label_studio_url: Optional[str] = None
    api_key: Optional[str] = None
    local_files_root: Optional[Path] = None


def config_kind_and_classes(config: str) -> tuple[str, list[str]]:
    """brush or polygon, and the label values, of a project's labelling config."""
    from robot_instseg.labelling.label_config_read import config_classes

    return ("polygon" if "<PolygonLabels" in config else "brush"), config_classes(config)


class Predictor:
    """Turns Label Studio tasks into predictions with one Segmenter (one call at a time)."""

    def __init__(self, segmenter, settings: BackendSettings, model_version: str) -> None:
        self.segmenter, self.settings, self.model_version = segmenter, settings, model_version
        self.lock = threading.Lock()

    def read_image(self, url: str) -> np.ndarray:
        """The RGB image a task names: local-files under the root, else fetched from Label Studio."""
        parsed = urlparse(url)
        if parsed.path.startswith("/data/local-files") and self.settings.local_files_root is not None:
            relative = parse_qs(parsed.query).get("d", [""])[0]
            path = (self.settings.local_files_root / relative).resolve()
            if not path.is_relative_to(self.settings.local_files_root.resolve()):
                raise LabellingError(f"{url}: outside the local-files root", "refused")
            data = path.read_bytes()
        else:
            data = fetch_file(self.settings.label_studio_url, self.settings.api_key, url, timeout=60)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise LabellingError(f"{url}: not an image", "format")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def predict_task(self, task: dict, kind: str, classes: list[str]) -> dict:
        """One Label Studio prediction (regions of the classes the project offers) for one task."""
        from robot_instseg.engine.frame_pipeline import segment_frame

        data = task.get("data") or {}
        image = self.read_image(str(data.get("image", "")))
        with self.lock:
            visible = segment_frame(self.segmenter, image, "rgb").visible
        regions, scores = [], []
        for i in range(len(visible)):
            name = visible.class_names[i] or str(int(visible.class_ids[i]))
            if name not in classes:
                continue
            score = float(visible.scores[i])
            regions.append(region(visible.full_mask(i), name, f"m{task.get('id', 0)}_{i}", score, kind))
            scores.append(score)
        return {"result": regions, "score": round(sum(scores) / len(scores), 5) if scores else 0.0,
                "model_version": self.model_version}


def create_app(predictor: Predictor) -> FastAPI:
    """The FastAPI app with Label Studio's ML backend endpoints."""
    app = FastAPI(title="robot_instseg Label Studio ML backend")

    @app.get("/")
    @app.get("/health")
    def health() -> dict:
        return {"status": "UP", "model_class": "robot_instseg", "model_version": predictor.model_version}

    @app.post("/setup")
    async def setup(request: Request) -> dict:
        body = await request.json()
        if body.get("hostname") and not predictor.settings.label_studio_url:
            predictor.settings.label_studio_url = str(body["hostname"])
        if body.get("access_token") and not predictor.settings.api_key:
            predictor.settings.api_key = str(body["access_token"])
        return {"model_version": predictor.model_version}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            kind, classes = config_kind_and_classes(str(body.get("label_config") or ""))
        except LabellingError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        results = []
        for task in body.get("tasks") or []:
            try:
                results.append(predictor.predict_task(task, kind, classes))
            except (LabellingError, OSError) as exc:
                LOG.error("task %s: no prediction: %s", task.get("id"), exc)
                results.append({"result": [], "score": 0.0, "model_version": predictor.model_version})
        return JSONResponse({"results": results, "model_version": predictor.model_version})

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        body = await request.json()
        LOG.info("webhook %s", body.get("action"))
        return JSONResponse({}, status_code=201)

    return app
