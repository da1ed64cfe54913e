"""End to end: `jaximpala train` on the default driving config learns to drive (slow).

Trains the default config (`configs/driving_lane_assist.yaml`) as the README's first command
does (`easy` preset with lane assist, an automatic gearbox and one pedal; APPO with an LSTM
core, inline, 2M env steps; ~9-15 minutes on 2 cores), then compares the end-of-training
evaluation with the scripted baseline driver, given the same assists, on the same 32
held-out scenarios. The bar is the project's: at least the baseline's success rate (six
seeds of this config, 0-4 and 6, drove all 32, and all of the 100 held-out routes that
`jaximpala eval` drives, sampled; experiments/README.md, run 79), and no more collisions than
it, so a regression in learning fails it.
"""

import json

import pytest

from jaximpala.cli import main
from jaximpala.config import load_config
from jaximpala.evaluation import evaluate_baseline


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_the_default_config_learns_to_drive_on_easy(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", f"run_dir={run_dir}",
                 "logging.wandb_mode=disabled", "eval.video_steps=0"]) == 0
    learned = json.loads(capsys.readouterr().out.strip().splitlines()[-2])["eval"]
    config = load_config(run_dir / "config.yaml")
    baseline = evaluate_baseline(config.env.id, config.env.kwargs,
                                 episodes=config.eval.episodes, seed=config.eval.seed,
                                 num_envs=config.eval.num_envs)
    print(f"learned: success {learned['success_rate']:.2f}, collisions "
          f"{learned['collision_rate']:.2f}; baseline: success {baseline['success_rate']:.2f}, "
          f"collisions {baseline['collision_rate']:.2f}")
    assert learned["episodes"] == baseline["episodes"] == config.eval.episodes
    assert learned["success_rate"] >= baseline["success_rate"]
    assert learned["collision_rate"] <= baseline["collision_rate"]
