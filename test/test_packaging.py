"""The two packages build from a clean copy, their manifests validate, and share/ is complete."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package
from ros_env import REPO

SHARE_FOLDERS = ("launch", "config", "models")


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and (REPO / line).is_file()]


@pytest.mark.parametrize("manifest", ["package.xml", "robot_instseg_msgs/package.xml"])
def test_package_xml_validates_with_catkin_pkg(manifest: str) -> None:
    package = parse_package(str(REPO / manifest))  # raises InvalidPackage on any error
    package.validate()
    assert package.package_format == 3


def test_every_ros_package_the_code_imports_is_declared() -> None:
    declared = {dep.name for dep in parse_package(str(REPO / "package.xml")).exec_depends}
    ros_packages = {"rclpy", "std_msgs", "std_srvs", "sensor_msgs", "geometry_msgs", "visualization_msgs",
                    "diagnostic_msgs", "lifecycle_msgs", "builtin_interfaces", "robot_instseg_msgs",
                    "ament_index_python", "launch", "launch_ros"}
    imported = set()
    for source in list((REPO / "robot_instseg").rglob("*.py")) + list((REPO / "launch").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            imported |= {name.split(".")[0] for name in names} & ros_packages
    assert imported - declared == set()


def test_python_package_imports_without_rclpy_outside_ros() -> None:
    for source in (REPO / "robot_instseg").rglob("*.py"):
        if "ros" in source.relative_to(REPO / "robot_instseg").parts[:1]:
            continue
        text = source.read_text()
        assert "import rclpy" not in text and "from rclpy" not in text, source


def test_installed_share_found_through_ament_index() -> None:
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("robot_instseg"))
    assert (share / "launch" / "seg.launch.py").is_file()
    assert (share / "config" / "params.yaml").is_file()
    assert (share / "package.xml").is_file()
    repo_models = sorted(p.name for p in (REPO / "models").glob("*") if not p.name.startswith("."))
    assert sorted(p.name for p in (share / "models").glob("*")) == repo_models
    assert Path(get_package_share_directory("robot_instseg_msgs"), "msg", "InstanceArray.msg").is_file()


def test_colcon_build_of_both_packages_from_a_clean_copy(tmp_path: Path) -> None:
    src = tmp_path / "src" / "robot_instseg"
    for rel in _tracked_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    env = dict(os.environ)
    venv = Path(sys.prefix)
    env["CMAKE_PREFIX_PATH"] = str(venv)
    env["AMENT_PREFIX_PATH"] = str(venv)
    result = subprocess.run(
        ["colcon", "--log-base", str(tmp_path / "log"), "build",
         "--base-paths", str(src), str(src / "robot_instseg_msgs"),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "2 packages finished" in result.stdout
    share = tmp_path / "install" / "robot_instseg" / "share" / "robot_instseg"
    for folder in SHARE_FOLDERS:
        assert sorted(p.name for p in (share / folder).glob("*")) == \
            sorted(p.name for p in (src / folder).glob("*") if not p.name.startswith("."))
    assert (tmp_path / "install" / "robot_instseg" / "lib" / "robot_instseg" / "seg_node").is_file()
    assert (tmp_path / "install" / "robot_instseg" / "lib" / "robot_instseg" / "robot-instseg").is_file()
    built = list((tmp_path / "install" / "robot_instseg_msgs").rglob("_instance_array.py"))
    assert built, "no Python message module generated for InstanceArray"


def test_nothing_in_the_package_imports_the_cli() -> None:
    """The CLI sits on top: verbs call library functions, never the other way round."""
    package = REPO / "robot_instseg"
    offenders = []
    for path in package.rglob("*.py"):
        if (package / "cli") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(REPO)} imports {n}" for n in names if n.startswith("robot_instseg.cli")]
    assert offenders == []


def _imports_of(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


# subpackage -> the subpackages it must never import (ARCHITECTURE: dependencies point one way)
FORBIDDEN = {
    "engine": ("ros", "cli", "train", "node", "recording", "dataset", "labelling", "offline"),
    "io": ("ros", "cli", "train", "node", "recording", "dataset", "labelling", "offline"),
    "synthetic": ("ros", "cli", "train", "node", "recording", "dataset", "engine", "labelling", "offline"),
    "geometry": ("ros", "cli", "train", "node", "recording", "dataset", "synthetic", "io", "tracking", "labelling",
                 "offline"),
    "tracking": ("ros", "cli", "train", "node", "recording", "dataset", "synthetic", "io", "labelling", "offline"),
    "recording": ("ros", "cli", "train", "node", "dataset", "labelling", "offline"),
    "node": ("ros", "cli", "train", "dataset", "labelling", "offline"),
    "offline": ("ros", "cli", "train", "node", "recording", "dataset", "labelling"),
    "dataset": ("ros", "cli", "train", "labelling"),
    "labelling": ("ros", "cli", "train"),
    "train": ("ros", "cli"),
    "ros": ("cli", "train"),
}


def test_dependencies_point_one_way() -> None:
    package = REPO / "robot_instseg"
    offenders = []
    for sub, forbidden in FORBIDDEN.items():
        for path in (package / sub).rglob("*.py"):
            for name in _imports_of(path):
                parts = name.split(".")
                if parts[0] == "robot_instseg" and len(parts) > 1 and parts[1] in forbidden:
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_ray_is_imported_by_the_ray_runner_only() -> None:
    """Ray is an extra (make setup-ray): the node, the engine and the plain verbs never import it."""
    importers = sorted(str(path.relative_to(REPO)) for path in (REPO / "robot_instseg").rglob("*.py")
                       if any(name.split(".")[0] == "ray" for name in _imports_of(path)))
    assert importers == ["robot_instseg/offline/ray_runner.py"]


def test_every_subpackage_names_its_public_api_and_imports_it_lazily() -> None:
    """``__all__`` of each subpackage resolves; importing a subpackage loads none of its heavy modules."""
    subpackages = ["engine", "geometry", "tracking", "io", "synthetic", "node", "recording", "dataset", "labelling",
                   "offline", "train", "ros", "ros.tools"]
    code = (
        "import importlib, sys\n"
        f"subs = {subpackages!r}\n"
        "for s in subs: importlib.import_module('robot_instseg.' + s)\n"
        "heavy = sorted(m for m in ('onnxruntime', 'torch', 'rosbags', 'rclpy', 'pycocotools', 'scipy', 'ray') "
        "if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
        "for s in subs:\n"
        "    m = importlib.import_module('robot_instseg.' + s)\n"
        "    assert m.__all__, s\n"
        "    for name in m.__all__: getattr(m, name)\n"
        "print('OK')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout and "OK" in result.stdout, result.stdout
