"""Testing kit: the eager/vmap/compile battery, hypothesis strategies, numpy references.

``from funrl.testing import check_transforms`` and
``from funrl.testing import strategies as fst`` (strategies need ``hypothesis``).
"""

from funrl.testing.battery import assert_trees_close, check_transforms

__all__ = ["assert_trees_close", "check_transforms"]
