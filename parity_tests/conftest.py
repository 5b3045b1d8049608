"""Test configuration: float64 needs JAX's x64 mode; GPU matmuls at full precision."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")
