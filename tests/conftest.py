"""Session setup shared by every test module."""

import numpy as np


def pytest_sessionstart(session):
    """Compiles the driving simulator's numba kernels once, before any test runs.

    The kernels are cached on disk (`cache=True`), so every process the tests spawn
    afterwards (actors, subprocess scripts) loads them instead of compiling its own copy;
    without this, a fresh checkout compiles in each actor at once and slow starts trip
    the runtime's start timeouts.
    """
    from jaximpala.envs.driving.env import DrivingVectorEnv

    env = DrivingVectorEnv(num_envs=2, preset="hard")
    env.reset(seed=0)
    action = {"continuous": np.zeros((2, 3), np.float32),
              "discrete": np.zeros((2, 2), np.int64)}
    for _ in range(3):
        env.step(action)
    env.close()
