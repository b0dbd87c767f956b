"""The ``funrl`` command as a script, for ``benchmarks/ab.py`` (which needs a script path):

    python benchmarks/ab.py --base REV -- benchmarks/funrl_cli.py train ppo --compile off --quiet

Prints which funrl it imported (so an A/B shows each side ran its own checkout), then runs
``funrl.cli.main`` with the arguments given.
"""

from __future__ import annotations

import sys

import funrl
import funrl.cli

if __name__ == "__main__":
    print(f"funrl from {funrl.__file__}", flush=True)
    funrl.cli.main(sys.argv[1:])
