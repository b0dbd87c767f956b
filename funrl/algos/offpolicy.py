"""The off-policy family's machinery, written once: DQN, SAC, TD3 and DDPG are recipes over it.

One ``update`` of every off-policy algorithm is::

    collect  train_freq collector steps: the policy acts in num_envs envs and each step's
             rows go into the replay buffer (written in place: the buffer is donated)
    learn    gradient_steps learning steps: sample a batch, take the algorithm's step, keep
             its result only while learning (env steps >= learning_starts, a full batch)
    finish   episode statistics of the update's collector steps

so one update takes ``num_envs * train_freq`` env steps and ``gradient_steps`` gradient
steps.  ``collect_steps_per_call`` / ``learn_steps_per_call`` fuse that many steps into one
call of a unit (one compiled graph): a compiled call costs ~100 us of host overhead, as
much as a small network's gradient step.  Before learning starts the learn unit still runs,
on a placeholder batch, and its result is discarded with ``torch.where``: the arithmetic is
the same every update, so members of a vmapped population stay in lockstep.

A recipe (see :mod:`funrl.algos.dqn`) hands :func:`make_update` its parts:

* ``policy(pp, obs, key) -> (action, extras)`` with ``pp = policy_params(state, hp)``;
* ``to_rows(state, transition, hp) -> (state, rows, mask)``: what one env step stores
  (:func:`plain_rows` by default; DQN's n-step window keeps state of its own);
* ``learn_step(state, batch, keys, hp, variant) -> Step``: one gradient step from the
  sampled ``batch`` with ``num_keys`` fresh keys; ``variant`` is the static
  ``step_variant(j)`` of gradient step ``j`` of an update (e.g. whether TD3's actor steps).

Example: the pieces a recipe reuses::

    >>> import torch
    >>> soft_update({"w": torch.zeros(2)}, {"w": torch.ones(2)}, 0.25)["w"].tolist()
    [0.25, 0.25]
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import torch

from funrl import buffers, collectors, tree
from funrl import random as R
from funrl.algos.common import (
    EnvStack,
    PresetConfig,
    check_units,
    episode_metrics,
)
from funrl.algos.units import UnitTransform
from funrl.envs.spaces import Box, Discrete
from funrl.envs.thread_vector import check_vectorization

__all__ = [
    "Config",
    "Step",
    "TrainState",
    "check_obs_storage",
    "decode_obs",
    "encode_obs",
    "init_buffer",
    "learning_mask",
    "make_update",
    "mask_metrics",
    "new_state",
    "plain_example",
    "plain_rows",
    "sample_batch",
    "soft_update",
]

EPISODE_KEYS = ("episode_done", "episode_return", "episode_length")
#: ``Config.obs_storage``'s choices.
OBS_STORAGES = ("float32", "uint8")
_OBS_KEYS = ("obs", "next_obs")


@dataclasses.dataclass(frozen=True)
class Config(PresetConfig):
    """Static settings every off-policy algorithm shares; each algorithm's Config extends it.

    Attributes:
      env: a registered env id (``funrl.envs.registered()``).
      num_envs: parallel envs; one collector step takes ``num_envs`` env steps.
      train_freq: collector steps per update.
      gradient_steps: gradient steps per update (UTD ratio ``gradient_steps /
        (num_envs * train_freq)``); 0 collects only.
      buffer_size: replay capacity in transitions.
      batch_size: transitions per gradient step.
      learning_starts: env steps (over all envs) before the first gradient step (the
        algorithms act uniformly at random until then).
      total_timesteps: training length in env steps (sets ``num_updates`` and schedules).
      hidden, activation: the default networks' MLP widths and activation.
      donate_buffer: write the replay buffer in place (as JAX's buffer donation does):
        ``update`` consumes its input state's buffer, so keep no reference to an old
        state's buffer; ``False`` copies it on every write (fully pure, slower).
      collect_steps_per_call: collector steps fused into one unit call (divides
        ``train_freq``).
      learn_steps_per_call: gradient steps fused into one unit call (divides
        ``gradient_steps``): fewer calls, a larger graph to compile.
      obs_storage: how the replay buffer keeps ``obs`` and ``next_obs``: ``"float32"`` as
        the env gives them, or ``"uint8"``: as 8-bit levels ``k / 255`` (Atari and EnvPool
        frames, MinAtar's 0/1 maps), a quarter of the memory and of the sampling traffic,
        decoded to the very same float32 values (:func:`encode_obs`).  ``make`` raises
        ``ValueError`` for an env whose observation space is not a ``Box`` within [0, 1]
        (:func:`check_obs_storage`), and other values raise it when stored eagerly.
      host_vectorization: how a host env's ``num_envs`` members step (``gym:``, ``atari:``
        and ``dmc:`` ids): ``"sync"`` one after another, ``"thread"`` in shards at once on
        threads (:class:`funrl.envs.thread_vector.ThreadVectorEnv`: the same trajectories,
        faster only where a GIL-free simulator step dominates, e.g. MuJoCo's Humanoid, on
        free cores) or ``"async"`` in subprocesses.  Pure torch envs take only ``"sync"``.
    """

    env: str = "CartPole-v1"
    num_envs: int = 1
    train_freq: int = 1
    gradient_steps: int = 1
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 5_000
    total_timesteps: int = 100_000
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    donate_buffer: bool = True
    collect_steps_per_call: int = 1
    learn_steps_per_call: int = 1
    obs_storage: str = "float32"
    host_vectorization: str = "sync"

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_freq

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)

    def validate(self) -> None:
        """``ValueError`` naming the first bad field."""
        name = type(self).__name__
        positive = ("num_envs", "train_freq", "buffer_size", "batch_size", "total_timesteps",
                    "collect_steps_per_call", "learn_steps_per_call")  # fmt: skip
        for f in positive:
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}.{f} must be a positive int, got {v!r}")
        for f in ("gradient_steps", "learning_starts"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}.{f} must be an int >= 0, got {v!r}")
        if self.buffer_size < max(self.batch_size, self.num_envs):
            raise ValueError(
                f"{name}.buffer_size ({self.buffer_size}) must be >= batch_size "
                f"({self.batch_size}) and >= num_envs ({self.num_envs})"
            )
        if self.gradient_steps % self.learn_steps_per_call:
            raise ValueError(
                f"{name}.learn_steps_per_call ({self.learn_steps_per_call}) must divide "
                f"gradient_steps ({self.gradient_steps})"
            )
        if self.train_freq % self.collect_steps_per_call:
            raise ValueError(
                f"{name}.collect_steps_per_call ({self.collect_steps_per_call}) must divide "
                f"train_freq ({self.train_freq})"
            )
        if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in self.hidden):
            raise ValueError(f"{name}.hidden must be positive ints, got {self.hidden!r}")
        check_vectorization(f"{name}.", self.host_vectorization, "host_vectorization")
        if self.obs_storage not in OBS_STORAGES:
            raise ValueError(
                f"{name}.obs_storage must be one of {', '.join(map(repr, OBS_STORAGES))}, "
                f"got {self.obs_storage!r}"
            )


@tree.struct
class TrainState(tree.Struct):
    """What every off-policy algorithm carries between updates (a pytree of tensors).

    Attributes:
      params, target_params: the online networks' parameters and the target copies.
      opt_state: the optimizer state(s).
      buffer: ``buffers.ReplayState`` or ``buffers.PrioritizedState``.
      collector: env state, current obs and the collector's key.
      env_params: the env's params.
      global_step: env steps taken over all envs (0-d int64).
      grad_step: gradient steps taken (masked ones, before learning starts, not counted).
      key: the learner's key.
    """

    params: Any
    target_params: Any
    opt_state: Any
    buffer: Any
    collector: collectors.CollectorState
    env_params: Any
    global_step: torch.Tensor
    grad_step: torch.Tensor
    key: torch.Tensor


class Step(NamedTuple):
    """What a recipe's ``learn_step`` returns (the core keeps it only while learning).

    Attributes:
      params, target_params, opt_state: the candidate new values.
      metrics: 0-d diagnostics (NaN-masked by the core on steps that do not learn).
      td_error: ``[batch]`` TD errors; required with prioritized replay (new priorities
        ``|td_error| + hp.per_eps``).
    """

    params: Any
    target_params: Any
    opt_state: Any
    metrics: dict[str, torch.Tensor]
    td_error: torch.Tensor | None = None


# --------------------------------------------------------------------------- pieces


def soft_update(target: Any, online: Any, tau: torch.Tensor | float) -> Any:
    """Polyak averaging ``tau * online + (1 - tau) * target`` leaf by leaf.

    The form of optax's ``incremental_update`` and SB3's ``polyak_update``; ``tau = 1``
    copies ``online`` exactly (a hard target update).

    Args:
      target, online: pytrees of float tensors with the same structure.
      tau: 0-d rate in ``[0, 1]``.
    """
    return tree.map(lambda t, o: tau * o + (1 - tau) * t, target, online)


def learning_mask(state: Any, config: Config) -> torch.Tensor:
    """0-d bool: gradient steps count (``global_step >= learning_starts`` and a full batch)."""
    return (state.global_step >= config.learning_starts) & (state.buffer.size >= config.batch_size)


def mask_metrics(
    metrics: dict[str, torch.Tensor], learning: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``metrics`` with NaN where ``learning`` is False (a discarded gradient step)."""
    return {
        k: torch.where(learning, v, torch.full_like(v, float("nan"))) for k, v in metrics.items()
    }


def sample_batch(
    buffer: Any,
    key: torch.Tensor,
    batch_size: int,
    learning: torch.Tensor,
    beta: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """``(batch, indices)``: a replay batch, or a placeholder (to be discarded) while not
    ``learning``.

    Uniform replay returns indices ``None``.  A prioritized buffer (pass ``beta``, the
    importance-sampling exponent) adds ``batch["weights"]`` and returns the slots drawn.
    The placeholder samples as if the buffer were full, so the eager "too few filled
    slots" check does not fire while the result is masked out (an empty sum-tree draws
    slot 0 with weight 0).
    """
    cap = buffers.capacity_of(buffer)
    placeholder = buffer.replace(
        size=torch.where(learning, buffer.size, torch.full_like(buffer.size, cap))
    )
    if beta is None:
        return buffers.sample(placeholder, key, batch_size), None
    batch, idx, weights = buffers.prioritized_sample(placeholder, key, batch_size, beta)
    return {**batch, "weights": weights}, idx


def plain_example(stack: EnvStack) -> dict[str, torch.Tensor]:
    """One zero transition as :func:`plain_rows` stores it (no batch dim)."""
    space = stack.action_space
    if isinstance(space, Discrete):
        action = torch.zeros((), dtype=torch.int64)
    else:
        action = torch.zeros(space.shape, dtype=torch.float32)
    obs = torch.zeros(stack.obs_shape, dtype=torch.float32)
    return {
        "obs": obs,
        "action": action,
        "reward": torch.zeros(()),
        "next_obs": obs.clone(),
        "terminated": torch.zeros((), dtype=torch.bool),
    }


def plain_rows(state: Any, tr: collectors.Transition, hp: Any) -> tuple[Any, Any, None]:
    """One-step rows ``obs, action, reward, next_obs, terminated`` (every env's step kept)."""
    rows = {
        "obs": tr.obs,
        "action": tr.action,
        "reward": tr.reward.to(torch.float32),
        "next_obs": tr.next_obs,
        "terminated": tr.terminated,
    }
    return state, rows, None


def check_obs_storage(where: str, config: Config, stack: EnvStack) -> None:
    """``ValueError`` (at ``make``, before any step) when ``config.obs_storage="uint8"``
    cannot hold the env's observations: they must be a ``Box`` within [0, 1], unnormalised
    (frames scaled by 1/255).  :func:`encode_obs` checks the values themselves."""
    if config.obs_storage == "float32":
        return
    space = stack.eval_env.observation_space(stack.env_params)
    fits = (
        isinstance(space, Box)
        and stack.normalizer is None
        and bool((space.low >= 0).all())
        and bool((space.high <= 1).all())
    )
    if not fits:
        what = "normalised observations" if stack.normalizer is not None else str(space)
        raise ValueError(
            f"{where}: obs_storage='uint8' keeps observations as the 256 levels k / 255 in "
            f"[0, 1] (8-bit frames), but {config.env} has {what}; use obs_storage='float32'"
        )


def encode_obs(rows: dict[str, torch.Tensor], config: Config) -> dict[str, torch.Tensor]:
    """``rows`` as the buffer stores them (``config.obs_storage``): with ``"uint8"``,
    ``obs`` and ``next_obs`` (float, any shape, e.g. ``[num_envs, 4, 84, 84]``) become
    their levels ``round(x * 255)`` as uint8 of the same shape; other keys pass through.

    Eagerly, a value that is not one of the 256 levels ``k / 255`` (what
    :func:`decode_obs` gives back) raises ``ValueError``: nothing is stored lossily.
    """
    if config.obs_storage == "float32":
        return rows
    out = dict(rows)
    for k in _OBS_KEYS:
        if k not in rows:
            continue
        x = rows[k]
        levels = torch.round(x * 255).clamp(0, 255).to(torch.uint8)
        back = _decode(levels) if tree.is_concrete(x) else None
        if back is not None and not torch.equal(back, x.to(torch.float32)):
            bad = x[back != x].reshape(-1)[0].item()
            raise ValueError(
                f"obs_storage='uint8' stores observations as the 256 levels k / 255, but "
                f"{k} holds {bad!r} (use obs_storage='float32' for this env)"
            )
        out[k] = levels
    return out


def decode_obs(batch: dict[str, torch.Tensor], config: Config) -> dict[str, torch.Tensor]:
    """A sampled ``batch`` (``{key: [B, ...]}``) with ``obs``/``next_obs`` back as float32
    of the same shape (:func:`encode_obs`)."""
    if config.obs_storage == "float32":
        return batch
    return {k: _decode(v) if k in _OBS_KEYS else v for k, v in batch.items()}


def _decode(levels: torch.Tensor) -> torch.Tensor:
    """``levels / 255`` in float32, correctly rounded as Gymnasium's ``AtariPreprocessing``
    and funrl's EnvPool bridge compute frames.  Eager and compiled CPU code keep the
    division (a multiplication by ``1 / 255`` would differ on 126 of the 256 levels); the
    tests check every level bit for bit."""
    return levels.to(torch.float32) / 255


def init_buffer(example: Any, config: Config, alpha: torch.Tensor | None = None) -> Any:
    """An empty replay buffer shaped like ``example`` (its ``obs``/``next_obs`` in
    ``config.obs_storage``); prioritized when ``alpha`` is given."""
    if config.obs_storage != "float32":
        example = {k: v.to(torch.uint8) if k in _OBS_KEYS else v for k, v in dict(example).items()}
    if alpha is None:
        return buffers.init(example, config.buffer_size)
    return buffers.prioritized_init(example, config.buffer_size, alpha=alpha)


def new_state(
    cls: Any,
    stack: EnvStack,
    *,
    params: Any,
    target_params: Any,
    opt_state: Any,
    buffer: Any,
    k_env: torch.Tensor,
    key: torch.Tensor,
    **extra: Any,
) -> Any:
    """A fresh ``cls`` (a :class:`TrainState`): envs reset from ``k_env``, counters at 0,
    every leaf row-major (:func:`funrl.tree.contiguous`)."""
    zero = torch.zeros((), dtype=torch.int64, device=key.device)
    state = cls(
        params=params,
        target_params=target_params,
        opt_state=opt_state,
        buffer=buffer,
        collector=collectors.init(stack.env, stack.env_params, k_env),
        env_params=stack.env_params,
        global_step=zero,
        grad_step=zero.clone(),
        key=key,
        **extra,
    )
    return tree.contiguous(state)


# --------------------------------------------------------------------------- the update


def _fused(
    step: Callable[[Any, Any, Any], tuple[Any, Any]], variants: tuple[Hashable, ...]
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """``step(state, hp, variant)`` for each of ``variants`` in one function (one unit call
    when compiled); the outputs are stacked on a new leading dim."""

    def run(state: Any, hp: Any) -> tuple[Any, Any]:
        outs = []
        for v in variants:
            state, out = step(state, hp, v)
            outs.append(out)
        return state, tree.stack(outs)

    return run


def make_update(
    config: Config,
    stack: EnvStack,
    units: UnitTransform,
    *,
    policy: Callable[[Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, Any]],
    policy_params: Callable[[Any, Any], Any],
    learn_step: Callable[..., Step],
    num_keys: int,
    to_rows: Callable[..., tuple[Any, Any, Any]] = plain_rows,
    step_variant: Callable[[int], Hashable] = lambda j: None,
    prioritized: bool = False,
    finish_metrics: Callable[[Any, Any], dict[str, torch.Tensor]] | None = None,
) -> Callable[[Any, Any], tuple[Any, dict[str, torch.Tensor]]]:
    """``update(state, hp) -> (state, metrics)`` of an off-policy recipe (module docstring).

    Args:
      config, stack, units: the algorithm's config, env stack and unit transform.
      policy, policy_params: how the collector acts.
      learn_step: ``(state, batch, keys, hp, variant) -> Step``; ``keys`` is a list of
        ``num_keys`` keys drawn from ``state.key`` after the sampling key.
      to_rows: what one env step stores.
      step_variant: the static variant of gradient step ``j`` of an update (default None).
      prioritized: prioritized replay: batches carry ``weights`` and priorities are
        updated from ``Step.td_error``; hparams need ``per_beta`` (annealed to 1 over
        ``total_timesteps``) and ``per_eps``.
      finish_metrics: ``(state, hp) -> dict`` of extra per-update metrics.

    The state must have the :class:`TrainState` fields; every metric is 0-d (learn
    metrics are averaged over the update's gradient steps, ignoring masked ones).
    """
    if config.gradient_steps and config.total_timesteps <= config.learning_starts:
        warnings.warn(
            f"{type(config).__module__.rsplit('.', 1)[-1]}: total_timesteps "
            f"({config.total_timesteps}) <= learning_starts ({config.learning_starts}): "
            "this run takes no gradient step and evaluates an untrained policy",
            stacklevel=3,
        )
    algo_name = type(config).__module__.rsplit(".", 1)[-1]
    check_units(f"{algo_name}.make", units, stack, config.env)
    act_step, step_env = collectors.act_step(policy), collectors.env_step(stack.env)
    donate, num_envs = config.donate_buffer, config.num_envs

    def act(state: Any, hp: Any) -> tuple[Any, ...]:
        return act_step(state.collector, policy_params(state, hp))

    def store(
        state: Any, carry: Any, tr: collectors.Transition, hp: Any
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        state, rows, mask = to_rows(state, tr, hp)
        rows = encode_obs(rows, config)
        buf: Any
        if prioritized:
            buf = buffers.prioritized_add(state.buffer, rows, mask=mask, donate=donate)
        else:
            buf = buffers.add(state.buffer, rows, mask=mask, donate=donate)
        state = state.replace(collector=carry, buffer=buf, global_step=state.global_step + num_envs)
        return state, {k: tr.info[k] for k in EPISODE_KEYS}

    def collect(state: Any, hp: Any, variant: Any = None) -> tuple[Any, dict[str, torch.Tensor]]:
        carry, tr = step_env(state.collector, *act(state, hp), state.env_params)
        return store(state, carry, tr, hp)

    def learn(state: Any, hp: Any, variant: Any) -> tuple[Any, dict[str, torch.Tensor]]:
        k_sample, *keys, k_state = R.split(state.key, num_keys + 2)
        learning = learning_mask(state, config)
        beta = None
        if prioritized:
            frac = state.global_step.to(hp.per_beta.dtype) / config.total_timesteps
            beta = hp.per_beta + (1.0 - hp.per_beta) * torch.clamp(frac, max=1.0)
        batch, idx = sample_batch(state.buffer, k_sample, config.batch_size, learning, beta)
        batch = decode_obs(batch, config)
        out = learn_step(state, batch, keys, hp, variant)
        new = (out.params, out.target_params, out.opt_state)
        kept = (state.params, state.target_params, state.opt_state)
        params, target_params, opt_state = tree.where(learning, new, kept)
        buf: Any = state.buffer
        if prioritized:
            assert out.td_error is not None and idx is not None, "PER needs Step.td_error"
            p = torch.where(learning, out.td_error.abs() + hp.per_eps, buf.priorities[idx])
            buf = buffers.update_priorities(buf, idx, p, donate=donate)
        state = state.replace(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            buffer=buf,
            grad_step=state.grad_step + learning.to(torch.int64),
            key=k_state,
        )
        return state, mask_metrics(out.metrics, learning)

    def finish(
        state: Any, infos: dict[str, torch.Tensor], hp: Any
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        metrics = episode_metrics(infos)
        if finish_metrics is not None:
            metrics.update(finish_metrics(state, hp))
        return state, metrics

    def concat(chunks: list[Any]) -> Any:  # [k, ...] per call -> [train_freq, ...]
        return chunks[0] if len(chunks) == 1 else tree.map(lambda *xs: torch.cat(xs), *chunks)

    k_collect = config.collect_steps_per_call
    if stack.host:  # the env steps on the host, between a compiled act and a compiled store
        u_act, u_store = units(act, "act"), units(store, "store")
        u_stack_infos = units(tree.stack, "stack")

        def u_collect(state: Any, hp: Any) -> tuple[Any, dict[str, torch.Tensor]]:
            infos = []
            for _ in range(k_collect):
                carry, tr = step_env(state.collector, *u_act(state, hp), state.env_params)
                state, info = u_store(state, carry, tr, hp)
                infos.append(info)
            return state, u_stack_infos(infos)

    else:
        u_collect = units(_fused(collect, (None,) * k_collect), "collect")
    k_learn = config.learn_steps_per_call
    variants = [step_variant(j) for j in range(config.gradient_steps)]
    calls = [tuple(variants[i : i + k_learn]) for i in range(0, len(variants), k_learn)]
    learn_units: dict[tuple[Hashable, ...], Callable[..., Any]] = {}
    for c in calls:
        if c not in learn_units:
            name = "learn" if not learn_units else f"learn_{len(learn_units) + 1}"
            learn_units[c] = units(_fused(learn, c), name)
    u_learns = [learn_units[c] for c in calls]
    u_stack = units(concat, "stack")
    u_finish = units(finish, "finish")

    def update(state: Any, hp: Any) -> tuple[Any, dict[str, torch.Tensor]]:
        infos = []
        for _ in range(config.train_freq // k_collect):
            state, info = u_collect(state, hp)
            infos.append(info)
        learn_metrics = []
        for u in u_learns:
            state, m = u(state, hp)
            learn_metrics.append(m)
        state, metrics = u_finish(state, u_stack(infos), hp)
        if learn_metrics:
            # each call returns [..., learn_steps_per_call] (a population adds a leading dim)
            metrics.update(tree.map(lambda *xs: torch.cat(xs, -1).nanmean(-1), *learn_metrics))
        return state, metrics

    return update
