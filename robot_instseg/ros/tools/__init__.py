"""Drivers of a running node: play frames, the demo, the DDS bench, offline runs to a bag, a
diagnostics watcher, and the child-process helpers the tests and scripts share."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    play="Player PlayOptions run_play",
    demo="run_demo",
    bench="run_ros_bench",
    offline="run_to_bag RunSummary",
    watch="Watcher",
    node_process="NodeProcess watched_node",
    background="BackgroundSpin",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
