"""Runs a script in a subprocess that sees two fake CPU devices.

XLA_FLAGS must be set before jax is imported, hence the subprocess.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_with_two_devices(script: str, timeout: int = 600) -> str:
    """Runs `script` with `python -c` from the repository root; returns its stdout."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout
