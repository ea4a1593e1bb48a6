"""The launchers' --dry_run prints the exact commands; they must be the commands a user needs.

Each printed line is shell-quoted; shlex.split gives back the argv the launcher would run, and the
remote `python -m dsmath_jax.main ...` inside it must parse against the real config with its
overrides (absl flags + ml_collections, as main.py parses them), so a launcher that passes a key no
config has (the old `--config.distributed=True`) fails here.
"""
import pathlib
import re
import shlex
import subprocess

import pytest
from absl import flags
from ml_collections import config_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]


def dry_run(script: str, *args: str) -> list[list[str]]:
  """The argv of every command `script --dry_run args` would run."""
  done = subprocess.run(["bash", str(ROOT / script), "--dry_run", *args], cwd=ROOT,
                        capture_output=True, text=True, check=True)
  return [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]


def parse_main(argv: list[str]):
  """(config, workdir) that `python -m dsmath_jax.main ARGV` would run with."""
  assert argv[:3] == ["python", "-m", "dsmath_jax.main"], argv
  values = flags.FlagValues()
  config = config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                          sys_argv=["main", *argv[3:]])
  workdir = flags.DEFINE_string("workdir", None, "", flag_values=values)
  values(["main", *argv[3:]])
  return config.value, workdir.value


def option(argv: list[str], name: str) -> str:
  values = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
  assert len(values) == 1, (name, argv)
  return values[0]


def test_tpu_launch_runs_main_on_every_worker():
  (argv,) = dry_run("experiments/tpu/launch.sh", "dsmath-v4-32", "us-central2-b",
                    "configs/pretrain.py:tiny", "gs://bucket/runs/pt", "--config.optim.lr=0.01")
  assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "dsmath-v4-32"]
  assert option(argv, "--zone") == "us-central2-b" and option(argv, "--worker") == "all"
  remote = shlex.split(option(argv, "--command"))
  assert remote[:3] == ["cd", "~/dsmath_jax", "&&"] and remote[3] == "nohup"
  main = remote[4:remote.index(">")]
  config, workdir = parse_main(main)
  assert workdir == "gs://bucket/runs/pt"
  assert config.task == "pretrain" and config.optim.lr == 0.01
  assert not any("distributed" in a for a in main)


def test_tpu_create_queued_then_installs_pinned():
  commands = dry_run("experiments/tpu/create.sh", "--queued", "node", "us-west4-a", "v5litepod-16")
  assert commands[0][:6] == ["gcloud", "compute", "tpus", "queued-resources", "create", "node"]
  assert option(commands[0], "--accelerator-type") == "v5litepod-16"
  assert option(commands[0], "--node-id") == "node"
  install = option(commands[-1], "--command")
  assert 'pip install -q -c constraints.txt -e ".[corpus]" "jax[tpu]"' in install
  plain = dry_run("experiments/tpu/create.sh", "node", "z", "v4-8")
  assert plain[0][:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"]


def test_slurm_submits_one_task_per_node_running_main():
  (argv,) = dry_run("experiments/gpu/slurm.sh", "--nodes=4", "--gpus_per_node=8", "--partition=gpu",
                    "configs/sft.py:tiny", "/shared/runs/sft", "--config.optim.steps=7")
  assert argv[0] == "sbatch"
  assert option(argv, "--nodes") == "4" and option(argv, "--ntasks-per-node") == "1"
  assert option(argv, "--gpus-per-node") == "8" and option(argv, "--partition") == "gpu"
  wrapped = shlex.split(option(argv, "--wrap"))
  srun = wrapped.index("srun")
  main = [a for a in wrapped[srun + 1:] if not a.startswith("--kill-on-bad-exit")]
  config, workdir = parse_main(main)
  assert (config.task, config.optim.steps, workdir) == ("sft", 7, "/shared/runs/sft")


def test_gpu_launch_sets_the_variables_runtime_reads():
  (argv,) = dry_run("experiments/gpu/launch.sh", "--coordinator=node0:1234", "--num_processes=2",
                    "--process_id=1", "configs/grpo.py:tiny", "runs/grpo")
  assert argv[0] == "env"
  env = dict(a.split("=", 1) for a in argv[1:argv.index("python")])
  assert env["JAX_COORDINATOR_ADDRESS"] == "node0:1234"
  assert (env["JAX_NUM_PROCESSES"], env["JAX_PROCESS_ID"]) == ("2", "1")
  config, workdir = parse_main(argv[argv.index("python"):])
  assert (config.task, workdir) == ("grpo", "runs/grpo")


def test_unknown_launcher_option_fails():
  done = subprocess.run(["bash", "experiments/gpu/slurm.sh", "--nodez=2", "c", "w"], cwd=ROOT,
                        capture_output=True, text=True)
  assert done.returncode != 0 and "--nodez=2" in done.stderr


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_dockerfile_installs_as_the_readme_says(target):
  """Each image's pip line, less --no-cache-dir, is an install line of the README."""
  dockerfile = (ROOT / "Dockerfile").read_text()
  stage = dockerfile.split(f" AS {target}\n")[1].split("\nFROM ")[0]
  (install,) = re.findall(r"^RUN (pip install .*)$", stage, flags=re.M)
  install = install.replace(" --no-cache-dir", "")
  assert install in (ROOT / "README.md").read_text(), install
  pins = (ROOT / "constraints.txt").read_text()
  assert re.search(r"^jax==0\.10\.2$", pins, flags=re.M) and re.search(r"^flax==", pins, flags=re.M)
