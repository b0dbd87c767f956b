"""The package version, in a module of its own so that any funrl module can read it
without importing the whole package (``funrl.checkpoint`` records it in every file)."""

__version__ = "0.1.0.dev0"
