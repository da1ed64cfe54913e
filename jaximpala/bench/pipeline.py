"""Pipeline throughput: transport vs memcpy and pickle+Redis, actor overhead, end to end.

1. transport: trajectories of the run's real shapes sent over TCP loopback (PUSH ->
   PULL, zero-copy, every message validated on arrival) by one actor process and by A
   into one learner, in GB/s and as a fraction of a raw memcpy of the same bytes measured
   in the same run; against the pickle + Redis design (`pickle.dumps` + RPUSH, BLPOP +
   `pickle.loads`, with the same bound of queued messages) on a redis-server this
   benchmark starts on a free loopback port. Targets: >= 30% of memcpy, >= 3x
   pickle+Redis, judged with A actors: a learner is fed by many, and one TCP stream is
   bounded by its sender's core (the kernel's copy and protocol work happen there).
2. actors: env frames/s arriving at a learner that validates and discards them, from A
   actor processes acting with the real network, vs the raw random-action simulator
   frames/s of A processes of the same vector env, under each random policy (uniform
   samples of the action space; on the driving env also random steering and throttle in
   drive), judged against the one whose episodes end about as often as the actors'.
   Target: >= 0.8. A third peer, A processes acting with the network but sending nothing,
   splits the ratio into the network's cost and the pipeline's.
3. train: end-to-end frames/s of `train_distributed` with A actors, and where the time
   goes (the learner shares the same cores as the actors).

The env and network are `--env`'s defaults (the full observation: camera + LiDAR + state,
CNN encoder), or those of a run config with `--config` (e.g. `configs/driving_lane_assist.yaml`,
the default job: camera off, MLP encoder, LSTM core), so the figures are those of the run
you launch.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import queue
import shutil
import socket
import subprocess
import tempfile
import time
from typing import NamedTuple

TARGETS = {"memcpy_fraction": 0.3, "vs_redis": 3.0, "actor_efficiency": 0.8}
QUEUED = 4  # messages either design may have in flight (ZeroMQ: high-water marks)
BENCH_SEED = 0  # params, actor keys and env seeds of the actor-overhead part


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parts", nargs="+", default=["transport", "actors", "train"],
                        choices=["transport", "actors", "train"])
    parser.add_argument("--env", default="jaximpala/Driving-v0", help="gymnasium env id")
    parser.add_argument("--config", default=None,
                        help="a run config YAML whose env (id, kwargs) and network to use "
                             "instead of --env's defaults")
    parser.add_argument("--num-envs", type=int, default=16, help="N, envs per actor")
    parser.add_argument("--unroll-length", type=int, default=32, help="T")
    parser.add_argument("--actors", type=int, default=2, help="A, actor processes")
    parser.add_argument("--messages", type=int, default=400,
                        help="trajectories sent per transport measurement")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measurement window of the actor-overhead part")
    parser.add_argument("--updates", type=int, default=20, help="updates of the train part")
    parser.add_argument("--batch-size", type=int, default=32, help="B of the train part")
    parser.add_argument("--redis-server", default=shutil.which("redis-server"),
                        help="redis-server binary (default: from PATH)")


# --- shared -----------------------------------------------------------------------------

def _env_and_network(args):
    """`(EnvConfig, NetworkConfig | None)` of the benchmarked run, with N = `--num-envs`."""
    from jaximpala.config import EnvConfig, load_config

    if args.config is None:
        return EnvConfig(id=args.env, num_envs=args.num_envs), None
    config = load_config(args.config)
    return EnvConfig(id=config.env.id, num_envs=args.num_envs,
                     kwargs=config.env.kwargs), config.network


def _example_arrays(args) -> dict:
    """The flat `name -> array` message of one real unroll of the benchmarked env."""
    import jax

    from jaximpala.config import AlgoConfig
    from jaximpala.inline import agent_for_env
    from jaximpala.runtime import example_trajectory

    env, network = _env_and_network(args)
    agent = agent_for_env(env.id, env.kwargs, network)
    trajectory = example_trajectory(env, AlgoConfig(unroll_length=args.unroll_length),
                                    agent, agent.init(jax.random.key(0)), seed=0)
    leaves = jax.tree_util.tree_flatten_with_path(trajectory)[0]
    return {jax.tree_util.keystr(path): jax.device_get(leaf) for path, leaf in leaves}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(path: str) -> dict:
    import numpy as np

    with np.load(path) as data:
        return {name: data[name] for name in data.files}


# --- 1. transport -----------------------------------------------------------------------

def _zmq_sender(path: str, endpoint: str, count: int, ready) -> None:
    import zmq

    from jaximpala.transport.codec import encode
    from jaximpala.transport.sockets import TRAJECTORY_HWM, make_socket, trajectory_socket_buffer

    arrays = _load(path)
    meta = {"actor_id": 0, "incarnation": 0, "sequence": 0, "policy_version": 0}
    context = zmq.Context()
    nbytes = sum(a.nbytes for a in arrays.values())
    push = make_socket(context, zmq.PUSH, hwm=TRAJECTORY_HWM,
                       kernel_buffer=trajectory_socket_buffer(nbytes), timeout_ms=60_000)
    push.connect(endpoint)
    ready.wait()
    for sequence in range(count):
        push.send_multipart(encode(arrays, {**meta, "sequence": sequence}), copy=False)
    push.close(linger=60_000)
    context.term()


def _redis_sender(path: str, port: int, count: int, ready) -> None:
    import redis

    arrays = _load(path)
    client = redis.Redis(port=port)
    ready.wait()
    for _ in range(count):
        while client.llen("trajectories") >= QUEUED:
            time.sleep(0.0005)
        client.rpush("trajectories", pickle.dumps(arrays, protocol=pickle.HIGHEST_PROTOCOL))


def _spawn(target, *args):
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def _receive_rate(count: int, senders: int, payload_bytes: int, sender, args: tuple,
                  receive_one) -> float:
    """Bytes/s received from `senders` processes running `sender(*args, count // senders,
    ready)`, released together once all of them are connected (spawning one takes longer
    than sending the whole run), timed from the first message's arrival."""
    each = count // senders
    ready = multiprocessing.get_context("spawn").Barrier(senders + 1)
    processes = [_spawn(sender, *args, each, ready) for _ in range(senders)]
    ready.wait(timeout=300)
    receive_one()
    start = time.perf_counter()
    for _ in range(each * senders - 1):
        receive_one()
    seconds = time.perf_counter() - start
    for process in processes:
        process.join()
    return (each * senders - 1) * payload_bytes / seconds


def measure_zmq(path: str, spec, count: int, senders: int = 1) -> float:
    """Bytes/s of validated trajectories from `senders` processes over TCP loopback, into
    one PULL socket with the learner's ZeroMQ I/O threads."""
    import zmq

    from jaximpala.config import RuntimeConfig
    from jaximpala.transport.codec import decode
    from jaximpala.transport.sockets import (
        TRAJECTORY_HWM,
        bind,
        make_socket,
        trajectory_socket_buffer,
    )

    context = zmq.Context(io_threads=RuntimeConfig().io_threads)
    pull = make_socket(context, zmq.PULL, hwm=TRAJECTORY_HWM, timeout_ms=60_000,
                       kernel_buffer=trajectory_socket_buffer(spec.payload_bytes),
                       max_message_bytes=spec.max_message_bytes)
    endpoint = bind(pull, "127.0.0.1", 0)
    rate = _receive_rate(count, senders, spec.payload_bytes, _zmq_sender, (path, endpoint),
                         lambda: decode(pull.recv_multipart(copy=False), spec))
    pull.close(linger=0)
    context.term()
    return rate


def measure_redis(path: str, payload_bytes: int, count: int, server: str | None,
                  senders: int = 1) -> tuple[float | None, str]:
    """Bytes/s of pickled trajectories from `senders` processes through Redis, or None
    and why not."""
    if server is None:
        return None, "skipped: redis-server not found (apt-get install redis-server)"
    try:
        import redis
    except ImportError:
        return None, "skipped: the redis client is not installed (pip install redis)"
    port = _free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    return None, "skipped: redis-server did not start"
                time.sleep(0.05)
        rate = _receive_rate(
            count, senders, payload_bytes, _redis_sender, (path, port),
            lambda: pickle.loads(client.blpop(["trajectories"], timeout=60)[1]))
        return rate, "ok"
    finally:
        process.terminate()
        process.wait()


def measure_memcpy(nbytes: int, count: int) -> float:
    """Bytes/s of one thread copying a message-sized buffer `count` times.

    The same bytes as the transport measurement, timed over the whole run rather than as a
    best case, so both see the same share of a loaded machine.
    """
    import numpy as np

    source = np.random.default_rng(0).integers(0, 255, nbytes, dtype=np.uint8)
    target = np.empty_like(source)
    np.copyto(target, source)  # first touch of the target's pages
    start = time.perf_counter()
    for _ in range(count):
        np.copyto(target, source)
    return count * nbytes / (time.perf_counter() - start)


def bench_transport(args) -> dict:
    """Both designs with one actor, and with A actors into one learner (as deployed)."""
    import numpy as np

    from jaximpala.transport.codec import MessageSpec
    from jaximpala.transport.trajectories import TrajectoryCodec  # noqa: F401

    arrays = _example_arrays(args)
    spec = MessageSpec.from_example(arrays, meta_fields=(
        "actor_id", "incarnation", "sequence", "policy_version"), finite=(".rewards",))
    result = {"message_bytes": spec.payload_bytes, "actors": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trajectory.npz")
        np.savez(path, **arrays)
        memcpy = measure_memcpy(spec.payload_bytes, args.messages)
        for senders in sorted({1, args.actors}):
            zmq_rate = measure_zmq(path, spec, args.messages, senders)
            redis_rate, note = measure_redis(path, spec.payload_bytes, args.messages,
                                             args.redis_server, senders)
            row = {"zmq_GBps": zmq_rate / 1e9, "zmq_fraction_of_memcpy": zmq_rate / memcpy,
                   "redis_note": note}
            if redis_rate is not None:
                row.update(redis_GBps=redis_rate / 1e9, zmq_vs_redis=zmq_rate / redis_rate)
            result["actors"][senders] = row
    return {**result, "memcpy_GBps": memcpy / 1e9, "judged_on_actors": args.actors,
            **result["actors"][args.actors]}


# --- 2. actor overhead ------------------------------------------------------------------

RAW_POLICIES = ("uniform", "driving")


class RawRate(NamedTuple):
    """Random-action simulator throughput and how often its episodes end."""

    frames_per_s: float
    episodes_per_1k_frames: float


def _random_actions(env, policy: str) -> list:
    """32 batched actions to cycle through. `uniform`: the action space's own samples (on
    the driving env a random gear and brake mostly keep the car parked, so episodes almost
    never end); `driving`: the simulator benchmark's random steering and throttle in drive
    (`jaximpala bench sim`), whose episodes end about as often as an acting network's."""
    if policy == "driving":
        from jaximpala.bench.sim import random_driving_actions

        config = env.unwrapped.config
        return random_driving_actions(env.num_envs, seed=0, pedals=config.pedals,
                                      gearbox=config.gearbox)
    env.action_space.seed(0)
    return [env.action_space.sample() for _ in range(32)]


def _random_steps(env, policy: str, seconds: float, results) -> None:
    """(frames/s, episodes per 1,000 frames) of one single-threaded process stepping the
    vector env with `policy`'s random actions."""
    from jaximpala.actor import _SINGLE_THREAD_ENV

    os.environ.update(_SINGLE_THREAD_ENV)
    import jaximpala.envs  # noqa: F401
    from jaximpala.inline import make_vector_env

    num_envs = env.num_envs
    env = make_vector_env(env.id, env.num_envs, env.kwargs)
    env.reset(seed=0)
    actions = _random_actions(env, policy)
    steps, episodes, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(actions[steps % len(actions)])
        episodes += int((terminated | truncated).sum())
        steps += 1
    results.put(RawRate(steps * num_envs / (time.perf_counter() - start),
                        1000.0 * episodes / (steps * num_envs)))
    env.close()


def _in_processes(target, arguments: list[tuple]) -> list:
    """What each of the concurrent spawned processes `target(*arguments[i], results)` puts
    on `results`."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=target, args=(*process_args, results))
                 for process_args in arguments]
    for process in processes:
        process.start()
    values, deadline = [], time.monotonic() + 600
    while len(values) < len(processes):
        try:
            values.append(results.get(timeout=1.0))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                for process in processes:
                    process.kill()
                why = f"ended with code {failed[0]}" if failed else "gave no result in 600 s"
                raise RuntimeError(f"{target.__name__}: a benchmark process {why}") from None
    for process in processes:
        process.join()
    return values


def measure_raw_simulator(args, policy: str) -> RawRate:
    """Summed frames/s and mean episodes per 1,000 frames of A concurrent processes stepping
    the env with `policy`'s random actions."""
    rates = _in_processes(_random_steps, [(_env_and_network(args)[0], policy, args.seconds)]
                          * args.actors)
    return RawRate(sum(r.frames_per_s for r in rates),
                   sum(r.episodes_per_1k_frames for r in rates) / len(rates))


class ActingRate(NamedTuple):
    """Acting throughput, how often episodes end, and microseconds per env step spent in
    the simulator, in the network (`act` and fetching its output) and in the rest."""

    frames_per_s: float
    episodes_per_1k_frames: float
    env_us: float
    network_us: float
    other_us: float


def _acting_steps(spec, seconds: float, results) -> None:
    """`ActingRate` of one single-threaded process collecting unrolls as the actor of
    `spec` does (`actor.make_collector`), acting with the params `measure_actors`
    publishes, with no sockets: an actor's work before it streams."""
    from jaximpala.actor import _SINGLE_THREAD_ENV

    os.environ.update(_SINGLE_THREAD_ENV)
    import jax

    from jaximpala.actor import make_collector

    agent, collector, _ = make_collector(spec)
    params = agent.init(jax.random.key(BENCH_SEED))
    collector.collect(params, 0)  # compiles `act`
    frames = episodes = env_seconds = network_seconds = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        stats = collector.collect(params, 0)[1]
        episodes += len(stats.episodes)
        env_seconds += stats.env_seconds
        network_seconds += stats.inference_seconds
        frames += stats.env_steps
    elapsed = time.perf_counter() - start
    results.put(ActingRate(frames / elapsed, 1000.0 * episodes / frames,
                           1e6 * env_seconds / frames, 1e6 * network_seconds / frames,
                           1e6 * (elapsed - env_seconds - network_seconds) / frames))
    collector.env.close()


def measure_acting(args) -> ActingRate:
    """`ActingRate` of A concurrent processes acting as the A actors of `measure_actors`
    do (same ids, seed and so keys and env seeds), without streaming: frames/s summed, the
    rest averaged over the processes."""
    from types import SimpleNamespace

    from jaximpala.config import AlgoConfig, RuntimeConfig
    from jaximpala.runtime import actor_specs

    (env, network), algo = _env_and_network(args), AlgoConfig(unroll_length=args.unroll_length)
    runtime = RuntimeConfig(mode="distributed", num_actors=args.actors)
    no_sockets = SimpleNamespace(all_trajectory_endpoints=(), report_endpoint="",
                                 params_endpoints=("", ""))  # the specs' endpoints go unused
    spec_for = actor_specs(env, algo, network, BENCH_SEED, no_sockets, runtime)
    specs = [spec_for(slot, 0) for slot in range(args.actors)]
    rates = _in_processes(_acting_steps, [(spec, args.seconds) for spec in specs])
    means = {name: sum(getattr(r, name) for r in rates) / len(rates)
             for name in ActingRate._fields[1:]}
    return ActingRate(sum(r.frames_per_s for r in rates), **means)


def measure_actors(args) -> tuple[float, float]:
    """(frames/s, episodes per 1,000 frames) arriving from A real actors at a learner that
    validates and discards."""
    import jax
    import zmq

    from jaximpala.config import AlgoConfig, RuntimeConfig
    from jaximpala.inline import agent_for_env
    from jaximpala.runtime import (
        LearnerSockets,
        actor_specs,
        example_trajectory,
        make_supervisor,
    )
    from jaximpala.transport.trajectories import TrajectoryCodec

    (env, network), algo = _env_and_network(args), AlgoConfig(unroll_length=args.unroll_length)
    agent = agent_for_env(env.id, env.kwargs, network)
    params = agent.init(jax.random.key(BENCH_SEED))
    codec = TrajectoryCodec(example_trajectory(env, algo, agent, params, seed=BENCH_SEED))
    runtime = RuntimeConfig(mode="distributed", num_actors=args.actors)
    sockets = LearnerSockets(runtime, codec)
    sockets.params.publish(0, params)
    supervisor = make_supervisor(
        actor_specs(env, algo, network, BENCH_SEED, sockets, runtime), runtime)
    supervisor.start()
    try:
        frames_per_message = args.unroll_length * args.num_envs
        poller = zmq.Poller()
        poller.register(sockets.trajectories, zmq.POLLIN)
        poller.register(sockets.reports, zmq.POLLIN)
        started, counted, episodes, start = set(), 0, 0, None
        while start is None or time.perf_counter() - start < args.seconds:
            ready = dict(poller.poll(100))
            if sockets.reports in ready:
                sockets.reports.recv()
            if sockets.trajectories in ready:
                trajectory, meta = codec.decode(
                    sockets.trajectories.recv_multipart(copy=False))
                started.add(meta["actor_id"])
                if start is not None:
                    counted += frames_per_message
                    # starts[0] repeats the previous unroll's last entry
                    episodes += int(trajectory.episode_starts[1:].sum())
                elif len(started) == args.actors:  # every actor is past its compile
                    start = time.perf_counter()
        return counted / (time.perf_counter() - start), 1000.0 * episodes / max(counted, 1)
    finally:
        supervisor.stop()
        sockets.close()


def bench_actors(args) -> dict:
    """Arriving frames/s against the raw simulator under each random policy that applies,
    split into what acting costs and what streaming costs.

    The raw side runs the same env with no network, so its cost depends on how often its
    episodes reset (a reset generates a scenario; on the driving env that is about a fifth
    of a step's cost at the actors' reset rate). The ratio is judged against the random
    policy whose episodes per frame are nearest the actors', so that it measures what
    acting and streaming cost, not a difference between workloads. Both are reported.
    A third peer, A processes acting with the real network but sending nothing, splits the
    ratio: `acting / raw` is the network's share, `arriving / acting` the pipeline's
    (encoding, sockets, the learner's validation on the same cores).
    """
    from jaximpala.envs.driving.registration import ENV_IDS as DRIVING_ENV_IDS

    env = _env_and_network(args)[0]
    policies = RAW_POLICIES if env.id in DRIVING_ENV_IDS else ("uniform",)
    # Each peer is taken before and after the actors run and averaged, so a change of
    # background load during the run biases neither side.
    before = {policy: measure_raw_simulator(args, policy) for policy in policies}
    acting_before = measure_acting(args)
    arriving, arriving_episodes = measure_actors(args)
    acting = ActingRate(*((b + a) / 2 for b, a in zip(acting_before, measure_acting(args),
                                                      strict=True)))
    after = {policy: measure_raw_simulator(args, policy) for policy in policies}
    raw = {policy: {"frames_per_s": (before[policy].frames_per_s
                                     + after[policy].frames_per_s) / 2,
                    "before_after": [before[policy].frames_per_s, after[policy].frames_per_s],
                    "episodes_per_1k_frames": (before[policy].episodes_per_1k_frames
                                               + after[policy].episodes_per_1k_frames) / 2}
           for policy in policies}
    nearest = min(policies, key=lambda policy: abs(
        raw[policy]["episodes_per_1k_frames"] - arriving_episodes))
    return {"raw_simulator": raw, "arriving_frames_per_s": arriving,
            "arriving_episodes_per_1k_frames": arriving_episodes,
            **{f"acting_{name}": value for name, value in acting._asdict().items()},
            "efficiency": {policy: arriving / raw[policy]["frames_per_s"]
                           for policy in policies},
            "judged_against": nearest,
            "actor_efficiency": arriving / raw[nearest]["frames_per_s"],
            "acting_over_raw": acting.frames_per_s / raw[nearest]["frames_per_s"],
            "arriving_over_acting": arriving / acting.frames_per_s}


# --- 3. end to end ----------------------------------------------------------------------

def bench_train(args) -> dict:
    from jaximpala.config import AlgoConfig, RuntimeConfig
    from jaximpala.runtime import train_distributed

    env, network = _env_and_network(args)
    algo = AlgoConfig(unroll_length=args.unroll_length, batch_size=args.batch_size)
    ends = []
    result = train_distributed(
        env, algo, RuntimeConfig(mode="distributed", num_actors=args.actors),
        total_env_steps=args.updates * args.unroll_length * args.batch_size, seed=0,
        network=network, on_update=lambda m: ends.append(time.perf_counter()))
    steady = result.updates[1:]  # the first update includes compiling it
    seconds = ends[-1] - ends[0]

    def total(key):
        return sum(m.get(key, 0.0) for m in steady)

    return {
        "frames_per_s": len(steady) * args.unroll_length * args.batch_size / seconds,
        "seconds": seconds,
        "learner_update_fraction": total("update_seconds") / seconds,
        "learner_data_wait_fraction": total("data_wait_seconds") / seconds,
        "batch_prepare_seconds_per_update": total("batch_prepare_seconds") / len(steady),
        "actor_env_step_seconds": total("env_step_seconds"),
        "actor_inference_seconds": total("inference_seconds"),
        "policy_lag_mean": sum(m["policy_lag_mean"] for m in steady) / len(steady),
    }


def _verdict(value: float, target: float) -> str:
    return f"{value:.2f} (target >= {target}: {'met' if value >= target else 'NOT met'})"


def run(args) -> int:
    results = {}
    if "transport" in args.parts:
        t = results["transport"] = bench_transport(args)
        print(f"transport: {t['message_bytes'] / 1e6:.2f} MB trajectories, memcpy "
              f"{t['memcpy_GBps']:.2f} GB/s")
        for senders, row in t["actors"].items():
            judged = senders == t["judged_on_actors"]
            fraction = row["zmq_fraction_of_memcpy"]
            print(f"  {senders} actor(s) -> learner: ZeroMQ {row['zmq_GBps']:.2f} GB/s = "
                  + (f"{_verdict(fraction, TARGETS['memcpy_fraction'])} of memcpy" if judged
                     else f"{fraction:.2f} of memcpy"))
            if "redis_GBps" in row:
                ratio = row["zmq_vs_redis"]
                print(f"    pickle+Redis {row['redis_GBps']:.2f} GB/s; ZeroMQ / Redis = "
                      + (_verdict(ratio, TARGETS["vs_redis"]) if judged else f"{ratio:.2f}"))
            else:
                print(f"    pickle+Redis {row['redis_note']}")
    if "actors" in args.parts:
        a = results["actors"] = bench_actors(args)
        print(f"actors (A={args.actors}, N={args.num_envs}): arriving at the learner "
              f"{a['arriving_frames_per_s']:.0f} frames/s, "
              f"{a['arriving_episodes_per_1k_frames']:.1f} episodes per 1k frames")
        for policy, raw in a["raw_simulator"].items():
            print(f"  raw simulator, {policy} random actions: {raw['frames_per_s']:.0f} "
                  f"frames/s, {raw['episodes_per_1k_frames']:.1f} episodes per 1k frames; "
                  f"arriving / raw = {a['efficiency'][policy]:.2f}")
        print(f"  actor efficiency (against {a['judged_against']}, the nearest episode "
              f"rate) = {_verdict(a['actor_efficiency'], TARGETS['actor_efficiency'])}")
        print(f"  = acting with the network, sending nothing, "
              f"{a['acting_frames_per_s']:.0f} frames/s "
              f"({a['acting_episodes_per_1k_frames']:.1f} episodes per 1k frames): "
              f"{a['acting_over_raw']:.2f} of raw "
              f"(the network's cost) x arriving / acting {a['arriving_over_acting']:.2f} "
              f"(the pipeline's cost)")
        print(f"  per env step of one acting process: simulator {a['acting_env_us']:.1f} us, "
              f"network {a['acting_network_us']:.1f} us, the rest {a['acting_other_us']:.1f} us")
    if "train" in args.parts:
        e = results["train"] = bench_train(args)
        print(f"train (A={args.actors}, T={args.unroll_length}, B={args.batch_size}): "
              f"{e['frames_per_s']:.0f} frames/s; learner busy "
              f"{e['learner_update_fraction']:.0%}, waiting for data "
              f"{e['learner_data_wait_fraction']:.0%}; actors spent "
              f"{e['actor_env_step_seconds']:.1f} s stepping envs and "
              f"{e['actor_inference_seconds']:.1f} s in inference; mean policy lag "
              f"{e['policy_lag_mean']:.1f}")
    print(json.dumps(results))
    return 0
