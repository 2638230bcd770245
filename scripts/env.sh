# Source this to work inside the project's environment: `source scripts/env.sh`.
# Activates .venv (rclpy and messages from the ros-* wheels), makes the wheels' packages
# visible to ament/CMake, overlays the colcon install/ of robot_instseg and
# robot_instseg_msgs, and keeps DDS discovery on this machine unless told otherwise.

_ri_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -x "$_ri_root/.venv/bin/python" ]; then
  echo "scripts/env.sh: $_ri_root/.venv is missing; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_ri_root/.venv/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
  export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}";; esac
if [ -f "$_ri_root/install/local_setup.bash" ] && [ -n "${BASH_VERSION:-}" ]; then
  # shellcheck disable=SC1091
  source "$_ri_root/install/local_setup.bash"
elif [ -f "$_ri_root/install/local_setup.sh" ]; then
  COLCON_CURRENT_PREFIX="$_ri_root/install" . "$_ri_root/install/local_setup.sh"
fi
# Executables of robot_instseg (robot-instseg, seg_node) live in lib/robot_instseg, as ros2 run expects.
case ":$PATH:" in *":$_ri_root/install/robot_instseg/lib/robot_instseg:"*) ;; *)
  export PATH="$_ri_root/install/robot_instseg/lib/robot_instseg:$PATH";; esac
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
unset _ri_root
