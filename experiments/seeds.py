"""The same config over several seeds (reporting uses several seeds by default).

    python experiments/seeds.py --config configs/cartpole_impala.yaml --seeds 5
    python experiments/seeds.py --config configs/debug.yaml --seeds 3 --name debug_seeds

Runs land in runs/sweeps/<name>/, grouped in W&B as <name>; the script ends with
runs/sweeps/<name>/curves.png: the mean over seeds and its 95% confidence band.
"""

import sys

from jaximpala.sweep import main

if __name__ == "__main__":
    sys.exit(main(None, name="seeds", config="configs/driving_lane_assist.yaml", axes={},
                  description=__doc__.splitlines()[0], seeds=5))
