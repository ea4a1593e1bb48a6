"""Orbax checkpoints of the train state and the data-iterator position; resume = re-run.

Each checkpoint step holds two items: `state` (the sharded TrainState, restored straight
into its shardings) and `data` (grain's iterator state, one file per host), so a
restarted run continues with exactly the batches an uninterrupted run would see. A loop
whose batches are a pure function of the step (GRPO's questions) saves `state` alone.
Saves are asynchronous (training continues while orbax writes), every `every_steps`,
keeping the last `keep`; SIGTERM (how TPU VMs are preempted) sets a flag on which the
loop saves at once and stops, as does orbax's multi-host preemption sync.
"""
import signal

import jax
import orbax.checkpoint as ocp
from absl import logging
from grain import checkpoint as grain_checkpoint


class Checkpointer:
  """CheckpointManager for (state, data iterator)."""

  def __init__(self, directory: str, *, every_steps: int, keep: int = 3, async_save: bool = True):
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
    """(state, step) from the latest checkpoint, setting the iterator's position in place;
    (state, 0) unchanged when there is none. `state` only gives shapes and shardings."""
    step = self.manager.latest_step()
    if step is None:
      return state, 0
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    items = dict(state=ocp.args.StandardRestore(target))
    if data_iterator is not None:
      items["data"] = grain_checkpoint.CheckpointRestore(data_iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    logging.info("restored checkpoint at step %d from %s", step, self.manager.directory)
    return restored.state, step

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
