"""XLA CPU backend settings, chosen by measurement on the 2-core CPU of benchmarks/README.md.

jaxlib 0.10's CPU backend hands dots and reductions to YNNPACK. Two settings beat that:
- Dots only (`use_ynnpack_for_dots_only`, applied to XLA_FLAGS when the package is imported):
  a decode step's reductions (RMSNorm, a softmax over a few hundred slots) are tiny, and each
  YNNPACK call costs more than their work. A batch-64 SmolLM2-shaped decode step went from 219
  to 214 ms (benchmarks/xla_cpu_settings.py), the llama_125m 8 x 512 train step from ~204 to
  ~210 tokens/s (train_step.py run under each setting).
- No YNNPACK at all for decoding a few rows (`SMALL_BATCH_DECODE`, the sampler's compile
  options): a decode step with <= 16 rows multiplies a handful of vectors by every weight,
  where Eigen's kernels ran a llama_125m step at batch 8 in 38.1 ms against YNNPACK's 41.8 ms.
  At batch 64 YNNPACK was ahead again (214 vs 224 ms). Figures: benchmarks/README.md.
Other jaxlib versions are left alone: the option is experimental, and XLA aborts on a flag it
does not know. Accelerator backends ignore CPU options.
"""
import importlib.metadata
import os

YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
SMALL_BATCH_ROWS = 16             # decode calls with at most this many rows per device use Eigen


def _tuned_jaxlib() -> bool:
  try:
    return importlib.metadata.version("jaxlib").startswith("0.10.")
  except importlib.metadata.PackageNotFoundError:
    return False


TUNED = _tuned_jaxlib()
# YNNPACK for convolutions only, which no model here has: every dot goes to Eigen.
SMALL_BATCH_DECODE = {YNN_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"} if TUNED else {}


def use_ynnpack_for_dots_only() -> None:
  """Adds the dots-only setting to XLA_FLAGS unless the user set the option; effective only
  before jax starts its CPU backend (it reads XLA_FLAGS once)."""
  flags = os.environ.get("XLA_FLAGS", "")
  if TUNED and YNN_OPTION not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --{YNN_OPTION}=individual_dot".strip()
