"""Orbax checkpoints of the train state and the data-iterator position; resume = re-run.

Each checkpoint step holds two items: `state` (the sharded TrainState, restored straight
into its shardings) and `data` (grain's iterator state, one file per host), so a
restarted run continues with exactly the batches an uninterrupted run would see. Every host
packs the same global batches (data/pipeline.py), so every host's position is the same and a
run resumes on another number of processes (a preempted job often returns on another slice):
a host without a file of its own takes the saved one; saved positions that differ are refused. A loop
whose batches are a pure function of the step (GRPO's questions) saves `state` alone.
Saves are asynchronous (training continues while orbax writes), every `every_steps`,
keeping the last `keep`; SIGTERM (how TPU VMs are preempted) sets a flag on which the
loop saves at once and stops, as does orbax's multi-host preemption sync. A damaged latest
step does not stop a resume: `restore` falls back to the newest readable one, with a warning.

The directory may be a gs:// URL (paths.check_orbax_dir): orbax writes the arrays through
tensorstore's gcs kvstore and its metadata through epath, and on GCS marks a finished step with a
commit file instead of a rename, so a step cut short is never listed. s3:// is refused at start-up,
naming the reason: orbax-checkpoint writes arrays to local paths and gs:// only.
"""
import json
import os
import signal

import jax
import orbax.checkpoint as ocp
from absl import logging
from grain import checkpoint as grain_checkpoint

from dsmath_jax import paths


def _unparsable_json(directory: str) -> str | None:
  """The first metadata file under `directory` that is not valid JSON (orbax's own errors seldom
  name it), else None: then the damage is in the array data, which only tensorstore can read."""
  for path in paths.files(directory):
    if path.name.startswith("_") or path.name.endswith(".json") or path.parent.name == "array_metadatas":
      try:
        with path.open() as f:
          json.load(f)
      except (OSError, ValueError):
        return os.fspath(path)
  return None


def _shorten(message: str, limit: int = 400) -> str:
  """tensorstore errors carry the whole array spec; the first lines say what failed."""
  return message if len(message) <= limit else message[:limit] + " ..."


class UnreadableCheckpoint(RuntimeError):
  """A checkpoint step (or one part of it) that cannot be read; the message names the file."""


class _PositionsDiffer(ValueError):
  """Data positions saved by several processes that are not all the same (not a damaged file)."""


def _global_position(data_dir: str) -> str:
  """The data position saved by another number of processes: their files (`process_I-of-N.json`,
  grain's names) must all hold the same position, since every host reads the same global batches."""
  files = sorted(paths.path(data_dir).glob("process_*-of-*.json"), key=lambda f: f.name)
  if not files:
    raise FileNotFoundError(f"{data_dir} holds no process_*-of-*.json")
  names = [f.name for f in files]
  saved_by = names[0].rsplit("-of-", 1)[1][:-len(".json")]
  texts = {f.name: json.dumps(json.loads(f.read_text()), sort_keys=True) for f in files}
  if len(set(texts.values())) > 1:
    raise _PositionsDiffer(
        f"{data_dir}: saved by {saved_by} processes whose data positions differ ({', '.join(names)}), so "
        f"{jax.process_count()} processes cannot share them out; resume with {saved_by} processes")
  logging.info("data position saved by %s processes, restored on %d", saved_by, jax.process_count())
  return next(iter(texts.values()))


class Checkpointer:
  """CheckpointManager for (state, data iterator)."""

  def __init__(self, directory: str, *, every_steps: int, keep: int = 3, async_save: bool = True):
    directory = paths.check_orbax_dir(directory, "checkpoint directory")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=max(int(every_steps), 1),
        enable_async_checkpointing=async_save, create=True)
    self.manager = ocp.CheckpointManager(directory, options=options, item_names=("state", "data"))
    self.sigterm = False
    try:
      self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
    except ValueError:          # not the main thread (e.g. a notebook worker): no handler
      self._previous_handler = None

  def _on_sigterm(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM: saving a checkpoint at the end of this step, then stopping")
    self.sigterm = True

  def should_stop(self, step: int) -> bool:
    """True when this process got SIGTERM or any host reached orbax's preemption point."""
    return self.sigterm or self.manager.reached_preemption(step)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore(self, state, data_iterator=None):
    """(state, step) from the newest readable checkpoint, setting the iterator's position in place;
    (state, 0) unchanged when there is none. `state` only gives shapes and shardings.

    A step that cannot be read (a truncated array file, a cut data-iterator JSON: a disk filled or a
    copy interrupted) is logged as a warning naming its part and file, set aside as `STEP.unreadable`
    (kept for inspection; orbax no longer lists it, so the step can be saved again) and the previous
    step is tried: losing `every_steps` steps beats a run that cannot start. When no step can be read
    the error lists every step's failure.
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    if not steps:
      return state, 0
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    failures = []
    for step in steps:
      try:
        restored = self._restore_step(step, target, data_iterator)
      except UnreadableCheckpoint as error:
        logging.warning("checkpoint step %d is unreadable, trying the previous one: %s", step, error)
        failures.append(error)
        continue
      if failures:
        self._set_aside(steps[:len(failures)])
        logging.warning("resuming from step %d of %s: the newer step(s) %s could not be read", step,
                        self.directory, steps[:len(failures)])
      logging.info("restored checkpoint at step %d from %s", step, self.directory)
      return restored, step
    raise UnreadableCheckpoint(f"{self.directory}: no checkpoint can be read:\n  " +
                               "\n  ".join(str(e) for e in failures))

  @property
  def directory(self) -> str:
    return os.fspath(self.manager.directory)

  def _restore_step(self, step: int, target, data_iterator):
    """One step's items, each read on its own so that an error names the part and file that failed."""
    step_dir = paths.join(self.directory, str(step))
    try:
      state = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))).state
    except Exception as error:      # orbax/tensorstore raise many types for a damaged file
      where = _unparsable_json(paths.join(step_dir, "state")) or paths.join(step_dir, "state")
      raise UnreadableCheckpoint(f"{where}: the train state: {type(error).__name__}: "
                                 f"{_shorten(str(error))}") from error
    if data_iterator is not None:
      path = paths.join(step_dir, "data", f"process_{jax.process_index()}-of-{jax.process_count()}.json")
      try:
        if paths.path(path).exists():
          self.manager.restore(step, args=ocp.args.Composite(data=grain_checkpoint.CheckpointRestore(data_iterator)))
        else:
          data_iterator.set_state(json.loads(_global_position(paths.join(step_dir, "data"))))
          data_iterator.start_prefetch()               # as grain's own restore does
      except _PositionsDiffer:
        raise
      except Exception as error:
        raise UnreadableCheckpoint(f"{path}: the data iterator's position: {type(error).__name__}: "
                                   f"{_shorten(str(error))}") from error
    return state

  def _set_aside(self, steps) -> None:
    """Renames unreadable steps to STEP.unreadable (process 0) and re-lists the directory (in an
    object store the rename copies the step's objects, then deletes them)."""
    if jax.process_index() == 0:
      for step in steps:
        path = paths.path(self.directory) / str(step)
        aside = path.parent / f"{step}.unreadable"
        aside.rmtree(missing_ok=True)
        path.rename(aside)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("dsmath_jax checkpoint set aside")
    self.manager.reload()

  def save(self, step: int, state, data_iterator=None, *, force: bool = False) -> bool:
    """Saves when `step` is on the interval (or `force`); the iterator must have produced
    exactly the batches of steps [0, step)."""
    items = dict(state=ocp.args.StandardSave(state))
    if data_iterator is not None:
      items["data"] = grain_checkpoint.CheckpointSave(data_iterator)
    return self.manager.save(step, force=force, args=ocp.args.Composite(**items))

  def close(self) -> None:
    """Waits for pending async writes."""
    self.manager.wait_until_finished()
    self.manager.close()
    if self._previous_handler is not None:
      signal.signal(signal.SIGTERM, self._previous_handler)
