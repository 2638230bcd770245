"""The offline verbs on a real Ray cluster (two simulated nodes on loopback) give the single-process output:
COCO JSON byte for byte, bags message for message, also with depth and tracking, for 1, 2 and 3 workers and
several window sizes; a killed worker is replaced and the output is unchanged; a damaged bag is named and
skipped; Ctrl-C leaves nothing that looks complete."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from offline_inputs import clip_bag, image_folder, rgbd_bag
from ray_cluster import RAY_ENV, bag_messages, ray_missing, run_cli, two_node_cluster

pytestmark = pytest.mark.skipif(bool(ray_missing()), reason=ray_missing())

DEPTH = ("--topic", "/camera/color/image_raw", "--depth-topic", "/camera/aligned_depth_to_color/image_raw")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = two_node_cluster(tmp_path_factory.mktemp("ray"))
    yield cluster.address
    cluster.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    clip_bag(root / "clip", 30, seed=7, rate_hz=10.0)
    rgbd_bag(root / "rgbd", 4, skip_depth_of=2)
    image_folder(root / "imgs", 8)
    return root


def _plain_and_ray(tmp: Path, source: Path, out_name: str, ray_args: tuple, *extra: str) -> tuple[Path, Path]:
    plain, distributed = tmp / f"plain_{out_name}", tmp / f"ray_{out_name}"
    if not plain.exists():
        run_cli("run", str(source), "--out", str(plain), "--quiet", *extra)
    run_cli("run", str(source), "--out", str(distributed), "--quiet", "--ray", *ray_args, *extra)
    return plain, distributed


def test_a_folder_to_coco_json_is_byte_identical_for_1_and_2_workers(cluster, inputs, tmp_path) -> None:
    for workers in ("1", "2"):
        plain, distributed = _plain_and_ray(tmp_path, inputs / "imgs", f"{workers}.json",
                                            (cluster, "--workers", workers, "--window-s", "0.2"), "--fps", "10")
        assert distributed.read_bytes() == plain.read_bytes()
        assert len(plain.read_bytes()) > 1000


@pytest.mark.parametrize("workers,window_s", [("1", "0.5"), ("2", "0.3"), ("3", "1.1")])
def test_a_tracked_bag_is_the_same_message_for_message(cluster, inputs, tmp_path, workers, window_s) -> None:
    plain, distributed = _plain_and_ray(tmp_path, inputs / "clip", "out.mcap",
                                        (cluster, "--workers", workers, "--window-s", window_s))
    expected = bag_messages(plain)
    assert len(expected) == 90  # 30 frames: image, instances, labels
    assert bag_messages(distributed) == expected
    plain_json, ray_json = _plain_and_ray(tmp_path, inputs / "clip", "out.json",
                                          (cluster, "--workers", workers, "--window-s", window_s))
    assert ray_json.read_bytes() == plain_json.read_bytes()
    assert b'"track_id": 0' not in plain_json.read_bytes() or b'"track_id": 1' in plain_json.read_bytes()


def test_a_bag_with_depth_is_the_same_message_for_message(cluster, inputs, tmp_path) -> None:
    plain, distributed = _plain_and_ray(tmp_path, inputs / "rgbd", "rgbd.mcap", (cluster, "--workers", "2"), *DEPTH)
    expected = bag_messages(plain)
    assert bag_messages(distributed) == expected
    assert sum(topic.endswith("instances") for topic, *_ in expected) == 4


def test_bag2coco_and_eval_on_ray_equal_the_plain_runs(cluster, inputs, tmp_path) -> None:
    bags = [str(inputs / "clip"), str(inputs / "rgbd")]
    run_cli("bag2coco", *bags, "--out", str(tmp_path / "plain"), "--quiet", "--dedup", "0", "--split", "1,1,0")
    run_cli("bag2coco", *bags, "--out", str(tmp_path / "ray"), "--quiet", "--dedup", "0", "--split", "1,1,0",
            "--ray", cluster, "--workers", "2")
    plain_files = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain").rglob("*") if p.is_file())
    ray_files = sorted(p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("*") if p.is_file())
    assert plain_files == ray_files and len(plain_files) > 30
    for name in plain_files:
        if name.name != "stats.json":  # it names its own folder
            assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    gt, images = tmp_path / "plain" / "annotations" / "instances_train.json", tmp_path / "plain" / "images" / "train"
    plain = run_cli("eval", "--gt", str(gt), "--images", str(images), "--json", "--quiet").stdout
    distributed = run_cli("eval", "--gt", str(gt), "--images", str(images), "--json", "--quiet", "--ray", cluster,
                          "--workers", "2").stdout
    assert distributed == plain and '"segm_AP"' in plain


def _worker_pids() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "InstsegUnitWorker"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def _written(staging: Path) -> int:
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0


def test_a_worker_killed_mid_run_is_replaced_and_the_output_is_unchanged(cluster, inputs, tmp_path) -> None:
    clip_bag(tmp_path / "long", 60, seed=9, rate_hz=10.0)
    plain = tmp_path / "plain.mcap"
    run_cli("run", str(tmp_path / "long"), "--out", str(plain), "--quiet")
    out = tmp_path / "ray.mcap"
    proc = subprocess.Popen([sys.executable, "-m", "robot_instseg.cli", "run", str(tmp_path / "long"), "--out",
                             str(out), "--ray", cluster, "--workers", "1", "--window-s", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV})
    try:
        deadline, killed = time.monotonic() + 180, None
        while time.monotonic() < deadline and killed is None and proc.poll() is None:
            pids = _worker_pids()
            if pids and _written(tmp_path / ".ray.mcap.partial") > 3 * 2**20:  # frames are back (1.5 MB each)
                killed = sorted(pids)[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert killed is not None, "the run ended before a worker could be killed; give it more frames"
    assert proc.returncode == 0, stderr[-3000:]
    rates = re.findall(r"frames per second: .*by worker: (.*)", stderr)[-1]
    workers = re.findall(r"(\S+:\d+) [\d.]+/s", rates)
    assert len(workers) == 2 and f"{workers[0].split(':')[0]}:{killed}" in workers, (rates, killed, pids)
    assert bag_messages(out) == bag_messages(plain)


def test_an_archive_with_a_damaged_bag_is_written_for_the_others(cluster, inputs, tmp_path) -> None:
    archive = tmp_path / "archive"
    (archive / "robot1").mkdir(parents=True)
    (archive / "robot2").mkdir()
    for robot in ("robot1", "robot2"):
        (archive / robot / "day.mcap").write_bytes(next((inputs / "clip").glob("*.mcap")).read_bytes())
    (archive / "robot2" / "torn.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)
    pattern = str(archive / "**" / "*.mcap")
    for mode, extra in (("plain", ()), ("ray", ("--ray", cluster, "--workers", "2", "--window-s", "1"))):
        done = run_cli("run", pattern, "--out", str(tmp_path / mode), "--quiet", *extra)
        assert "2 of 3 inputs written" in done.stdout and "1 skipped" in done.stdout, done.stdout
        assert "torn.mcap: not a readable bag" in done.stdout + done.stderr
        assert not (tmp_path / mode / "robot2" / "torn").exists()
    for name in ("robot1/day", "robot2/day"):
        assert bag_messages(tmp_path / "ray" / name) == bag_messages(tmp_path / "plain" / name)
        assert len(bag_messages(tmp_path / "plain" / name)) == 90


def test_ctrl_c_leaves_no_output_that_looks_complete(cluster, tmp_path) -> None:
    clip_bag(tmp_path / "long", 120, seed=3, rate_hz=10.0)  # several seconds of work: Ctrl-C lands mid-run
    for out in (tmp_path / "out.json", tmp_path / "out.mcap"):
        proc = subprocess.Popen([sys.executable, "-m", "robot_instseg.cli", "run", str(tmp_path / "long"), "--out",
                                 str(out), "--ray", cluster, "--window-s", "0.2"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV})
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not _worker_pids() and proc.poll() is None:
                time.sleep(0.1)
            time.sleep(1.5)  # the worker has loaded its model and is segmenting
            assert proc.poll() is None, "the run ended before Ctrl-C"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 130, stderr[-2000:]
        assert "interrupted" in stderr
        assert not out.exists()
        left = [p.name for p in tmp_path.iterdir() if p.name != "long"]
        assert all(name.endswith(".partial") for name in left), left  # only a hidden staging name, if anything


def test_a_local_ray_is_started_and_stopped_for_a_run(inputs, tmp_path) -> None:
    """No address: the verb starts its own Ray (no cluster running) and the output still equals the plain run."""
    plain, distributed = tmp_path / "plain.json", tmp_path / "ray.json"
    run_cli("run", str(inputs / "imgs"), "--out", str(plain), "--quiet")
    done = run_cli("run", str(inputs / "imgs"), "--out", str(distributed), "--ray", "--workers", "2")
    assert distributed.read_bytes() == plain.read_bytes()
    assert re.search(r"frames per second: first frame after [\d.]+ s, then [\d.]+ frames/s; by worker: \S+:\d+ ",
                     done.stderr), done.stderr[-2000:]


def test_without_ray_installed_the_verb_says_how_to_get_it(inputs, tmp_path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from robot_instseg.cli import main; "
            f"sys.exit(main(['run', {str(inputs / 'imgs')!r}, '--out', {str(tmp_path / 'x.json')!r}, '--ray']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "make setup-ray" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_an_address_with_no_cluster_is_refused_in_one_line(inputs, tmp_path) -> None:
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    done = run_cli("run", str(inputs / "imgs"), "--out", str(tmp_path / "x.json"), "--ray", f"127.0.0.1:{port}",
                   ok=False, timeout=60)
    assert done.returncode != 0
    assert f"no Ray cluster at 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.json").exists()
