"""Environments. Importing `jaximpala.envs` registers every gymnasium id the project offers."""

from jaximpala.envs import driving  # noqa: F401  (registers the driving ids)
