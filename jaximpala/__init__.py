"""jaximpala: distributed reinforcement learning in JAX.

This top-level module stays import-light on purpose: `jaximpala.losses` must import in a
process that has only jax, chex and numpy.
"""

__version__ = "0.1.0"
