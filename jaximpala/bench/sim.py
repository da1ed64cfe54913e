"""Simulator throughput: our vector env against highway-env (and MetaDrive), side by side.

Measures env-steps per CPU-second of one process (= per core: the simulator is single-threaded
numpy) for our native vector env at several batch sizes, with the full default observation
(camera + lidar + state) and with the camera off, at default traffic (20 vehicles,
10 pedestrians). Peers run in a subprocess of `--peer-python` (a venv where they are
installed) with the same clock. CPU time, not wall time, keeps the figures fair on a shared
machine; ratios compare figures taken in the same run.

Note the step lengths differ: one of our steps is 0.1 s of driving, one highway-fast-v0 step
is 1 s (policy frequency 1 Hz) and one MetaDrive step 0.1 s; ratios are per env-step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

TARGETS = {"camera": 10_000.0, "no_camera": 50_000.0}  # steps/s per core at N=64

# Steps `env` with random actions for SECONDS of CPU time; each peer script defines `env`.
_RANDOM_STEPS = """
env.reset(seed=0)
steps, start = 0, time.process_time()
while time.process_time() - start < SECONDS:
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    steps += 1
    if terminated or truncated:
        env.reset()
print(json.dumps({"steps_per_s": steps / (time.process_time() - start), "steps": steps}))
"""

_HIGHWAY = """
import json, time, gymnasium as gym, highway_env  # noqa
env = gym.make("highway-fast-v0", config={"observation": {"type": "LidarObservation"}})
env.action_space.seed(0)
""" + _RANDOM_STEPS

_METADRIVE = """
import json, time
from metadrive.envs import MetaDriveEnv
env = MetaDriveEnv({"use_render": False, "log_level": 50})
""" + _RANDOM_STEPS

PEERS = {
    "highway-fast-v0 (LidarObservation)": (_HIGHWAY, "pip install highway-env pygame"),
    "MetaDrive (default env)": (_METADRIVE, "pip install metadrive-simulator"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256],
                        help="numbers of envs N in the vector env")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="CPU seconds measured per (N, observation) point")
    parser.add_argument("--peer-seconds", type=float, default=5.0,
                        help="CPU seconds measured per peer")
    parser.add_argument("--peer-python", default=sys.executable,
                        help="python of a venv with the peers installed (default: this one)")
    parser.add_argument("--no-peers", action="store_true", help="measure only our simulator")
    parser.add_argument("--profile", action="store_true",
                        help="also print the top functions of N=64 steps, camera on and off")


def random_driving_actions(num_envs: int, seed: int, *, pedals: str = "separate",
                           gearbox: str = "manual") -> list[dict]:
    """32 batched actions of a random steering/throttle policy (cycled by the benchmark),
    in drive with no signal, laid out for the env's `pedals` and `gearbox` (see
    `spaces.action_space`): with combined pedals the throttle is the one pedal, with an
    automatic gearbox the only discrete action is the signal."""
    import numpy as np

    rng = np.random.default_rng(seed)
    discrete = np.array([0] if gearbox == "automatic" else [2, 0])
    actions = []
    for _ in range(32):
        steer, throttle = rng.uniform(-0.2, 0.2, num_envs), rng.uniform(0.0, 1.0, num_envs)
        columns = [steer, throttle] if pedals == "combined" else [
            steer, throttle, np.zeros(num_envs)]
        actions.append({"continuous": np.stack(columns, axis=1).astype(np.float32),
                        "discrete": np.tile(discrete, (num_envs, 1))})
    return actions


def _started_env(num_envs: int, camera: bool, seed: int):
    """A reset vector env and its benchmark actions, warmed up (first-touch allocations)."""
    from jaximpala.envs.driving.env import DrivingVectorEnv

    env = DrivingVectorEnv(num_envs=num_envs, camera=camera)
    env.reset(seed=seed)
    actions = random_driving_actions(num_envs, seed)
    for action in actions[:5]:
        env.step(action)
    return env, actions


def measure_ours(num_envs: int, camera: bool, seconds: float, seed: int = 0) -> float:
    """Env-steps per CPU-second of our vector env with a random steering/throttle policy."""
    import time

    env, actions = _started_env(num_envs, camera, seed)
    steps, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        env.step(actions[steps % len(actions)])
        steps += 1
    return steps * num_envs / (time.process_time() - start)


def measure_peer(script: str, python: str, seconds: float) -> tuple[float | None, str]:
    """(steps per CPU-second or None, note) of a peer run in a subprocess of `python`."""
    code = f"SECONDS = {seconds!r}\n" + textwrap.dedent(script)
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True,
                              timeout=120 + 4 * seconds)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"could not run: {error}"
    if done.returncode != 0:
        if "ModuleNotFoundError" in done.stderr:
            return None, "not installed"
        if "URLError" in done.stderr:
            return None, "installed, but its first run downloads assets and the network failed"
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return None, lines[-1][:160] if lines else f"exit code {done.returncode}"
    return float(json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"]), "ok"


def profile_step(num_envs: int = 64, steps: int = 300, camera: bool = True) -> str:
    """cProfile summary (top 15 by own CPU time) of `steps` steps of the vector env under the
    benchmark's random policy (its short episodes make resets part of the cost)."""
    import cProfile
    import io
    import pstats
    import time

    env, actions = _started_env(num_envs, camera, seed=0)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for step in range(steps):
        env.step(actions[step % len(actions)])
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def run(args: argparse.Namespace) -> int:
    print(__doc__.splitlines()[0])
    ours = {}
    for camera in (True, False):
        for n in args.sizes:
            ours[(camera, n)] = measure_ours(n, camera, args.seconds)
    peers = {}
    if not args.no_peers:
        for name, (script, install) in PEERS.items():
            rate, note = measure_peer(script, args.peer_python, args.peer_seconds)
            peers[name] = (rate, note if rate is not None else f"{note} [{install}]")

    print(f"\n{'observation':<28}{'N':>6}{'steps/s/core':>15}   ratio vs peers")
    for camera in (True, False):
        label = "camera+lidar+state" if camera else "lidar+state (camera off)"
        for n in args.sizes:
            rate = ours[(camera, n)]
            ratios = ", ".join(
                f"{rate / peer:,.0f}x {name.split()[0]}"
                for name, (peer, _) in peers.items() if peer
            )
            print(f"{label:<28}{n:>6}{rate:>15,.0f}   {ratios}")
    for name, (rate, note) in peers.items():
        shown = f"{rate:,.0f}" if rate else "n/a"
        print(f"{name:<34}{shown:>15}   {note if rate is None else ''}")
    if 64 in args.sizes:
        for key, camera in (("camera", True), ("no_camera", False)):
            got = ours[(camera, 64)]
            verdict = "meets" if got >= TARGETS[key] else "MISSES"
            print(f"target N=64 {key}: {TARGETS[key]:,.0f} steps/s/core -> {got:,.0f} "
                  f"({verdict}, {got / TARGETS[key]:.0%})")
    if args.profile:
        for camera in (True, False):
            label = "default observation" if camera else "camera off"
            print(f"\nProfile of the vector env, {label}, N=64 (own CPU time):")
            print(profile_step(camera=camera))
    return 0
