import os

import torch
import torch._dynamo.config
from hypothesis import HealthCheck, settings

# One thread per test process: CI runs two pytest workers on two cores.
torch.set_num_threads(int(os.environ.get("FUNRL_TEST_THREADS", "1")))
# The CLI's --threads defaults to auto (the free cores at start): pin it, so that runs the
# tests compare (a zoo member against funrl train) use one count whatever the load.
os.environ.setdefault("FUNRL_THREADS", "1")
# The battery compiles many small functions that share code objects.
torch._dynamo.config.recompile_limit = 64
torch._dynamo.config.accumulated_recompile_limit = 4096

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
