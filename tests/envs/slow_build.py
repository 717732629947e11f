"""A test-only env ID whose construction takes `build_s` seconds in a worker process (not in
the process that registered it first): a vector's workers still busy when it is interrupted."""

import os
import time

import gymnasium as gym

import envs

#: The pid of the process that imported this module first (the test's); workers differ.
FIRST_PID = int(os.environ.setdefault("INSERTBENCH_SLOW_BUILD_PID", str(os.getpid())))


def make_slow(build_s: float = 0.0, **kwargs) -> gym.Env:
    if os.getpid() != FIRST_PID:
        time.sleep(build_s)
    return envs.make_task_env("InsertBench/USB-v0", **kwargs)


if "SlowBuild-v0" not in gym.registry:
    gym.register("SlowBuild-v0", entry_point=make_slow, max_episode_steps=50)
