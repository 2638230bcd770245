"""Drivers of a running node: play frames, the demo, the DDS bench, offline runs to a bag, a
diagnostics watcher, and the child-process helpers the tests and scripts share."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    play:         Player PlayOptions run_play
    demo:         run_demo
    bench:        run_ros_bench
    offline:      run_to_bag RunSummary
    watch:        Watcher
    node_process: NodeProcess watched_node
    background:   BackgroundSpin
""")
