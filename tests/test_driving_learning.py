"""End to end: `jaximpala train` on the default driving config learns to drive (slow).

Trains `configs/driving_impala.yaml` as the README's first command does (`easy` preset,
IMPALA, inline; ~4 minutes at ~7,000 frames/s on 2 cores), then compares the end-of-training
evaluation with the scripted baseline driver on the same held-out scenarios. The floor is
the success rate the config reaches today with a margin (see experiments/README.md), so a
regression in learning fails it; the issue's bar (at least the baseline's success rate) is
printed alongside.
"""

import json

import pytest

from jaximpala.cli import main
from jaximpala.config import load_config
from jaximpala.evaluation import baseline_policy, evaluate
from jaximpala.inline import make_vector_env

SUCCESS_FLOOR = 0.5
COLLISION_CEILING = 0.4


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_the_default_config_learns_to_drive_on_easy(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--config", "driving_impala", f"run_dir={run_dir}",
                 "logging.wandb_mode=disabled", "eval.video_steps=0"]) == 0
    learned = json.loads(capsys.readouterr().out.strip().splitlines()[-2])["eval"]
    config = load_config(run_dir / "config.yaml")
    env = make_vector_env(config.env.id, config.eval.num_envs, config.env.kwargs)
    try:
        baseline = evaluate(env, baseline_policy(env), config.eval.episodes, config.eval.seed)
    finally:
        env.close()
    print(f"learned: success {learned['success_rate']:.2f}, collisions "
          f"{learned['collision_rate']:.2f}; baseline: success {baseline['success_rate']:.2f}, "
          f"collisions {baseline['collision_rate']:.2f}")
    assert learned["episodes"] == baseline["episodes"] == config.eval.episodes
    assert learned["success_rate"] >= SUCCESS_FLOOR
    assert learned["collision_rate"] <= COLLISION_CEILING
