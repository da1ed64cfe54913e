"""Gymnasium registration of the driving env ids (one per preset)."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "jaximpala/Driving-v0": "default",
    "jaximpala/Driving-easy-v0": "easy",
    "jaximpala/Driving-hard-v0": "hard",
}


def register_envs() -> None:
    """Register every id in ENV_IDS (idempotent: ids already registered are left alone)."""
    for env_id, preset_name in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="jaximpala.envs.driving.env:DrivingEnv",
            vector_entry_point="jaximpala.envs.driving.env:DrivingVectorEnv",
            kwargs={"preset": preset_name},
            disable_env_checker=False,
        )
