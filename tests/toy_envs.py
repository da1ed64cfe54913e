"""Tiny environments for learning tests (registered under `jaximpala-test/`)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class HybridToyEnv(gym.Env):
    """One-step task with a Dict action: match a target number and pick the target class.

    Observation: `[x, onehot(c)]` with `x ~ U(-1, 1)` and `c ~ U{0, 1, 2}`.
    Action: `{"continuous": Box(-1, 1, (1,)), "discrete": MultiDiscrete([3])}`.
    Reward: `1[d == c] - (a - x)^2`; optimal 1, uniformly random about -0.33.
    """

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Dict({
        "continuous": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
        "discrete": gym.spaces.MultiDiscrete([3]),
    })

    def _observe(self):
        x = self.np_random.uniform(-1.0, 1.0)
        c = int(self.np_random.integers(3))
        self._target = (x, c)
        return np.array([x, *np.eye(3)[c]], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._observe(), {}

    def step(self, action):
        x, c = self._target
        a = float(np.clip(action["continuous"][0], -1.0, 1.0))
        reward = float(int(action["discrete"][0]) == c) - (a - x) ** 2
        return self._observe(), reward, True, False, {}


def register() -> None:
    if "jaximpala-test/HybridToy-v0" not in gym.registry:
        gym.register("jaximpala-test/HybridToy-v0", entry_point=HybridToyEnv)


class BlowUpEnv(gym.Env):
    """Reward 1 per step (episodes of 10 steps) until this env has taken `finite_steps`
    steps, then 1e30: the value loss overflows float32 and every update is non-finite."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, finite_steps: int = 100):
        self.finite_steps = finite_steps
        self._total = self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self._t += 1
        self._total += 1
        reward = 1.0 if self._total <= self.finite_steps else 1e30
        return np.full(2, self._t / 10, np.float32), reward, self._t >= 10, False, {}


def register_blow_up() -> None:
    if "jaximpala-test/BlowUp-v0" not in gym.registry:
        gym.register("jaximpala-test/BlowUp-v0", entry_point=BlowUpEnv)
