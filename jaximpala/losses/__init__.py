"""Pure, jit-able RL losses and return estimators (imports only jax, chex and numpy).

Every function is time-major (`[T, B, ...]`), honours a `mask` of valid transitions, and
composes with `jit`, `vmap`, `pmap` and `grad`. Losses return `(loss, metrics)`.
"""

from jaximpala.losses.gae import GAEReturns, gae
from jaximpala.losses.kl import (
    AdaptiveKLState,
    adaptive_kl_init,
    adaptive_kl_update,
    kl_penalty_loss,
    sample_kl,
)
from jaximpala.losses.masking import (
    masked_count,
    masked_fraction,
    masked_max,
    masked_mean,
    masked_min,
    masked_sum,
    masked_var,
)
from jaximpala.losses.normalization import (
    PopArtState,
    RunningMeanStdState,
    normalize_advantages,
    popart_init,
    popart_normalize,
    popart_std,
    popart_unnormalize,
    popart_update,
    running_mean_std_denormalize,
    running_mean_std_init,
    running_mean_std_normalize,
    running_mean_std_update,
)
from jaximpala.losses.policy import (
    entropy_loss,
    importance_weight_metrics,
    policy_gradient_loss,
    ppo_clip_loss,
)
from jaximpala.losses.recurrence import reverse_linear_recurrence
from jaximpala.losses.value import explained_variance, value_loss
from jaximpala.losses.vtrace import VTraceReturns, vtrace

__all__ = [
    "AdaptiveKLState",
    "GAEReturns",
    "PopArtState",
    "RunningMeanStdState",
    "VTraceReturns",
    "adaptive_kl_init",
    "adaptive_kl_update",
    "entropy_loss",
    "explained_variance",
    "gae",
    "importance_weight_metrics",
    "kl_penalty_loss",
    "masked_count",
    "masked_fraction",
    "masked_max",
    "masked_mean",
    "masked_min",
    "masked_sum",
    "masked_var",
    "normalize_advantages",
    "policy_gradient_loss",
    "popart_init",
    "popart_normalize",
    "popart_std",
    "popart_unnormalize",
    "popart_update",
    "ppo_clip_loss",
    "reverse_linear_recurrence",
    "running_mean_std_denormalize",
    "running_mean_std_init",
    "running_mean_std_normalize",
    "running_mean_std_update",
    "sample_kl",
    "value_loss",
    "vtrace",
]
