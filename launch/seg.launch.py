"""Start the robot_instseg node: `ros2 launch robot_instseg seg.launch.py [arg:=value ...]`.

Arguments:
  model          ONNX / TensorRT engine path; empty = keep the params file's model_path
                 (whose default, empty, means the bundled model)
  image_topic    camera topic to segment, remapped onto the node's ~/image input
  compressed     true = subscribe sensor_msgs/CompressedImage on <image_topic>/compressed
  remap          more remappings, comma-separated FROM:=TO pairs; with several cameras
                 (config/cameras.yaml) each camera's topics, e.g.
                 remap:=~/head/image:=/camera/color/image_raw,~/wrist/image/compressed:=/wrist/image_raw/compressed
  namespace      namespace for the node and its topics
  params_file    YAML of node parameters (default: the package's config/params.yaml)
  log_level      debug, info, warn, error or fatal
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ARGUMENTS = {
    "model": ("", "Model path; empty = the params file's model_path (default: bundled model)."),
    "image_topic": ("/camera/image_raw", "Camera image topic to segment."),
    "compressed": ("false", "Subscribe to <image_topic>/compressed (sensor_msgs/CompressedImage)."),
    "depth_topic": ("/camera/aligned_depth_to_color/image_raw",
                    "Depth registered to the colour image (16UC1 mm or 32FC1 m), for 3D per instance."),
    "camera_info_topic": ("/camera/color/camera_info", "CameraInfo of the colour camera (its intrinsics)."),
    "remap": ("", "More remappings: comma-separated FROM:=TO pairs (each camera's topics with `cameras`)."),
    "namespace": ("", "Namespace of the node and its topics."),
    "params_file": (None, "Node parameters YAML (default: share/robot_instseg/config/params.yaml)."),
    "log_level": ("info", "Logger level: debug, info, warn, error or fatal."),
}

# Launch arguments that override a node parameter when given: argument -> parameter.
ARGUMENT_PARAMETERS = {"model": "model_path", "compressed": "image_transport"}


def _node(context, *_args, **_kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    overrides = {}
    if value["model"]:
        overrides[ARGUMENT_PARAMETERS["model"]] = value["model"]
    if value["compressed"].lower() in ("true", "1", "yes"):
        overrides[ARGUMENT_PARAMETERS["compressed"]] = "compressed"
    topic = value["image_topic"]
    extra = [tuple(pair.split(":=", 1)) for pair in value["remap"].split(",") if ":=" in pair]
    return [Node(
        package="robot_instseg",
        executable="seg_node",
        name="seg_node",
        namespace=value["namespace"],
        output="screen",
        emulate_tty=True,
        parameters=[value["params_file"], overrides],
        remappings=[("~/image", topic), ("~/image/compressed", topic.rstrip("/") + "/compressed"),
                    ("~/depth", value["depth_topic"]), ("~/camera_info", value["camera_info_topic"]), *extra],
        arguments=["--ros-args", "--log-level", value["log_level"]],
    )]


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("robot_instseg"), "config", "params.yaml")
    declared = [
        DeclareLaunchArgument(name, default_value=default if default is not None else default_params,
                              description=description)
        for name, (default, description) in ARGUMENTS.items()
    ]
    return LaunchDescription(declared + [OpaqueFunction(function=_node)])
