"""`lfr loadtest`: a recorded crowd replayed as live RTSP cameras through the real deployment, ramped step by step.

One concept per module: the ramp plan (`ramp`), when a step counts as saturated (`saturation`), the
figures each step records (`measurements`), the replayed cameras (`cameras`), CPU and memory per
process role (`resources`), alerts scored against the crowd's truth (`accuracy`), the run
(`runner`), the report file (`report`) and its HTML page (`html_report`), and the comparison of two
reports for CI (`comparison`); with `--chaos`, the scenarios of `cluster.chaos` run on the last step.
"""
