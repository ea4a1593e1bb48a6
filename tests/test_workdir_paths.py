"""Workdirs anywhere (dsmath_jax/paths.py): a gs:// workdir gets everything a local one gets.

The object store is a real HTTP server speaking the GCS JSON API (gcp-storage-emulator, in memory,
in this process): our files go to it through epath -> fsspec gcsfs (STORAGE_EMULATOR_HOST) and
orbax's arrays through tensorstore's gcs kvstore (TENSORSTORE_GCS_HTTP_URL). Nothing strips the
scheme: a byte written to the local disk instead would be missing from the bucket, and the runs'
working directory is checked to stay empty.
"""
import json
import logging
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "dsmath-test"
# The tiny config's "deepseek" schedule steps down at 80% of optim.steps, so a 4-step run would not
# be the first half of an 8-step one; a constant rate (after warmup) makes it so.
CONSTANT_LR = ("--config.optim.schedule=constant",)


def _send_generation_headers():
  """GCS answers a media download with its object's generation in `x-goog-generation`; the emulator
  omits it, and tensorstore, which reads it back to update an OCDBT manifest conditionally, then
  fails with "Malformed StorageGeneration". Adds the header (objects.get looks `download` up by name)."""
  from gcp_storage_emulator.handlers import objects
  if getattr(objects.download, "sends_generation", False):
    return
  plain = objects.download

  def download(request, response, storage, *args, **kwargs):
    try:
      found = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
      response["x-goog-generation"] = str(found["generation"])
      response["x-goog-metageneration"] = str(found.get("metageneration", "1"))
    except Exception:            # NotFound: the plain handler answers 404
      pass
    return plain(request, response, storage, *args, **kwargs)

  download.sends_generation = True
  objects.download = download


@pytest.fixture(scope="module")
def gcs():
  """The emulator's URL; the environment points gcsfs and tensorstore at it (module-wide, since
  epath caches its gcsfs filesystem, and with it the endpoint, per process)."""
  from gcp_storage_emulator.server import create_server
  logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)   # its 404s are orbax's probes
  _send_generation_headers()
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
  server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
  server.start()
  url = f"http://127.0.0.1:{port}"
  env = {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test"}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  yield env
  for key, value in saved.items():
    if value is None:
      os.environ.pop(key, None)
    else:
      os.environ[key] = value
  server.stop()


def _fresh(p):
  """epath.Path(p) with gcsfs's listing cache dropped (another process wrote the bucket)."""
  from etils import epath
  from etils.epath import backend
  backend.fsspec_backend.fs("gs://x").invalidate_cache()
  return epath.Path(p)


def _main(workdir: str, cwd, *overrides: str, config: str = "pretrain.py:tiny") -> subprocess.CompletedProcess:
  """`python -m dsmath_jax.main --config=configs/CONFIG --workdir=WORKDIR` in `cwd`."""
  os.makedirs(cwd, exist_ok=True)
  command = [sys.executable, "-m", "dsmath_jax.main", f"--config={REPO}/configs/{config}",
             f"--workdir={workdir}", *overrides]
  env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
  done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-4000:]
  return done


def _losses(records) -> dict:
  return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_pretrain_in_gcs_writes_everything_there_and_resumes_like_a_local_run(gcs, tmp_path):
  from dsmath_jax.model import loading
  from dsmath_jax.train import metrics as metrics_lib
  workdir = f"gs://{BUCKET}/runs/pretrain_tiny"
  cwd = tmp_path / "cwd"
  _main(workdir, cwd, "--config.optim.steps=4", *CONSTANT_LR)   # checkpoint_every=4: one at 4
  steps = sorted(int(p.name) for p in _fresh(f"{workdir}/checkpoints").iterdir())
  assert steps[-1] == 4, steps
  _main(workdir, cwd, "--config.optim.steps=8", "--config.allow_config_change=True", *CONSTANT_LR)
  _main(str(tmp_path / "local"), cwd, "--config.optim.steps=8", *CONSTANT_LR)   # uninterrupted reference
  assert not os.listdir(cwd), f"written beside the run instead of the bucket: {os.listdir(cwd)}"

  root = _fresh(workdir)
  names = {p.name for p in root.iterdir()}
  assert {"config.json", "metrics.jsonl", "checkpoints", "model", "tensorboard", "loss.png"} <= names, names
  assert json.loads((root / "config.json").read_text())["optim"]["steps"] == 8
  assert (sorted(p.name for p in (root / "checkpoints").iterdir())
          == sorted(os.listdir(tmp_path / "local" / "checkpoints")))
  assert any(p.name.startswith("events.out.tfevents") for p in (root / "tensorboard").iterdir())
  assert (root / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

  # The resumed run appended to the remote metrics.jsonl: steps 1-4 from the first run, 5-8 from the
  # second (which continued from checkpoint 4, not from scratch), equal to the local run's losses.
  remote = metrics_lib.read_metrics(f"{workdir}/metrics.jsonl")
  local = metrics_lib.read_metrics(str(tmp_path / "local" / "metrics.jsonl"))
  assert sorted(_losses(remote)) == list(range(1, 9))
  lines = (root / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines if "loss" in json.loads(line)] == list(range(1, 9))
  np.testing.assert_allclose([_losses(remote)[s] for s in range(1, 9)],
                             [_losses(local)[s] for s in range(1, 9)], rtol=1e-6)

  # The saved model loads back from the URL, equal to the local run's.
  from_gcs = loading.load_pretrained(f"{workdir}/model")
  from_disk = loading.load_pretrained(str(tmp_path / "local" / "model"))
  assert from_gcs.config == from_disk.config
  assert from_gcs.tokenizer.encode("12+7=19") == from_disk.tokenizer.encode("12+7=19")
  import jax
  for a, b in zip(jax.tree.leaves(from_gcs.params), jax.tree.leaves(from_disk.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_unknown_schemes_are_refused_not_written_locally(tmp_path, monkeypatch):
  from dsmath_jax import config_types, paths
  monkeypatch.chdir(tmp_path)
  for url in ("memory://runs/x", "file:///tmp/x", "hdfs://namenode/x"):
    with pytest.raises(ValueError, match="unsupported URL scheme"):
      paths.path(url)
    with pytest.raises(ValueError, match="unsupported URL scheme"):
      config_types.write_config({"task": "pretrain"}, url)
  with pytest.raises(ValueError, match="orbax-checkpoint writes arrays to local paths and gs://"):
    paths.check_orbax_dir("s3://bucket/run/checkpoints", "checkpoint directory")
  assert not os.listdir(tmp_path)


def test_atomic_outputs_in_gcs(gcs):
  """One object is written whole or not at all; a folder is replaced with its marker last."""
  from dsmath_jax import atomic
  target = f"gs://{BUCKET}/atomic/summary.json"
  with atomic.write_file(target) as f:
    f.write("old")
  with pytest.raises(RuntimeError):
    with atomic.write_file(target) as f:
      f.write("half of the new")
      raise RuntimeError("killed")
  assert _fresh(target).read_text() == "old"

  folder = f"gs://{BUCKET}/atomic/report"
  with atomic.directory(folder, marker="done.json") as staging:
    for name in ("a.txt", "done.json"):
      with open(os.path.join(staging, name), "w") as f:
        f.write("v1")
  with pytest.raises(RuntimeError):
    with atomic.directory(folder, marker="done.json") as staging:
      with open(os.path.join(staging, "a.txt"), "w") as f:
        f.write("v2")
      raise RuntimeError("killed")
  assert {p.name: p.read_text() for p in _fresh(folder).iterdir()} == {"a.txt": "v1", "done.json": "v1"}
  with atomic.directory(folder, marker="done.json") as staging:
    with open(os.path.join(staging, "b.txt"), "w") as f:
      f.write("v3")
  assert sorted(p.name for p in _fresh(folder).iterdir()) == ["b.txt"]      # the old folder is gone


def test_checkpointer_sets_aside_an_unreadable_gcs_step(gcs):
  """The fallback to the previous step works in the bucket too: a cut metadata file is named."""
  import jax.numpy as jnp
  from dsmath_jax.train import checkpointing
  directory = f"gs://{BUCKET}/ckpt_damaged"
  state = {"w": jnp.arange(6.0)}
  checkpointer = checkpointing.Checkpointer(directory, every_steps=1, keep=3, async_save=False)
  for step in (1, 2):
    checkpointer.save(step, {"w": state["w"] * step})
  checkpointer.close()
  damaged = _fresh(f"{directory}/2/state/_METADATA")
  damaged.write_text(damaged.read_text()[:20])
  checkpointer = checkpointing.Checkpointer(directory, every_steps=1, keep=3, async_save=False)
  restored, step = checkpointer.restore(state)
  checkpointer.close()
  assert step == 1
  np.testing.assert_array_equal(np.asarray(restored["w"]), np.arange(6.0))
  assert sorted(p.name for p in _fresh(directory).iterdir()) == ["1", "2.unreadable"]


# GRPO :tiny with the benchmark evaluation on at every step (its graded samples go to WORKDIR/bench).
GRPO_TINY = ("--config.benchmark_eval.every_steps=1", "--config.train.checkpoint_every=1")
# Metrics that depend on the wall clock, not on what the run computed.
CLOCK_KEYS = ("time_", "tokens_per_s", "_per_second", "seconds")


def _computed(records) -> dict:
  """{(step, key): value} of every metric but the wall-clock ones."""
  return {(r["step"], k): v for r in records for k, v in r.items()
          if k != "step" and not any(k.startswith(c) or k.endswith(c) for c in CLOCK_KEYS)}


@pytest.fixture(scope="module")
def grpo_runs(gcs, tmp_path_factory):
  """(bucket workdir, local workdir, cwd): GRPO :tiny in the bucket, 1 step then resumed to 2, and the
  same 2 steps uninterrupted in a local folder."""
  root = tmp_path_factory.mktemp("grpo")
  workdir, local, cwd = f"gs://{BUCKET}/runs/grpo_tiny", str(root / "local"), root / "cwd"
  _main(workdir, cwd, "--config.optim.steps=1", *GRPO_TINY, config="grpo.py:tiny")
  _main(workdir, cwd, "--config.optim.steps=2", "--config.allow_config_change=True", *GRPO_TINY,
        config="grpo.py:tiny")
  _main(local, cwd, "--config.optim.steps=2", *GRPO_TINY, config="grpo.py:tiny")
  return workdir, local, cwd


def test_grpo_in_gcs_writes_everything_there_and_resumes_like_a_local_run(grpo_runs):
  from dsmath_jax.model import loading
  from dsmath_jax.train import metrics as metrics_lib
  workdir, local, cwd = grpo_runs
  assert not os.listdir(cwd), f"written beside the run instead of the bucket: {os.listdir(cwd)}"
  root = _fresh(workdir)
  names = {p.name for p in root.iterdir()}
  assert {"config.json", "metrics.jsonl", "checkpoints", "model", "tensorboard", "curves.png", "bench"} <= names, names
  assert json.loads((root / "config.json").read_text())["optim"]["steps"] == 2
  assert sorted(p.name for p in (root / "checkpoints").iterdir()) == sorted(os.listdir(f"{local}/checkpoints"))
  assert (root / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

  # The first run logged steps 0 (the benchmark before training) and 1; the resumed one continued from
  # its checkpoint with step 2 (a fresh start would log 0 and 1 again): every computed metric equals
  # the uninterrupted local run's.
  lines = (root / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [0, 1, 2]
  remote = _computed(metrics_lib.read_metrics(f"{workdir}/metrics.jsonl"))
  reference = _computed(metrics_lib.read_metrics(f"{local}/metrics.jsonl"))
  assert sorted(remote) == sorted(reference)
  assert {step for step, _ in remote} == {0, 1, 2} and (2, "bench/gsm8k/accuracy") in remote
  np.testing.assert_allclose([remote[k] for k in sorted(reference)], [reference[k] for k in sorted(reference)],
                             rtol=1e-5, atol=1e-7)

  # The benchmark's graded samples of every evaluated step are in the bucket, equal to the local run's.
  bench = root / "bench" / "gsm8k"
  assert sorted(p.name for p in bench.iterdir()) == sorted(os.listdir(f"{local}/bench/gsm8k"))
  for name in os.listdir(f"{local}/bench/gsm8k"):
    with open(f"{local}/bench/gsm8k/{name}") as f:
      assert (bench / name).read_text() == f.read(), name

  from_gcs, from_disk = loading.load_pretrained(f"{workdir}/model"), loading.load_pretrained(f"{local}/model")
  assert from_gcs.config == from_disk.config
  import jax
  for a, b in zip(jax.tree.leaves(from_gcs.params), jax.tree.leaves(from_disk.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@pytest.fixture(scope="module")
def saved_models(gcs, tmp_path_factory):
  """(bucket model, local model, cwd): one random tiny model (byte tokenizer) saved in both places, in
  process: seconds, where the GRPO runs take minutes (and a module fixture runs once per xdist worker)."""
  import jax
  import jax.numpy as jnp
  from configs import common
  from dsmath_jax import tokenizer as tokenizers
  from dsmath_jax.model import llama, loading
  root = tmp_path_factory.mktemp("models")
  config = llama.LlamaConfig.from_config(common.model("tiny"))
  rng = np.random.default_rng(0)
  shapes, _ = loading.abstract_params(config)
  params = jax.tree.map(lambda s: jnp.asarray(0.02 * rng.normal(size=s.shape), s.dtype), shapes)
  remote, local = f"gs://{BUCKET}/models/tiny", str(root / "model")
  for directory in (remote, local):
    loading.save_pretrained(directory, config, params, tokenizers.ByteTokenizer())
  return remote, local, root / "cwd"


def test_eval_of_a_gcs_model_into_gcs_equals_a_local_eval(saved_models, tmp_path):
  """config.checkpoint read from the bucket, every report written there; the summaries equal those of
  the same model's local eval (sampled at temperature 0.7, so equal params give equal samples)."""
  workdir, local, cwd = saved_models
  eval_dir = f"gs://{BUCKET}/runs/eval_tiny"
  _main(eval_dir, cwd, f"--config.checkpoint={workdir}", config="eval.py:tiny")
  _main(str(tmp_path / "eval"), cwd, f"--config.checkpoint={local}", config="eval.py:tiny")
  assert not os.listdir(cwd), f"written beside the run instead of the bucket: {os.listdir(cwd)}"
  remote, here = _fresh(f"{eval_dir}/eval"), tmp_path / "eval" / "eval"
  assert sorted(p.name for p in remote.iterdir()) == sorted(os.listdir(here))
  assert sorted(p.name for p in (remote / "tiny").iterdir()) == sorted(os.listdir(here / "tiny"))

  def computed(value):
    """The summary less where the model came from (`checkpoint`) and the wall-clock figures."""
    if isinstance(value, dict):
      return {k: computed(v) for k, v in value.items()
              if k != "checkpoint" and not any(k.startswith(c) or k.endswith(c) for c in CLOCK_KEYS)}
    return [computed(v) for v in value] if isinstance(value, list) else value

  for name in ("summary.json", "tiny/summary.json"):
    assert computed(json.loads((remote / name).read_text())) == computed(json.loads((here / name).read_text())), name
  assert json.loads((remote / "summary.json").read_text())["checkpoint"] == workdir
  assert (remote / "tiny" / "samples.jsonl").read_text() == (here / "tiny" / "samples.jsonl").read_text()


def test_sample_of_a_gcs_model_into_gcs_equals_a_local_sample(saved_models, tmp_path):
  """`sample` reads config.checkpoint from the bucket and writes samples.jsonl and its summary there,
  equal to the same model's local samples."""
  workdir, local, cwd = saved_models
  sample_dir = f"gs://{BUCKET}/runs/sample_tiny"
  _main(sample_dir, cwd, f"--config.checkpoint={workdir}", config="sample.py:tiny")
  _main(str(tmp_path / "sample"), cwd, f"--config.checkpoint={local}", config="sample.py:tiny")
  assert not os.listdir(cwd), f"written beside the run instead of the bucket: {os.listdir(cwd)}"
  remote = _fresh(sample_dir)
  assert (remote / "samples.jsonl").read_text() == (tmp_path / "sample" / "samples.jsonl").read_text()
  summary = json.loads((remote / "sample_summary.json").read_text())
  assert summary["samples"] == 6 and summary["checkpoint"] == workdir


def test_reward_model_in_gcs_resumes_from_its_bucket_examples_like_a_local_run(gcs, tmp_path):
  """The resumed run reads its labelled examples (examples.jsonl) and checkpoint back from the bucket."""
  from dsmath_jax.rl import reward_model as rm_lib
  from dsmath_jax.train import metrics as metrics_lib
  workdir, local, cwd = f"gs://{BUCKET}/runs/rm_tiny", str(tmp_path / "local"), tmp_path / "cwd"
  tiny = ("--config.data.global_batch=8", "--config.label.samples_per_question=4")   # 8 divides over 1 or 8 devices
  _main(workdir, cwd, "--config.optim.steps=1", *tiny, config="reward_model.py:tiny")
  _main(workdir, cwd, "--config.optim.steps=2", "--config.allow_config_change=True", *tiny,
        config="reward_model.py:tiny")
  _main(local, cwd, "--config.optim.steps=2", *tiny, config="reward_model.py:tiny")
  assert not os.listdir(cwd), f"written beside the run instead of the bucket: {os.listdir(cwd)}"
  root = _fresh(workdir)
  assert {"config.json", "metrics.jsonl", "examples.jsonl", "checkpoints", "model", "curves.png"} <= {
      p.name for p in root.iterdir()}
  with open(f"{local}/examples.jsonl") as f:
    assert (root / "examples.jsonl").read_text() == f.read()
  lines = (root / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [1, 2]          # resumed, not restarted
  remote = _computed(metrics_lib.read_metrics(f"{workdir}/metrics.jsonl"))
  reference = _computed(metrics_lib.read_metrics(f"{local}/metrics.jsonl"))
  assert sorted(remote) == sorted(reference)
  np.testing.assert_allclose([remote[k] for k in sorted(reference)], [reference[k] for k in sorted(reference)],
                             rtol=1e-5, atol=1e-7)
  import jax
  _, from_gcs, _ = rm_lib.load_reward_model(f"{workdir}/model")
  _, from_disk, _ = rm_lib.load_reward_model(f"{local}/model")
  for a, b in zip(jax.tree.leaves(from_gcs), jax.tree.leaves(from_disk)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
