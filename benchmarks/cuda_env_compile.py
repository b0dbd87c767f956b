"""CUDA: one compiled CartPole step of 65,536 envs, with inductor's cpp_wrapper on or off.

    python benchmarks/cuda_env_compile.py 0    # cpp_wrapper off
    python benchmarks/cuda_env_compile.py 1    # on (funrl.compile's default)

Prints the compile time (two calls) and steps/s over 200 compiled steps (device synced).
"""

import sys
import time

import torch
from torch.func import vmap

import funrl
import funrl.random as R
from funrl.envs.classic_control import CartPole

opts = {"cpp_wrapper": sys.argv[1] == "1"}
with torch.device("cuda"):
    env = CartPole()
    params = env.default_params()
    n = 65536

    def step(key, state):
        key, k_act, k_step = R.split(key, 3)
        a = R.randint(k_act, 0, 2, (n,))
        obs, state, r, te, tr, _ = vmap(env.step, in_dims=(0, 0, 0, None))(
            R.split(k_step, n), state, a, params
        )
        return key.contiguous(), state, obs, r, te, tr

    _, s = vmap(env.reset, in_dims=(0, None))(R.split(R.key(1), n), params)
    k = R.key(0)
    c = funrl.compile(step, options=opts)
    t0 = time.perf_counter()
    k, s, *_ = c(k, s)
    k, s, *_ = c(k, s)
    torch.cuda.synchronize()
    cs = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(200):
        k, s, *_ = c(k, s)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(
        f"cpp_wrapper={opts['cpp_wrapper']} compile {cs:.1f}s  {200 * n / dt / 1e6:.1f} M steps/s",
        flush=True,
    )
