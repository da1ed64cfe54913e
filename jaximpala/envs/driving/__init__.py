"""The driving simulator: procedural roads, traffic, pedestrians, sensors and rewards.

Importing this package registers the gymnasium ids `jaximpala/Driving-v0` (the `default`
preset), `jaximpala/Driving-easy-v0` and `jaximpala/Driving-hard-v0`. Each has a single-env
entry point (`gymnasium.make`) and a native vector entry point
(`gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")`).
"""

from jaximpala.envs.driving.config import PRESETS, DrivingConfig, RewardWeights, preset
from jaximpala.envs.driving.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "PRESETS", "DrivingConfig", "RewardWeights", "preset", "register_envs"]
