"""Test configuration: float64 needs JAX's x64 mode; GPU matmuls at full precision."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")

# A persistent compilation cache for this session only: identical programs compile once.
# module_db's inputs that differ only in values (and the many fuzz examples that repeat a
# shape) lower to the same HLO; compiling them again is most of the suite's time.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

_XLA_CACHE = tempfile.mkdtemp(prefix="flax_arch_xla_cache_")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
