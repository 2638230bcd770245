"""The ML backend's endpoints on their own (FastAPI's test client, a real model, local-files images)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient

from robot_instseg.engine.frame_pipeline import segment_frame
from robot_instseg.engine.segmenter import load_segmenter
from robot_instseg.labelling.backend import BackendSettings, Predictor, create_app
from robot_instseg.labelling.brush import region_mask
from robot_instseg.labelling.label_config import label_config
from robot_instseg.synthetic.scenes import generate_scene


def test_health_setup_predict_webhook_from_the_local_files_root(tmp_path: Path) -> None:
    scene = generate_scene(5)
    rgb = scene.render_rgb()
    image_path = tmp_path / "frames" / "a.png"
    image_path.parent.mkdir()
    cv2.imwrite(str(image_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    segmenter = load_segmenter()
    client = TestClient(create_app(Predictor(segmenter, BackendSettings(local_files_root=tmp_path), "m:abc")))
    assert client.get("/health").json() == {"status": "UP", "model_class": "robot_instseg", "model_version": "m:abc"}
    assert client.post("/setup", json={"project": "1.0", "schema": "", "hostname": "http://ls",
                                       "access_token": "t"}).json() == {"model_version": "m:abc"}
    names = list(segmenter.class_names)
    keep = names[:3]  # a project that offers only some classes gets only those
    tasks = [{"id": 7, "data": {"image": "/data/local-files/?d=frames/a.png"}},
             {"id": 8, "data": {"image": "/data/local-files/?d=../../etc/passwd"}}]
    body = client.post("/predict", json={"tasks": tasks, "label_config": label_config(keep)}).json()
    assert body["model_version"] == "m:abc" and len(body["results"]) == 2
    first, outside = body["results"]
    assert outside["result"] == []  # a path outside the root is refused, the other task still answered
    visible = segment_frame(segmenter, rgb, "rgb").visible
    wanted = [i for i in range(len(visible)) if visible.class_names[i] in keep]
    assert len(first["result"]) == len(wanted) > 0
    for result, i in zip(first["result"], wanted):
        assert result["value"]["brushlabels"] == [visible.class_names[i]]
        assert np.array_equal(region_mask(result, *rgb.shape[:2]), visible.full_mask(i))
    assert client.post("/predict", json={"tasks": tasks, "label_config": "<View/>"}).status_code == 400
    assert client.post("/webhook", json={"action": "ANNOTATION_CREATED"}).status_code == 201
