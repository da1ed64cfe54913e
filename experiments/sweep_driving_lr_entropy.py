"""Learning rate x entropy bonus grid for the default driving config (APPO), 3 seeds per point.

    python experiments/sweep_driving_lr_entropy.py --parallel 2 total_env_steps=300000
    python experiments/sweep_driving_lr_entropy.py --print        # commands for a cluster

Runs land in runs/sweeps/driving_lr_entropy/, grouped in W&B as `driving_lr_entropy`;
the sweep ends with runs/sweeps/driving_lr_entropy/curves.png (mean and 95% band per point).
For `wandb agent` instead, see experiments/wandb_sweep_driving.yaml.
"""

import sys

from jaximpala.sweep import main

AXES = {
    "algo.learning_rate": [3.0e-4, 6.0e-4, 1.2e-3],
    "algo.entropy_coef": [0.003, 0.01, 0.03],
}

if __name__ == "__main__":
    sys.exit(main(None, name="driving_lr_entropy", config="configs/driving_lane_assist.yaml",
                  axes=AXES, description=__doc__.splitlines()[0]))
