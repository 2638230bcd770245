"""``seg_node``'s entry point: the process-wide DDS choice first, then the node (``ros.node.main``).

Why here: the Fast DDS profile must be chosen before the process's first participant, and the node's
outputs are large reliable messages (masks, ``~/debug_image``) that a lost fragment would otherwise
hold back until the next frame's (config/fastdds_camera_writer.xml says why).
"""

from __future__ import annotations

from robot_instseg.ros.compat import use_camera_writer_profile


def main() -> int:
    """``seg_node``: choose the DDS profile, then run the node until it is shut down."""
    use_camera_writer_profile()
    from robot_instseg.ros.node import main as node_main

    return node_main()
