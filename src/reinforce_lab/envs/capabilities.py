"""What a vector env can do, as the env declares it in its ``metadata``.

The collector needs to know two things about a vector env beyond gymnasium's API, and
asks the env rather than checking its class (so a new env, or a wrapper, only has to say
what it can do):

- ``rlab.partial_reset``: ``envs.reset(options={"reset_mask": m})`` resets only the
  copies in ``m`` (what agents that do not wait for each other need);
- ``rlab.per_copy_seeds``: ``envs.reset(seed=[s_0, …, s_{n-1}])`` seeds every copy with
  its own seed (one RNG per copy), so that an agent's episodes are bit for bit those of a
  separate run. Without it the collector passes one seed (a native numpy vector env has
  one RNG for all copies).

:func:`reinforce_lab.envs.make_vec_env` declares both on the sync/async envs it builds;
:class:`~reinforce_lab.envs.ShortCorridorVectorEnv` declares partial reset in its class
``metadata``; :class:`~reinforce_lab.envs.envpool_env.EnvpoolVectorEnv` declares per-copy seeds
but no partial reset (envpool fixes seeds when a pool is made: reseeding one copy would restart
all of them). A vector env built by hand can declare them with :func:`declare`.
"""

from __future__ import annotations

from gymnasium.vector import AutoresetMode, VectorEnv

PARTIAL_RESET = "rlab.partial_reset"
PER_COPY_SEEDS = "rlab.per_copy_seeds"


def declare(envs: VectorEnv, *, partial_reset: bool = False, per_copy_seeds: bool = False) -> VectorEnv:
    """Record what ``envs`` can do in its metadata (a new dict: never the class's shared one)."""
    envs.metadata = {**envs.metadata, PARTIAL_RESET: bool(partial_reset), PER_COPY_SEEDS: bool(per_copy_seeds)}
    return envs


def supports_partial_reset(envs: VectorEnv) -> bool:
    """Whether asynchronous agents can use these envs: ``envs.reset(options={"reset_mask": m})``
    resets only the copies in ``m``, and episodes end with a same-step auto-reset."""
    same_step = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) == AutoresetMode.SAME_STEP
    return same_step and bool(envs.metadata.get(PARTIAL_RESET, False))


def seeds_each_copy(envs: VectorEnv) -> bool:
    """Whether ``envs.reset(seed=[...])`` takes one seed per copy (see the module docstring)."""
    return bool(envs.metadata.get(PER_COPY_SEEDS, False))
