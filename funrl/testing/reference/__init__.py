"""Plain-numpy (float64) reference implementations, written as naive loops.

Use them to check fast implementations (funrl's or your own) against a slow, obviously
correct version.
"""
