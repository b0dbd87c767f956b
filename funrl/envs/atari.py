"""Atari 2600 games (the Arcade Learning Environment) with the standard preprocessing.

``funrl.make("atari:Breakout")`` (or ``--env atari:Breakout``) is ``ALE/Breakout-v5``
through the Gymnasium bridge, a host env (see :mod:`funrl.envs.gym_bridge`), wrapped as
DQN (Mnih et al., 2015) and the Machado et al. (2018) protocol prescribe, in this order:

1. no-op reset: up to ``noop_max`` (30) random no-ops after a reset;
2. frame skip with max-pooling: each action repeated ``frame_skip`` (4) frames, the
   observation the max of the last two (Gymnasium's ``AtariPreprocessing``, which also
   does 3.);
3. 84x84 grayscale frames;
4. episodic life (training only): losing a life ends the episode for the learner
   (``terminated``) but not the game: the next episode continues it (no reset), as
   SB3's and CleanRL's ``EpisodicLifeEnv``;
5. fire reset: games that wait for FIRE (Breakout) get it after every reset and life
   loss, so the agent does not have to discover it;
6. reward clipping (training only): rewards become their sign (-1, 0, +1);
7. a stack of the last ``frame_stack`` (4) frames: observations ``[4, 84, 84]``,
   float32 scaled to [0, 1] (what the Nature CNN expects; PPO's and DQN's default image
   encoder for frames this size).

Sticky actions (``repeat_action_probability=0.25``, v5's default) stay on, as Machado et
al. recommend.  The evaluation env (``evaluation=True``, what funrl's evaluation builds)
keeps the real game score and whole games: no episodic life, no reward clipping.

Needs the ``atari`` extra (``pip install 'funrl[atari]'``: ``ale-py``, whose wheels
include the ROMs, and ``opencv-python-headless`` for the resizing).

:data:`PPO_CONFIG` and :data:`DQN_CONFIG` are CleanRL's published Atari settings
(``ppo_atari.py`` and ``dqn_atari.py``, Huang et al., 2022, "CleanRL", JMLR 23(274)).

Example::

    >>> env, _ = funrl.make("atari:Breakout", num_envs=2)   # doctest: +SKIP
    >>> env.observation_space().shape                        # doctest: +SKIP
    (4, 84, 84)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DQN_CONFIG", "DQN_HPARAMS", "PPO_CONFIG", "PPO_HPARAMS", "gym_env", "make_atari"]

#: CleanRL ``ppo_atari.py``: 8 envs x 128 steps, 4 minibatches, 4 epochs, 10M steps, one
#: Nature CNN shared by the actor and the critic.
PPO_CONFIG: dict[str, Any] = dict(
    num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, total_timesteps=10_000_000,
    hidden=(), activation="relu", anneal_lr=True, clip_value=True, share_encoder=True,
)  # fmt: skip
#: CleanRL ``ppo_atari.py``'s hyperparameters (lr 2.5e-4, clip 0.1, ...).
PPO_HPARAMS: dict[str, float] = dict(
    lr=2.5e-4, gamma=0.99, gae_lambda=0.95, clip_eps=0.1, ent_coef=0.01, vf_coef=0.5,
    max_grad_norm=0.5,
)  # fmt: skip
#: CleanRL ``dqn_atari.py`` (buffer 1M, learning starts 80k, a gradient step every 4 env
#: steps, MSE loss, the target copied every 1000 env steps: 250 gradient steps, as funrl
#: counts ``target_update_interval``), replaying frames as uint8 (``obs_storage``): a
#: 1M-transition buffer of 84x84x4 ``obs`` and ``next_obs`` needs ~56 GB (float32: ~225
#: GB); shrink ``buffer_size`` to the memory you have.  Its hyperparameters are
#: :data:`DQN_HPARAMS`.  The same settings are the ``"atari:*"`` presets
#: (``funrl/presets/{ppo,dqn}.toml``).
DQN_CONFIG: dict[str, Any] = dict(
    num_envs=1, buffer_size=1_000_000, batch_size=32, learning_starts=80_000, train_freq=4,
    target_update_interval=250, total_timesteps=10_000_000, hidden=(), loss="mse",
    obs_storage="uint8",
)  # fmt: skip
#: CleanRL ``dqn_atari.py``'s hyperparameters (lr 1e-4, epsilon 1 -> 0.01 over 10% of
#: training).
DQN_HPARAMS: dict[str, float] = dict(
    lr=1e-4, gamma=0.99, eps_start=1.0, eps_end=0.01, exploration_fraction=0.1
)  # fmt: skip


def _require() -> Any:
    try:
        import ale_py
        import cv2  # noqa: F401  (AtariPreprocessing resizes with it)
    except ImportError as e:
        raise ValueError(
            f"atari envs need the atari extra: pip install 'funrl[atari]' ({e})"
        ) from None
    return ale_py


def _wrappers(
    noop_max: int,
    frame_skip: int,
    screen_size: int,
    frame_stack: int,
    episodic_life: bool,
    clip_rewards: bool,
    fire_reset: bool,
) -> Any:
    import gymnasium as gym

    class EpisodicLife(gym.Wrapper):  # type: ignore[type-arg]
        """A lost life ends the learner's episode, not the game (soft reset)."""

        def __init__(self, env: Any) -> None:
            super().__init__(env)
            self.lives, self.game_over = 0, True

        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            self.game_over = terminated or truncated
            lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
            if 0 < lives < self.lives:
                terminated = True
            self.lives = lives
            return obs, reward, terminated, truncated, info

        def reset(self, **kwargs: Any) -> Any:
            if self.game_over:
                obs, info = self.env.reset(**kwargs)
            else:  # continue the game: a no-op step from where the life was lost
                obs, _, terminated, truncated, info = self.env.step(0)
                if terminated or truncated:
                    obs, info = self.env.reset(**kwargs)
            self.lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
            return obs, info

    class FireReset(gym.Wrapper):  # type: ignore[type-arg]
        """Press FIRE (then RIGHT, as SB3 does) after every reset."""

        def reset(self, **kwargs: Any) -> Any:
            self.env.reset(**kwargs)
            obs, _, terminated, truncated, info = self.env.step(1)
            if terminated or truncated:
                self.env.reset(**kwargs)
            obs, _, terminated, truncated, info = self.env.step(2)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
            return obs, info

    def wrap(env: Any) -> Any:
        env = gym.wrappers.AtariPreprocessing(
            env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size,
            terminal_on_life_loss=False, grayscale_obs=True, scale_obs=True,
        )  # fmt: skip
        if episodic_life:
            env = EpisodicLife(env)
        if fire_reset and "FIRE" in env.unwrapped.get_action_meanings():
            env = FireReset(env)
        if clip_rewards:
            env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(float(r))))
        return gym.wrappers.FrameStackObservation(env, frame_stack)

    return wrap


def _game_id(game: str) -> str:
    """``ALE/<game>-v5``, once the extras and the game are checked (one-line errors)."""
    import difflib

    import gymnasium as gym

    gym.register_envs(_require())
    env_id = f"ALE/{game}-v5"
    if env_id not in gym.envs.registry:
        games = sorted(
            k[4:-3] for k in gym.envs.registry if k.startswith("ALE/") and k.endswith("-v5")
        )
        close = difflib.get_close_matches(game, games, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"make: unknown Atari game {game!r}{hint}")
    return env_id


def gym_env(
    game: str,
    *,
    evaluation: bool = False,
    render_mode: str | None = None,
    noop_max: int = 30,
    frame_skip: int = 4,
    screen_size: int = 84,
    frame_stack: int = 4,
    fire_reset: bool = True,
    repeat_action_probability: float = 0.25,
    full_action_space: bool = False,
) -> Any:
    """One ``ALE/<game>-v5`` Gymnasium env with the module docstring's preprocessing
    (``evaluation=True``: without episodic life and reward clipping)."""
    import gymnasium as gym

    env_id = _game_id(game)
    wrap = _wrappers(noop_max, frame_skip, screen_size, frame_stack,
                     episodic_life=not evaluation, clip_rewards=not evaluation,
                     fire_reset=fire_reset)  # fmt: skip
    env = gym.make(env_id, frameskip=1, repeat_action_probability=repeat_action_probability,
                   full_action_space=full_action_space, render_mode=render_mode)  # fmt: skip
    return wrap(env)


def make_atari(
    game: str,
    num_envs: int | None = None,
    *,
    evaluation: bool = False,
    vectorization: str = "sync",
    **options: Any,
) -> Any:
    """``ALE/<game>-v5`` with the module docstring's preprocessing, as a
    :class:`~funrl.envs.gym_bridge.GymnasiumEnv`: ``num_envs`` games in a Gymnasium vector
    env (``vectorization="async"``: in subprocesses; ``"thread"``: stepped on threads,
    :class:`~funrl.envs.thread_vector.ThreadVectorEnv`), or one.  ``evaluation=True`` drops
    episodic life and reward clipping; ``options`` go to :func:`gym_env`."""
    import gymnasium as gym

    from funrl.envs.gym_bridge import GymnasiumEnv
    from funrl.envs.thread_vector import check_vectorization, vector_env_class

    check_vectorization("make_atari: ", vectorization)
    _game_id(game)  # the extras and the game, checked before any env is built
    if num_envs is None:
        return GymnasiumEnv(gym_env(game, evaluation=evaluation, **options))
    fns = [lambda: gym_env(game, evaluation=evaluation, **options)] * num_envs
    cls = vector_env_class(vectorization)
    return GymnasiumEnv(cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP))
