"""The pytest suite (never installed). Its parity tests parametrise over the product's case
registry, :mod:`flax_arch.parity.registry`, the same registry ``flax-arch parity`` and
``flax-arch bench`` run.
"""
