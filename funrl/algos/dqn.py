"""Deep Q-Networks (Mnih et al., 2015) and its common extensions, as ``init`` + ``update``.

One ``update`` interleaves acting and learning at a fixed ratio, every step a unit::

    collect  train_freq times: epsilon-greedy step of num_envs envs (uniform random
             actions while env steps < learning_starts); each env's transition goes
             through an n-step window and the finished n-step transitions into the buffer
    learn    gradient_steps times: sample a batch (uniform or prioritized); one step on
             l(r + discount * Q'(s', argmax_a Q_sel(s', a)) - Q(s, a)); target update
             (Polyak with tau, every target_update_interval learning steps)
    finish   episode statistics

Switches (:class:`Config`): ``double_q`` (select next actions with the online net),
``dueling`` (value + advantage head), ``prioritized`` (Schaul et al., 2016; |TD| + eps
priorities, IS weights with beta annealed to 1), ``n_step`` (n-step returns, bootstrap
``discount = gamma^k`` or 0 after termination), ``loss`` ("huber" or "mse").  Hard target
updates are ``tau = 1`` with ``target_update_interval > 1``; Polyak is ``tau < 1``.

The replay buffer is written in place (``Config.donate_buffer``, default True): ``update``
consumes its input state's buffer, as JAX's buffer donation does; keep no reference to an
old state's buffer (set ``donate_buffer=False`` for fully pure, copying updates).

Example::

    >>> import funrl
    >>> from funrl.algos import dqn
    >>> cfg = dqn.Config(env="CartPole-v1", num_envs=2, batch_size=8, learning_starts=8,
    ...                  buffer_size=64, hidden=(16,))
    >>> algo = dqn.make(cfg)
    >>> hp = dqn.HParams.create()
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> for _ in range(6):
    ...     state, metrics = algo.update(state, hp)
    >>> int(state.global_step), bool(metrics["loss"].isfinite())
    (48, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from funrl import buffers, collectors, losses, optim, tree
from funrl import nn as fnn
from funrl import random as R
from funrl.algos.common import (
    Algo,
    check_hparams_fields,
    episode_metrics,
    hparams_from_kwargs,
    make_env_stack,
    remaker,
)
from funrl.algos.units import UnitTransform, eager
from funrl.collectors import CollectorState
from funrl.envs.spaces import Discrete

__all__ = ["Config", "HParams", "TrainState", "epsilon", "make", "q_network"]


def _repeated(step: Callable[..., Any], n: int) -> Callable[..., Any]:
    """``step(state, hp) -> (state, out)`` run ``n`` times in one function (one unit call
    when compiled); the ``n`` outputs are stacked on a new leading dim."""

    def run(state: Any, hp: Any) -> tuple[Any, Any]:
        outs = []
        for _ in range(n):
            state, out = step(state, hp)
            outs.append(out)
        return state, tree.stack(outs)

    run.__name__ = f"{step.__name__}_x{n}"
    return run


@dataclasses.dataclass(frozen=True)
class Config:
    """Static DQN settings (changing one means a new ``make`` and a recompile).

    Attributes:
      env: a registered env id with a ``Discrete`` action space and flat observations.
      num_envs: parallel envs; one collector step takes ``num_envs`` env steps.
      train_freq: collector steps per update; gradient_steps: learning steps per update
        (so ``gradient_steps / (train_freq * num_envs)`` updates per env step).
      buffer_size, batch_size: replay capacity (transitions) and learning batch.
      learning_starts: env steps of uniform random actions before the first gradient step.
      target_update_interval: learning steps between target updates (Polyak with
        ``hp.tau``; ``tau = 1`` is a hard copy).
      total_timesteps: training length in env steps (sets ``num_updates`` and the
        epsilon / beta schedules).
      hidden, activation, dueling: the Q-network.
      double_q, prioritized, n_step, loss: the extensions (module docstring).
      donate_buffer: write the replay buffer in place (module docstring).
      learn_steps_per_call: learning steps fused into one call of the ``learn`` unit
        (must divide ``gradient_steps``).  A compiled unit call costs ~100 us of host
        overhead, as much as a small network's gradient step: fusing 4 steps nearly halves
        that (same results), at the price of a ~4x larger graph to compile.
      collect_steps_per_call: collector steps fused into one call of the ``collect`` unit
        (must divide ``train_freq``), for the same reason.
    """

    env: str = "CartPole-v1"
    num_envs: int = 1
    train_freq: int = 4
    gradient_steps: int = 1
    buffer_size: int = 100_000
    batch_size: int = 64
    learning_starts: int = 1_000
    target_update_interval: int = 250
    total_timesteps: int = 100_000
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    dueling: bool = False
    double_q: bool = False
    prioritized: bool = False
    n_step: int = 1
    loss: str = "huber"
    donate_buffer: bool = True
    learn_steps_per_call: int = 1
    collect_steps_per_call: int = 1

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_freq

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)

    def validate(self) -> None:
        for name in (
            "num_envs", "train_freq", "buffer_size", "batch_size", "target_update_interval",
            "total_timesteps", "n_step", "learn_steps_per_call", "collect_steps_per_call",
        ):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Config.{name} must be a positive int, got {v!r}")
        for name in ("gradient_steps", "learning_starts"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"Config.{name} must be a non-negative int, got {v!r}")
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"Config.batch_size {self.batch_size} > buffer_size {self.buffer_size}"
            )
        if self.num_envs > self.buffer_size:
            raise ValueError(f"Config.num_envs {self.num_envs} > buffer_size {self.buffer_size}")
        if self.gradient_steps % self.learn_steps_per_call:
            raise ValueError(
                f"Config.learn_steps_per_call ({self.learn_steps_per_call}) must divide "
                f"gradient_steps ({self.gradient_steps})"
            )
        if self.train_freq % self.collect_steps_per_call:
            raise ValueError(
                f"Config.collect_steps_per_call ({self.collect_steps_per_call}) must divide "
                f"train_freq ({self.train_freq})"
            )
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"Config.loss must be 'huber' or 'mse', got {self.loss!r}")


@tree.struct
class HParams(tree.Struct):
    """Sweepable DQN hyperparameters, each a 0-d float tensor.

    Attributes:
      lr: Adam learning rate; max_grad_norm: global gradient-norm clip.
      gamma: discount; tau: target update rate (1 = hard copy).
      eps_start, eps_end, exploration_fraction: epsilon decays linearly from ``eps_start``
        to ``eps_end`` over ``exploration_fraction * total_timesteps`` env steps.
      per_alpha, per_beta, per_eps: prioritized replay exponent, initial IS exponent
        (annealed linearly to 1 over training) and the priority floor ``|td| + per_eps``.
        ``per_alpha`` is read once by ``init`` (the sum-tree stores ``p^alpha``).
    """

    lr: torch.Tensor
    max_grad_norm: torch.Tensor
    gamma: torch.Tensor
    tau: torch.Tensor
    eps_start: torch.Tensor
    eps_end: torch.Tensor
    exploration_fraction: torch.Tensor
    per_alpha: torch.Tensor
    per_beta: torch.Tensor
    per_eps: torch.Tensor

    @classmethod
    def create(cls, **overrides: Any) -> HParams:
        """Defaults (near SB3's/CleanRL's DQN) with ``overrides`` applied."""
        defaults = dict(
            lr=1e-3, max_grad_norm=10.0, gamma=0.99, tau=1.0, eps_start=1.0, eps_end=0.05,
            exploration_fraction=0.2, per_alpha=0.6, per_beta=0.4, per_eps=1e-6,
        )  # fmt: skip
        return hparams_from_kwargs(cls, defaults, overrides)

    def check(self) -> None:
        """Eager range checks; ``ValueError`` names the field and the allowed range."""
        check_hparams_fields(
            self,
            positive=("lr", "max_grad_norm", "tau", "exploration_fraction", "per_eps"),
            unit=("gamma", "tau", "eps_start", "eps_end", "per_beta"),
            nonnegative=("per_alpha",),
        )


@tree.struct
class TrainState(tree.Struct):
    """Everything DQN carries between updates (a pytree of tensors).

    Attributes:
      params, target_params: Q-network parameters and their target copy.
      opt_state: the optimizer state (its ``lr``/``max_norm`` are set from hparams).
      buffer: ``buffers.ReplayState`` or ``buffers.PrioritizedState`` of n-step
        transitions ``obs, action, reward, discount, next_obs``.
      nstep: ``buffers.NStepState``, the last ``n_step`` transitions of every env.
      collector, env_params: the env carry and params.
      global_step: env steps taken; grad_step: learning steps taken (masked ones not).
      key: the key for sampling and learning.
    """

    params: dict[str, Any]
    target_params: dict[str, Any]
    opt_state: Any
    buffer: Any
    nstep: buffers.NStepState
    collector: CollectorState
    env_params: Any
    global_step: torch.Tensor
    grad_step: torch.Tensor
    key: torch.Tensor


def epsilon(global_step: torch.Tensor, hp: HParams, total_timesteps: int) -> torch.Tensor:
    """``eps_start + (eps_end - eps_start) * min(1, step / (fraction * total))``."""
    horizon = hp.exploration_fraction * total_timesteps
    frac = torch.clamp(global_step.to(hp.eps_start.dtype) / horizon, max=1.0)
    return hp.eps_start + (hp.eps_end - hp.eps_start) * frac


def _example(obs_dim: int) -> dict[str, torch.Tensor]:
    obs = torch.zeros(obs_dim)
    action = torch.zeros((), dtype=torch.int64)
    return {
        "obs": obs,
        "action": action,
        "reward": torch.zeros(()),
        "discount": torch.zeros(()),
        "next_obs": obs.clone(),
    }


def q_network(config: Config, stack: Any) -> fnn.Model:
    """The Q-network for ``config`` on ``stack`` (``funrl.algos.common.EnvStack``)."""
    n = int(stack.action_space.n)
    return fnn.q_net(stack.obs_dim, n, config.hidden, config.dueling, config.activation)


def make(config: Config, *, units: UnitTransform = eager, name: str = "dqn") -> Algo:
    """Build DQN's pure functions for ``config``.

    Returns:
      :class:`funrl.algos.common.Algo`; ``act(act_params, obs, key=None,
      deterministic=True)`` gives ``argmax_a Q(obs, a)``, or with ``deterministic=False``
      and a key, epsilon-greedy actions with epsilon 0.05.

    Raises:
      ValueError: a bad config, or an env without a ``Discrete`` action space.
    """
    config.validate()
    stack = make_env_stack(config.env, config.num_envs)
    if not isinstance(stack.action_space, Discrete):
        raise ValueError(
            f"DQN needs a Discrete action space, {config.env} has {stack.action_space}"
        )
    num_actions, E = int(stack.action_space.n), config.num_envs
    qnet = q_network(config, stack)
    opt = optim.chain(optim.clip_by_global_norm(10.0), optim.adam(1e-3))
    donate = config.donate_buffer

    def eps_greedy(
        params: Any, obs: torch.Tensor, eps: torch.Tensor, key: torch.Tensor
    ) -> torch.Tensor:
        greedy = qnet.apply(params, obs).argmax(-1)
        w = R.bits(key, (2, *greedy.shape))  # one draw: explore coin, random action
        explore = (w[0] >> 8).to(torch.float32) * (1.0 / 16777216.0) < eps
        return torch.where(explore, w[1] % num_actions, greedy)

    def policy(pp: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        return eps_greedy(pp["q"], obs, pp["eps"], key), {}

    env_step = collectors.make_step(stack.env, policy)

    def init(key: torch.Tensor, hp: HParams) -> TrainState:
        k_q, k_env, k_state = R.split(key, 3)
        params = qnet.init(k_q)
        opt_state = optim.set_hparams(opt.init(params), lr=hp.lr, max_norm=hp.max_grad_norm)
        ex = _example(stack.obs_dim)
        buf = (
            buffers.prioritized_init(ex, config.buffer_size, alpha=hp.per_alpha)
            if config.prioritized
            else buffers.init(ex, config.buffer_size)
        )
        collector = collectors.init(stack.env, stack.env_params, k_env)  # contiguous leaves
        obs = collector.obs
        first = collectors.Transition(
            obs, torch.zeros(E, dtype=torch.int64), torch.zeros(E), torch.zeros(E, dtype=torch.bool),
            torch.zeros(E, dtype=torch.bool), obs, {}, {},
        )  # fmt: skip
        zero = torch.zeros((), dtype=torch.int64)
        return TrainState(
            params=params,
            target_params=tree.map(torch.clone, params),
            opt_state=opt_state,
            buffer=buf,
            nstep=buffers.n_step_init(first, config.n_step),
            collector=collector,
            env_params=stack.env_params,
            global_step=zero,
            grad_step=zero.clone(),
            key=k_state,
        )

    def collect(state: TrainState, hp: HParams) -> tuple[TrainState, dict[str, torch.Tensor]]:
        eps = epsilon(state.global_step, hp, config.total_timesteps)
        eps = torch.where(state.global_step < config.learning_starts, torch.ones_like(eps), eps)
        carry, tr = env_step(state.collector, {"q": state.params, "eps": eps}, state.env_params)
        tr = tr._replace(reward=tr.reward.to(torch.float32))
        nstep, out, valid = buffers.n_step_push(state.nstep, tr, hp.gamma)
        rows = {"obs": out.obs, "action": out.action, "reward": out.reward.to(torch.float32),
                "discount": out.discount.to(torch.float32), "next_obs": out.next_obs}  # fmt: skip
        buf: Any
        if config.prioritized:
            buf = buffers.prioritized_add(state.buffer, rows, mask=valid, donate=donate)
        else:
            buf = buffers.add(state.buffer, rows, mask=valid, donate=donate)
        state = state.replace(
            collector=carry, nstep=nstep, buffer=buf, global_step=state.global_step + E
        )
        info = {k: tr.info[k] for k in ("episode_done", "episode_return", "episode_length")}
        return state, {**info, "epsilon": eps}

    def sample(state: TrainState, key: torch.Tensor, learning: torch.Tensor, hp: HParams) -> tuple:
        # While not learning, sample as if full (a placeholder batch, discarded): keeps the
        # eager "too few filled slots" check quiet without a Python branch on a tensor.
        buf = state.buffer
        size = torch.where(learning, buf.size, torch.full_like(buf.size, config.buffer_size))
        if not config.prioritized:
            b = buffers.sample(buf.replace(size=size), key, config.batch_size)
            return b, None, None
        progress = torch.clamp(
            state.global_step.to(hp.per_beta.dtype) / config.total_timesteps, max=1.0
        )
        beta = hp.per_beta + (1.0 - hp.per_beta) * progress
        # An empty sum-tree draws slot 0 with weight 0: a placeholder, discarded likewise.
        return buffers.prioritized_sample(buf.replace(size=size), key, config.batch_size, beta)

    def loss_fn(params: Any, target: Any, b: dict[str, torch.Tensor], w: Any, hp: HParams) -> Any:
        # n-step targets r + discount * v': the per-sample discount scales the target Q
        # (discount >= 0 commutes with max/argmax), the loss gets gamma = 1, no termination.
        q_tm1 = qnet.apply(params, b["obs"])
        q_t = qnet.apply(target, b["next_obs"]).detach() * b["discount"][:, None]
        never = torch.zeros_like(b["discount"], dtype=torch.bool)
        one = torch.ones_like(hp.gamma)
        kw = {"loss": config.loss, "weights": w}
        if config.double_q:
            sel = qnet.apply(params, b["next_obs"]).detach()
            return losses.double_q_learning_loss(
                q_tm1, b["action"], b["reward"], never, one, q_t, sel, **kw
            )
        return losses.q_learning_loss(q_tm1, b["action"], b["reward"], never, one, q_t, **kw)

    def learn(state: TrainState, hp: HParams) -> tuple[TrainState, dict[str, torch.Tensor]]:
        k_sample, k_state = R.split(state.key)
        learning = (state.global_step >= config.learning_starts) & (
            state.buffer.size >= config.batch_size
        )
        b, idx, w = sample(state, k_sample, learning, hp)
        grad_fn = torch.func.grad_and_value(
            lambda p: loss_fn(p, state.target_params, b, w, hp), has_aux=True
        )
        grads, (loss, diag) = grad_fn(state.params)
        opt_state = optim.set_hparams(state.opt_state, lr=hp.lr, max_norm=hp.max_grad_norm)
        updates, opt_state = opt.update(grads, opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        grad_step = state.grad_step + learning.to(torch.int64)
        do_target = learning & (grad_step % config.target_update_interval == 0)
        polyak = tree.map(lambda t, p: hp.tau * p + (1.0 - hp.tau) * t, state.target_params, params)
        target = tree.where(do_target, polyak, state.target_params)
        params, opt_state = tree.where(
            learning, (params, opt_state), (state.params, state.opt_state)
        )
        buf = state.buffer
        if config.prioritized:
            new_p = torch.where(learning, diag["td_error"].abs() + hp.per_eps, buf.priorities[idx])
            buf = buffers.update_priorities(buf, idx, new_p, donate=donate)
        nan = torch.full_like(loss, float("nan"))
        metrics = {
            "loss": torch.where(learning, loss.detach(), nan),
            "q_mean": torch.where(learning, diag["q_mean"], nan),
            "td_error_abs_mean": torch.where(learning, diag["td_error_abs_mean"], nan),
        }
        state = state.replace(
            params=params,
            target_params=target,
            opt_state=opt_state,
            buffer=buf,
            grad_step=grad_step,
            key=k_state,
        )
        return state, metrics

    def finish(
        state: TrainState, infos: dict[str, torch.Tensor], hp: HParams
    ) -> tuple[TrainState, dict[str, torch.Tensor]]:
        m = episode_metrics(infos)
        m["epsilon"] = infos["epsilon"][-1]
        return state, m

    def concat(chunks: list[Any]) -> Any:  # [k, ...] per call -> [train_freq, ...]
        return chunks[0] if len(chunks) == 1 else tree.map(lambda *xs: torch.cat(xs), *chunks)

    u_collect = units(_repeated(collect, config.collect_steps_per_call), "collect")
    u_learn = units(_repeated(learn, config.learn_steps_per_call), "learn")
    u_stack = units(concat, "stack")
    u_finish = units(finish, "finish")

    def update(state: TrainState, hp: HParams) -> tuple[TrainState, dict[str, torch.Tensor]]:
        infos = []
        for _ in range(config.train_freq // config.collect_steps_per_call):
            state, info = u_collect(state, hp)
            infos.append(info)
        learn_metrics = []
        for _ in range(config.gradient_steps // config.learn_steps_per_call):
            state, m = u_learn(state, hp)
            learn_metrics.append(m)
        state, metrics = u_finish(state, u_stack(infos), hp)
        if learn_metrics:
            # each unit returns [..., learn_steps_per_call] (a population adds a leading dim)
            metrics.update(tree.map(lambda *xs: torch.cat(xs, -1).nanmean(-1), *learn_metrics))
        return state, metrics

    def act_params(state: TrainState) -> dict[str, Any]:
        return {"q": state.params}

    def act(
        params: dict[str, Any],
        obs: torch.Tensor,
        key: torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> torch.Tensor:
        if deterministic or key is None:
            return qnet.apply(params["q"], obs).argmax(-1)
        return eps_greedy(params["q"], obs, torch.tensor(0.05), key)

    return Algo(
        name=name,
        config=config,
        init=units(init, "init"),
        update=update,
        act=act,
        act_params=act_params,
        env_stack=stack,
        hparams_cls=HParams,
        steps_per_update=config.steps_per_update,
        networks=qnet,
        optimizer=opt,
        remake=remaker(make, config, {"units": units, "name": name}),
    )
