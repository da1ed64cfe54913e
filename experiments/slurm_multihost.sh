#!/bin/bash
# Multi-host jaximpala: one learner process per node (all of its GPUs), each starting its
# own CPU actors; gradients are averaged over every GPU of every node with jax.distributed.
# Submit with: sbatch experiments/slurm_multihost.sh [extra key.path=value overrides]
#SBATCH --job-name=jaximpala
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
# SIGTERM to every learner 3 minutes before the time limit: they stop together after the
# update in progress and write a checkpoint (resume with --resume RUN_DIR).
#SBATCH --signal=TERM@180
set -euo pipefail

# Node 0 runs the jax.distributed coordinator and publishes params to every actor.
nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
export JAXIMPALA_COORDINATOR_ADDRESS="${nodes[0]}:12355"
# SLURM_NTASKS and SLURM_PROCID give each learner its process count and id.
learner_hosts=$(IFS=,; echo "${nodes[*]}")

# Encrypt and authenticate the sockets between nodes (a shared directory, made once).
keys="${JAXIMPALA_KEYS:-$HOME/.jaximpala/keys}"
[ -f "$keys/server.key" ] || jaximpala keys "$keys"

# Actors: leave a few cores to the learner's input pipeline.
actors=$((SLURM_CPUS_PER_TASK - 4))

# One run directory for every learner (on a shared file system): process 0 writes the
# checkpoints there, and a resume (`--resume runs/slurm-<job id>` in the srun line) finds them.
srun jaximpala train --config configs/driving_appo.yaml \
    run_dir="runs/slurm-$SLURM_JOB_ID" \
    runtime.mode=distributed \
    runtime.num_actors="$actors" \
    runtime.host=0.0.0.0 \
    runtime.learner_hosts="[$learner_hosts]" \
    runtime.trajectory_port=5555 \
    runtime.params_port=5600 \
    runtime.params_request_port=5601 \
    runtime.curve_keys_dir="$keys" \
    "$@"
