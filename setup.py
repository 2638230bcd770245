"""ament_python package robot_instseg: the node, the engine and the `robot-instseg` tool."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "robot_instseg"


def _share(folder: str, pattern: str = "*") -> tuple[str, list[str]]:
    """Install every file matching ``folder/pattern`` into share/robot_instseg/folder."""
    return (f"share/{PACKAGE}/{folder}", sorted(p for p in glob(f"{folder}/{pattern}")))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        _share("launch", "*.launch.py"),
        _share("config", "*.yaml"),
        _share("config", "*.xml"),
        _share("models", "*"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot_instseg maintainers",
    maintainer_email="maintainers@robot-instseg.dev",
    description="Real-time ROS 2 instance segmentation with a data loop.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "seg_node = robot_instseg.ros.entry:main",
            "robot-instseg = robot_instseg.cli:main",
        ],
    },
)
