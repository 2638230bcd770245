"""The round trip through a real Label Studio: push, read back through its REST API (not our
code), a scripted annotator making the edits the UI makes, pull with provenance, merge, train."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import cli
from label_studio_sdk.converter.brush import decode_rle, mask2rle
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def rest(url: str, token: str, method: str, path: str, **kw) -> httpx.Response:
    r = httpx.request(method, url + path, headers={"Authorization": f"Token {token}"}, timeout=60, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
    return r


def project_tasks(url: str, token: str, title: str) -> tuple[int, list[dict]]:
    projects = rest(url, token, "GET", "/api/projects", params={"title": title}).json()["results"]
    project = next(p for p in projects if p["title"] == title)
    tasks, page = [], 1
    while True:
        r = httpx.get(url + "/api/tasks", params={"project": project["id"], "fields": "all", "page": page,
                                                  "page_size": 50}, headers={"Authorization": f"Token {token}"},
                      timeout=60)
        if r.status_code == 404:
            break
        body = r.json()
        tasks += body["tasks"] if "tasks" in body else body["results"]
        if len(tasks) >= body.get("total", body.get("count", 0)):
            break
        page += 1
    return int(project["id"]), tasks


def brush_mask(result: dict) -> np.ndarray:
    """Independent decode: the SDK's bit unpacking, the alpha channel."""
    h, w = result["original_height"], result["original_width"]
    return decode_rle(result["value"]["rle"]).reshape(h, w, 4)[:, :, 3] > 0


def push(dataset: Path, url: str, token: str, project: str, *extra: str) -> str:
    return cli("label", "push", str(dataset), "--url", url, "--api-key", token, "--project", project,
               "--quiet", *extra).stdout


def coco_masks(dataset: Path) -> dict[str, list[tuple[str, float, np.ndarray]]]:
    """split/file_name -> [(class, score, mask)] of the dataset's pre-annotations."""
    out = {}
    for split in ("train", "val"):
        coco = quiet_coco(dataset / "annotations" / f"instances_{split}.json")
        for image in coco.dataset["images"]:
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
            out[f"{split}/{image['file_name']}"] = [(coco.cats[a["category_id"]]["name"], a["score"],
                                                     coco.annToMask(a).astype(bool)) for a in anns]
    return out


def test_push_reads_back_pixel_for_pixel_and_is_idempotent(dataset, ls_url, token) -> None:
    first = push(dataset, ls_url, token, "readback", "--storage", "upload")
    assert "created" in first and "16 tasks added" in first, first
    again = push(dataset, ls_url, token, "readback")
    assert "0 tasks added, 16 already there" in again, again
    _, tasks = project_tasks(ls_url, token, "readback")
    assert len(tasks) == 16 and len({t["data"]["file_name"] for t in tasks}) == 16
    expected = coco_masks(dataset)
    info = json.loads((dataset / "annotations" / "instances_train.json").read_text())["info"]
    regions = 0
    for task in tasks:
        want = expected[task["data"]["file_name"]]
        assert len(task["predictions"]) == 1
        prediction = task["predictions"][0]
        assert prediction["model_version"] == info["model_versions"][0]
        assert prediction["model_version"].startswith("instseg_tabletop.onnx:")
        got = prediction["result"]
        assert len(got) == len(want)
        for result, (name, score, mask) in zip(got, want):
            assert (result["original_height"], result["original_width"]) == mask.shape
            assert result["value"]["brushlabels"] == [name]
            assert result["score"] == pytest.approx(score, abs=1e-5)
            assert np.array_equal(brush_mask(result), mask)
            regions += 1
        assert task["data"]["bag"].startswith("robot_3") and task["data"]["topic"] == "/camera/image_raw"
        assert set(task["data"]["instances"]) == {r["id"] for r in got}
        image = rest(ls_url, token, "GET", task["data"]["image"]).content
        split, name = task["data"]["file_name"].split("/")
        assert image == (dataset / "images" / split / name).read_bytes()
    assert regions == sum(len(v) for v in expected.values()) > 100


def test_local_files_storage_serves_our_files(dataset, ls_url, token) -> None:
    out = push(dataset, ls_url, token, "localfiles", "--document-root", "/")
    assert "images by local" in out, out
    _, tasks = project_tasks(ls_url, token, "localfiles")
    assert len(tasks) == 16
    task = tasks[0]
    assert task["data"]["image"].startswith("/data/local-files/?d=")
    split, name = task["data"]["file_name"].split("/")
    assert rest(ls_url, token, "GET", task["data"]["image"]).content == (dataset / "images" / split / name).read_bytes()


def moved_boundary(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0


def ring(h: int, w: int) -> np.ndarray:
    """A new object with a hole, to check holes survive the pull."""
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (60, 60), 40, 1, -1)
    cv2.circle(m, (60, 60), 15, 0, -1)
    return m > 0


def region_like(result: dict, mask: np.ndarray, label: str, region_id: str) -> dict:
    """A brush region as the editor submits it (the SDK's RLE of the 0/255 mask)."""
    return {**{k: v for k, v in result.items() if k not in ("score", "value", "id")}, "id": region_id,
            "value": {"format": "rle", "rle": mask2rle(np.where(mask, 255, 0).astype(np.uint8)),
                      "brushlabels": [label]}}


def test_scripted_review_comes_back_with_provenance_then_merges_and_trains(dataset, ls_url, token,
                                                                          tmp_path) -> None:
    push(dataset, ls_url, token, "review")
    _, tasks = project_tasks(ls_url, token, "review")
    tasks.sort(key=lambda t: t["id"])
    edited, accepted_only, skipped = tasks[0], tasks[1], tasks[2]
    pred = edited["predictions"][0]["result"]
    assert len(pred) >= 4
    h, w = pred[0]["original_height"], pred[0]["original_width"]
    other_class = next(c for c in ("cup", "bowl") if c != pred[1]["value"]["brushlabels"][0])
    result = [pred[0],  # accepted as predicted
              region_like(pred[1], brush_mask(pred[1]), other_class, pred[1]["id"]),  # class changed
              region_like(pred[2], moved_boundary(brush_mask(pred[2])), pred[2]["value"]["brushlabels"][0],
                          pred[2]["id"]),  # boundary moved
              *pred[4:],  # pred[3] deleted
              region_like(pred[0], ring(h, w), "tool", "added1")]  # a missed object added
    rest(ls_url, token, "POST", f"/api/tasks/{edited['id']}/annotations",
         json={"result": result, "was_cancelled": False, "ground_truth": False})
    rest(ls_url, token, "POST", f"/api/tasks/{accepted_only['id']}/annotations",
         json={"result": accepted_only["predictions"][0]["result"], "was_cancelled": False})
    rest(ls_url, token, "POST", f"/api/tasks/{skipped['id']}/annotations", json={"result": [], "was_cancelled": True})

    out = tmp_path / "pulled"
    printed = cli("label", "pull", "--url", ls_url, "--api-key", token, "--project", "review", "--out", str(out),
                  "--json").stdout
    report = json.loads(printed.splitlines()[0])
    assert report["images"] == {"reviewed": 2, "skipped": 1, "unreviewed": 13}
    first_pull = (out / "annotations" / "instances_train.json").read_text()
    (out / "annotations" / "instances_test.json").write_text("{}")  # stale: the project has no test images
    again = cli("label", "pull", "--url", ls_url, "--api-key", token, "--project", "review", "--out", str(out),
                "--json").stdout
    assert json.loads(again.splitlines()[0]) == report and not (out / "annotations" / "instances_test.json").exists()
    assert (out / "annotations" / "instances_train.json").read_text() == first_pull
    assert not out.with_name("pulled.partial").exists()
    anns = []
    for coco_file in (out / "annotations").glob("instances_*.json"):
        coco = quiet_coco(coco_file)
        for a in coco.dataset["annotations"]:
            image = coco.imgs[a["image_id"]]
            anns.append((image["ls_task_id"], a, coco.annToMask(a).astype(bool), coco.cats[a["category_id"]]["name"]))
        assert all(img["review"] == "reviewed" and img["bag"].startswith("robot_3") for img in coco.dataset["images"])
    by_task = {tid: [(a, m, c) for t, a, m, c in anns if t == tid] for tid in {t for t, *_ in anns}}
    assert set(by_task) == {edited["id"], accepted_only["id"]}
    assert all(a["provenance"] == "accepted" for a, _, _ in by_task[accepted_only["id"]])
    assert len(by_task[accepted_only["id"]]) == len(accepted_only["predictions"][0]["result"])
    mine = {a["ls_region_id"]: (a, m, c) for a, m, c in by_task[edited["id"]]}
    assert mine[pred[0]["id"]][0]["provenance"] == "accepted"
    assert np.array_equal(mine[pred[0]["id"]][1], brush_mask(pred[0]))
    a, m, c = mine[pred[1]["id"]]
    assert a["provenance"] == "corrected" and c == other_class and a["iou_to_prediction"] == 1.0
    assert a["predicted_class"] == pred[1]["value"]["brushlabels"][0]
    a, m, c = mine[pred[2]["id"]]
    before, after = brush_mask(pred[2]), moved_boundary(brush_mask(pred[2]))
    assert a["provenance"] == "corrected" and np.array_equal(m, after)
    assert a["iou_to_prediction"] == pytest.approx(before.sum() / after.sum(), abs=1e-4)
    assert pred[3]["id"] not in mine
    a, m, c = mine["added1"]
    assert a["provenance"] == "added" and c == "tool" and np.array_equal(m, ring(h, w))  # the hole kept
    assert mask_utils.area(a["segmentation"]) == ring(h, w).sum()
    counts = {p: sum(1 for x, _, _ in mine.values() if x["provenance"] == p) for p in ("accepted", "corrected", "added")}
    assert counts == {"accepted": 1 + len(pred[4:]), "corrected": 2, "added": 1}
    per_class = report["per_class"]
    deleted_class = pred[3]["value"]["brushlabels"][0]
    assert per_class[deleted_class]["deleted"] >= 1
    assert sum(r["deleted"] for r in per_class.values()) == 1
    assert sum(r["class_changed"] for r in per_class.values()) == 1
    assert per_class["tool"]["added"] >= 1

    # merge the reviewed frames with a fresh export of another bag, then train on the result
    other = tmp_path / "other"
    cli("run", "scenes:33", "--out", str(tmp_path / "robot_33"), "--quiet")
    cli("bag2coco", str(tmp_path / "robot_33"), "--out", str(other), "--quiet", "--no-model", "--split", "1,0,0")
    merged = tmp_path / "merged"
    cli("dataset", "merge", str(out), str(other), "--out", str(merged))
    coco = quiet_coco(merged / "annotations" / "instances_train.json")
    images = coco.dataset["images"]
    assert len({i["id"] for i in images}) == len(images) and len({a["id"] for a in coco.dataset["annotations"]}) == \
        len(coco.dataset["annotations"])
    assert {i["bag"] for i in images} >= {"robot_33"} and all("stamp" in i and "topic" in i for i in images)
    twice = cli("dataset", "merge", str(out), str(out), "--out", str(tmp_path / "bad"), check=False)
    assert twice.returncode == 2 and "is in both" in twice.stderr and "Traceback" not in twice.stderr
    run = tmp_path / "run"
    cli("train", "--coco", str(merged / "annotations" / "instances_train.json"), "--images",
        str(merged / "images" / "train"), "--imgsz", "96", "128", "--epochs", "1", "--batch", "4", "--width", "8",
        "--out", str(run), "--quiet", timeout=600)
    assert (run / "last.pt").is_file()


def test_errors_are_one_line(dataset, ls_url, tmp_path) -> None:
    bad_key = cli("label", "push", str(dataset), "--url", ls_url, "--api-key", "wrong", "--project", "x",
                  check=False)
    assert bad_key.returncode == 2 and "HTTP 401" in bad_key.stderr and "Traceback" not in bad_key.stderr
    nobody = cli("label", "pull", "--url", "http://127.0.0.1:9", "--api-key", "k", "--project", "x", "--out",
                 str(tmp_path / "o"), check=False)
    assert nobody.returncode == 2 and "unreachable" in nobody.stderr and len(nobody.stderr.strip().splitlines()) == 1


def test_ml_backend_predicts_for_label_studio(dataset, ls_url, token, tmp_path) -> None:
    import subprocess
    import sys

    from label_studio_server import free_port

    from robot_instseg.engine.frame_pipeline import segment_frame
    from robot_instseg.engine.segmenter import load_segmenter

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "robot_instseg.cli", "label", "serve", "--port", str(port),
                               "--url", ls_url, "--api-key", token], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        backend = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(backend + "/health", timeout=2).json()["status"] == "UP":
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        push(dataset, ls_url, token, "backend")  # the project, with our label config
        from robot_instseg.labelling.client import LabelStudioClient

        client = LabelStudioClient(ls_url, token)
        project = client.project_id("backend")
        client.connect_backend(project, backend)
        image = sorted((dataset / "images" / "val").iterdir())[0]
        url = client.upload(project, image)
        task_id = client.import_tasks(project, [{"data": {"image": url}}])[0]
        predictions: list = []
        deadline = time.monotonic() + 120
        while not predictions and time.monotonic() < deadline:
            predictions = rest(ls_url, token, "GET", f"/api/tasks/{task_id}").json().get("predictions") or []
            if not predictions:
                rest(ls_url, token, "POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions",
                                                                         "project": project},
                     json={"selectedItems": {"all": False, "included": [task_id]}})
                time.sleep(1)
        assert predictions, "Label Studio got no prediction from the backend"
        got = predictions[0]
        assert got["model_version"].startswith("instseg_tabletop.onnx:")
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        visible = segment_frame(load_segmenter(), rgb, "rgb").visible
        assert len(got["result"]) == len(visible) > 0
        for i, result in enumerate(got["result"]):
            assert result["value"]["brushlabels"] == [visible.class_names[i]]
            assert np.array_equal(brush_mask(result), visible.full_mask(i))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_polygon_projects_round_trip_outlines(dataset, ls_url, token, tmp_path) -> None:
    push(dataset, ls_url, token, "polygons", "--kind", "polygon")
    _, tasks = project_tasks(ls_url, token, "polygons")
    task = min(tasks, key=lambda t: t["id"])
    pred = task["predictions"][0]["result"]
    assert pred and all(r["type"] == "polygonlabels" and len(r["value"]["points"]) >= 3 for r in pred)
    rest(ls_url, token, "POST", f"/api/tasks/{task['id']}/annotations", json={"result": pred, "was_cancelled": False})
    out = tmp_path / "poly"
    cli("label", "pull", "--url", ls_url, "--api-key", token, "--project", "polygons", "--out", str(out))
    split, name = task["data"]["file_name"].split("/")
    coco = quiet_coco(out / "annotations" / f"instances_{split}.json")
    anns = coco.dataset["annotations"]
    assert len(anns) == len(pred) and all(a["provenance"] == "accepted" for a in anns)
    truth = coco_masks(dataset)[task["data"]["file_name"]]
    for a, (label, _, mask) in zip(anns, truth):
        filled = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
        got = coco.annToMask(a).astype(bool)
        assert coco.cats[a["category_id"]]["name"] == label
        assert (got & filled).sum() / (got | filled).sum() > 0.8  # an outline of the largest part, holes filled
