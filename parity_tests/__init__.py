"""Parity suite: the case registry (``parity_tests.cases``) and its pytest tests.

The same registry feeds ``pytest``, ``flax-arch parity`` and ``flax-arch bench``.
"""
