"""Gymnasium front ends of the simulator core: a single `Env` and a native `VectorEnv`.

Both are thin shells over `DrivingSim`: the single env is the core with N=1, the vector env
the core with N slots stepped in whole-array operations. Episode seeds: slot i of a vector env
reset with `seed=s` draws its episodes from `np.random.default_rng(s + i)`, which is exactly
the generator a single env reset with `seed=s + i` uses, so the two give identical
trajectories. The vector env autoresets gymnasium's NEXT_STEP way: the step after an episode
ends ignores that slot's action, starts its next episode and returns the first observation
with reward 0 and terminated = truncated = False.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from jaximpala.envs.driving import render as render_mod
from jaximpala.envs.driving import spaces
from jaximpala.envs.driving.config import DrivingConfig, preset
from jaximpala.envs.driving.sim import DrivingSim

_SEED_BOUND = 2**63


def _checked_render_mode(render_mode: str | None) -> str | None:
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    return render_mode


def config_from(config: DrivingConfig | None, preset_name: str, overrides: dict):
    """The DrivingConfig an env made with these arguments drives (ValueError or TypeError
    naming what is wrong): `config` as given, or the preset with `overrides` applied."""
    if config is not None and (overrides or preset_name != "default"):
        raise ValueError("pass either config=DrivingConfig(...) or preset/overrides, not both")
    return config if config is not None else preset(preset_name, **overrides)


class DrivingEnv(gym.Env):
    """One driving world (the N=1 case of `DrivingSim`). See the package README for spaces."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        config: DrivingConfig | None = None,
        preset: str = "default",
        render_mode: str | None = None,
        **overrides,
    ):
        self.config = config_from(config, preset, overrides)
        self.render_mode = _checked_render_mode(render_mode)
        self.sim = DrivingSim(self.config, 1)
        self.observation_space = spaces.observation_space(self.config)
        self.action_space = spaces.action_space(self.config.pedals, self.config.gearbox)
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(_SEED_BOUND))
        self.sim.reset(np.array([0]), [episode_seed])
        self._started = True
        return self._single(self.sim.observe()), {"episode_seed": episode_seed}

    def step(self, action):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        batched = {k: np.asarray(v)[None] for k, v in action.items()} if isinstance(
            action, dict) else action
        controls = spaces.parse_actions(batched, 1, self.config.pedals,
                                        self.config.gearbox)
        reward, terminated, truncated, info = self.sim.step(*controls)
        obs = self._single(self.sim.observe())
        info = {k: v[0].item() for k, v in info.items()}
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return render_mod.frame(self.sim)[0]

    @staticmethod
    def _single(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in obs.items()}


class DrivingVectorEnv(gym.vector.VectorEnv):
    """N driving worlds stepped together, with gymnasium's NEXT_STEP autoreset.

    `info` is a dict of [N] arrays: every weighted reward term under `reward/<name>`, the
    `collision`, `offroad`, `goal_reached` / `is_success` flags, `speed`, the traffic
    violations committed this step under `sum/violation/<name>` (`reward.violations`), the
    metres covered under `sum/distance`, and the running `episode_return` and
    `episode_length` (final values on the step an episode ends).
    """

    metadata: ClassVar[dict] = {
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        config: DrivingConfig | None = None,
        preset: str = "default",
        render_mode: str | None = None,
        **overrides,
    ):
        self.config = config_from(config, preset, overrides)
        self.render_mode = _checked_render_mode(render_mode)
        self.num_envs = int(num_envs)
        self.sim = DrivingSim(self.config, self.num_envs)
        self.single_observation_space = spaces.observation_space(self.config)
        self.single_action_space = spaces.action_space(self.config.pedals, self.config.gearbox)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._seed_rngs: list[np.random.Generator] = []
        self._autoreset = np.zeros(self.num_envs, bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options=None):
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, int | np.integer):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed list must have {self.num_envs} entries, got {len(seeds)}")
        if seed is not None or not self._seed_rngs:
            self._seed_rngs = [np.random.default_rng(s) for s in seeds]
        episode_seeds = [int(rng.integers(_SEED_BOUND)) for rng in self._seed_rngs]
        self.sim.reset(np.arange(self.num_envs), episode_seeds)
        self._autoreset[:] = False
        return self.sim.observe(), {"episode_seed": np.array(episode_seeds, np.uint64)}

    def step(self, actions):
        if not self._seed_rngs:
            raise RuntimeError("call reset() before step()")
        resetting = self._autoreset.copy()
        if resetting.any():
            # Actions of resetting slots are ignored (and may be anything, even NaN).
            actions = {k: np.array(v, copy=True) for k, v in actions.items()}
            for value in actions.values():
                value[resetting] = 0
        controls = spaces.parse_actions(actions, self.num_envs, self.config.pedals,
                                        self.config.gearbox)
        reward, terminated, truncated, info = self.sim.step(*controls)
        if resetting.any():
            ids = np.flatnonzero(resetting)
            self.sim.reset(ids, [int(self._seed_rngs[i].integers(_SEED_BOUND)) for i in ids])
            reward[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
            for value in info.values():
                value[resetting] = 0
        self._autoreset = terminated | truncated
        return self.sim.observe(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return render_mod.frame(self.sim)
