"""Does the paper's 7B fit? AOT-compiles its SFT step and GRPO update on simulated CPU devices.

  python benchmarks/scale_7b.py                      # every setting below (~10 min on 2 quiet cores)
  python benchmarks/scale_7b.py --settings sft_fsdp8_full,grpo_fsdp8_full
  python benchmarks/scale_7b.py --preset tiny        # the same programs at a toy shape (seconds)

No weights and no device memory: the train step (dsmath_jax/train/step.py, the step every
task runs) is jitted with the state's shardings, lowered on jax.ShapeDtypeStructs and
compiled for a mesh of `--devices` simulated CPU devices. Per setting it prints
  - per-device bytes from compiled.memory_analysis(): arguments (params + Adam state, already
    sharded), temporaries (activations, gradients, logits), their sum less the donated
    state (alias); verdicts against an 80 GB H100, a 95 GB TPU v5p and a 16 GB TPU v5e, each
    with 10% of the card kept free for the runtime and fragmentation;
  - per-device FLOPs from compiled.cost_analysis(). XLA counts a while-loop body once, so the
    step's FLOPs are measured on 1- and 2-layer unrolled copies of the same step over one
    micro-batch and extrapolated: (F1 + (layers - 1) (F2 - F1)) x micro-batches;
  - the MFU ceiling: model FLOPs (LlamaConfig.flops_per_token: 6 N + causal attention, the
    output projection only where the loss reads logits) over the FLOPs the compiled step
    executes. Rematerialization re-runs forward passes, so a step at the card's peak
    would still be at most this MFU.
The CPU compiler's buffer assignment stands in for the GPU/TPU one: expect the accelerator
figures to differ by some percent (other fusions), not by factors.

Shapes (paper §3.1, §4.2; configs/sft.py, configs/grpo.py): SFT 256 rows x 4096 packed tokens,
AdamW, float32 master weights, bfloat16 compute. GRPO 16 questions x G = 64 = 1024 outputs, one
output per row (rl.outputs_per_row = 1): rows of a 512-token prompt + 1024 response tokens,
logits at the 1024 response slots, KL to a reference (its log-probs are an input).
Prints one line per setting and a final JSON line.
"""
import argparse
import dataclasses
import functools
import json
import os
import sys
import time


@dataclasses.dataclass(frozen=True)
class Setting:
  name: str
  task: str                   # "sft" | "grpo"
  mesh: tuple[int, int, int]  # (data, fsdp, tensor)
  remat: str                  # "full" | "dots" | "none" (LlamaConfig.remat)
  num_microbatches: int       # train.num_microbatches


SETTINGS = (
    # SFT: 256 rows of 4096 tokens. 8 devices, one row per device per micro-batch.
    Setting("sft_fsdp8_full", "sft", (1, 8, 1), "full", 32),
    Setting("sft_fsdp8_dots", "sft", (1, 8, 1), "dots", 32),
    # 32 devices (a v5e-32 slice): one row per device per micro-batch; or heads and vocabulary
    # split 4 ways (tensor), which divides the attention scores and logits of a row by 4.
    Setting("sft_fsdp32_full", "sft", (1, 32, 1), "full", 8),
    Setting("sft_fsdp8_tp4_full", "sft", (1, 8, 4), "full", 32),
    # GRPO update: 1024 rows of 512 + 1024 tokens; configs/grpo.py's 16 micro-batches = 8 rows
    # per device per micro-batch on 8 devices; 64 micro-batches = 2 rows.
    Setting("grpo_fsdp8_full_mb16", "grpo", (1, 8, 1), "full", 16),
    Setting("grpo_fsdp8_full_mb64", "grpo", (1, 8, 1), "full", 64),
    Setting("grpo_fsdp32_full", "grpo", (1, 32, 1), "full", 32),
    Setting("grpo_fsdp8_tp4_full", "grpo", (1, 8, 4), "full", 128),
)
CARDS = (("80 GB H100", 80e9), ("95 GB TPU v5p", 95e9), ("16 GB TPU v5e", 16e9))
USABLE = 0.9                  # share of a card's memory a step may plan to use


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--settings", default="all",
                      help="all | sft | grpo | comma-separated names: " + ",".join(s.name for s in SETTINGS))
  parser.add_argument("--devices", type=int, default=32, help="simulated CPU devices")
  parser.add_argument("--preset", default="deepseek_math_7b", help="configs/common.py model preset")
  parser.add_argument("--sft_rows", type=int, default=256)
  parser.add_argument("--sft_seq", type=int, default=4096)
  parser.add_argument("--grpo_rows", type=int, default=1024)
  parser.add_argument("--grpo_prompt", type=int, default=512)
  parser.add_argument("--grpo_response", type=int, default=1024)
  parser.add_argument("--skip_flops", action="store_true", help="memory only (one compile per setting)")
  return parser.parse_args(argv)


def select(spec: str) -> list[Setting]:
  if spec == "all":
    return list(SETTINGS)
  if spec in ("sft", "grpo"):
    return [s for s in SETTINGS if s.task == spec]
  by_name = {s.name: s for s in SETTINGS}
  unknown = [n for n in spec.split(",") if n not in by_name]
  if unknown:
    raise SystemExit(f"unknown settings {unknown}; known: {sorted(by_name)}")
  return [by_name[n] for n in spec.split(",")]


if __name__ == "__main__":
  ARGS = parse_args()
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
  os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={ARGS.devices}"])
  os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from configs import common, grpo as grpo_config, sft as sft_config  # noqa: E402
from dsmath_jax import sharding  # noqa: E402
from dsmath_jax.model import llama  # noqa: E402
from dsmath_jax.rl import loss as rl_loss  # noqa: E402
from dsmath_jax.train import loss as train_loss  # noqa: E402
from dsmath_jax.train import optim  # noqa: E402
from dsmath_jax.train import state as state_lib  # noqa: E402
from dsmath_jax.train import step as step_lib  # noqa: E402


def batch_spec(setting: Setting, args) -> dict[str, tuple[tuple[int, ...], jnp.dtype]]:
  """{field: (shape, dtype)} of the step's global batch."""
  if setting.task == "sft":
    shape = (args.sft_rows, args.sft_seq)
    return {"tokens": (shape, jnp.int32), "segment_ids": (shape, jnp.int32),
            "positions": (shape, jnp.int32), "loss_mask": (shape, jnp.float32)}
  rows, seq = args.grpo_rows, args.grpo_prompt + args.grpo_response
  targets = (rows, 1, args.grpo_response)
  spec = {name: ((rows, seq), jnp.int32) for name in ("tokens", "segment_ids", "prefix_segment_ids", "positions")}
  spec.update({name: (targets, jnp.int32) for name in ("target_slots", "target_tokens")})
  spec.update({name: (targets, jnp.float32)
               for name in ("loss_mask", "old_logprobs", "advantages", "ref_logprobs")})
  return spec


def task_config(setting: Setting, preset: str):
  """The task's own 7B config (optimizer and all), with this setting's model knobs."""
  config = sft_config.get_config("7b") if setting.task == "sft" else grpo_config.get_config(None)
  config.model = common.model(preset, dtype="bfloat16", param_dtype="float32", remat=setting.remat)
  return config


def compile_step(setting: Setting, args, *, num_layers=None, scan_layers=True, microbatch_only=False):
  """The compiled train step of a setting (optionally a shallow unrolled copy over one micro-batch)."""
  config = task_config(setting, args.preset)
  overrides = {} if num_layers is None else dict(num_layers=num_layers)
  model_config = dataclasses.replace(llama.LlamaConfig.from_config(config.model),
                                     scan_layers=scan_layers, **overrides)
  mesh = sharding.make_mesh(dict(zip(sharding.MESH_AXES, setting.mesh)),
                            jax.devices()[:setting.mesh[0] * setting.mesh[1] * setting.mesh[2]])
  rules = common.LOGICAL_AXIS_RULES
  spec = batch_spec(setting, args)
  microbatches = setting.num_microbatches
  if microbatch_only:
    spec = {k: ((shape[0] // microbatches, *shape[1:]), dtype) for k, (shape, dtype) in spec.items()}
    microbatches = 1
  if setting.task == "sft":
    loss_fn = functools.partial(train_loss.cross_entropy_loss, logits_chunk=model_config.logits_chunk)
  else:
    loss_fn = rl_loss.make_loss_fn(clip_eps=config.rl.clip_eps, kl_coef=config.rl.kl_coef,
                                   aggregation=config.rl.aggregation, logits_chunk=model_config.logits_chunk)
  state, state_shardings = state_lib.abstract_train_state(optim.OptimConfig.from_config(config.optim),
                                                          model_config, mesh, rules)
  shapes = {k: shape for k, (shape, _) in spec.items()}
  in_batch = step_lib.batch_shardings(mesh, rules, shapes)
  batch = {k: jax.ShapeDtypeStruct(shape, dtype, sharding=in_batch[k]) for k, (shape, dtype) in spec.items()}
  step = jax.jit(lambda s, b: step_lib.train_step(
      s, b, loss_fn=loss_fn, apply_fn=step_lib.make_apply_fn(model_config),
      num_microbatches=microbatches), in_shardings=(state_shardings, in_batch),
      out_shardings=(state_shardings, None), donate_argnums=0)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    return step.lower(state, batch).compile(), model_config


def model_flops(setting: Setting, config: llama.LlamaConfig, args) -> float:
  """Useful FLOPs of one step (whole mesh): 6 N per token + causal attention, the output
  projection counted only at the positions whose logits the loss reads."""
  if setting.task == "sft":
    return config.flops_per_token(args.sft_seq) * args.sft_rows * args.sft_seq
  seq = args.grpo_prompt + args.grpo_response
  unused_head = 6.0 * config.vocab_size * config.hidden_size * (seq - args.grpo_response)
  return (config.flops_per_token(seq) * seq - unused_head) * args.grpo_rows


def analyse(setting: Setting, args) -> dict:
  start = time.perf_counter()
  compiled, config = compile_step(setting, args)
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  arguments, temps = memory.argument_size_in_bytes, memory.temp_size_in_bytes
  peak = arguments + memory.output_size_in_bytes - memory.alias_size_in_bytes + temps
  devices = setting.mesh[0] * setting.mesh[1] * setting.mesh[2]
  report = dict(setting=setting.name, task=setting.task, mesh=dict(zip(sharding.MESH_AXES, setting.mesh)),
                remat=setting.remat, num_microbatches=setting.num_microbatches,
                params=config.num_params, argument_bytes=arguments, temp_bytes=temps,
                peak_bytes_per_device=peak, compile_s=round(compile_s, 1),
                fits={card: peak <= USABLE * capacity for card, capacity in CARDS})
  if not args.skip_flops:
    shallow = [compile_step(setting, args, num_layers=n, scan_layers=False, microbatch_only=True)[0]
               for n in (1, 2)]
    f1, f2 = (c.cost_analysis()["flops"] for c in shallow)
    step_flops = (f1 + (config.num_layers - 1) * (f2 - f1)) * setting.num_microbatches
    useful = model_flops(setting, config, args) / devices
    report.update(flops_per_device=step_flops, model_flops_per_device=useful,
                  mfu_ceiling=useful / step_flops)
  return report


def describe(r: dict) -> str:
  gb = lambda b: f"{b / 1e9:.1f} GB"
  mesh = "x".join(f"{k}{v}" for k, v in r["mesh"].items() if v > 1) or "1 device"
  fits = ", ".join(f"{'fits' if ok else 'does NOT fit'} {card}" for card, ok in r["fits"].items())
  line = (f"{r['setting']:22s} {mesh:>8s} remat={r['remat']:4s} micro={r['num_microbatches']:3d}: "
          f"per device {gb(r['peak_bytes_per_device'])} (state {gb(r['argument_bytes'])}, "
          f"temporaries {gb(r['temp_bytes'])}) -> {fits}")
  if "flops_per_device" in r:
    line += (f"; {r['flops_per_device'] / 1e12:.0f} TFLOP/device/step, "
             f"MFU ceiling {r['mfu_ceiling']:.0%}")
  return line + f" [compile {r['compile_s']:.0f}s]"


def main(args):
  print(f"{args.preset} on {jax.device_count()} simulated {jax.devices()[0].platform} devices", flush=True)
  reports = []
  for setting in select(args.settings):
    reports.append(analyse(setting, args))
    print(describe(reports[-1]), flush=True)
  for task in ("sft", "grpo"):
    fitting = [r for r in reports if r["task"] == task and r["fits"]["80 GB H100"]]
    if fitting:
      best = max(fitting, key=lambda r: (r.get("mfu_ceiling", 0), -r["peak_bytes_per_device"]))
      print(f"{task} on 80 GB cards: {best['setting']} fits with {best['peak_bytes_per_device'] / 1e9:.1f} GB "
            f"per device (the best MFU ceiling of the fitting settings tried)")
    elif any(r["task"] == task for r in reports):
      print(f"{task}: no tried setting fits an 80 GB card")
  print(json.dumps(dict(benchmark="scale_7b", preset=args.preset, settings=reports)))
  return reports


if __name__ == "__main__":
  main(ARGS)
