"""Execute notebooks at their full settings and store them with their outputs (so GitHub and Colab
show the figures without running them); tests/test_notebooks.py checks the stored outputs and
re-executes every notebook from blank at its CI settings.

  nice -n 19 python notebooks/store_outputs.py 01_quickstart_and_checkpoints.ipynb 02_grpo_step_by_step.ipynb

Run from the repository root, one notebook after the other (02 reads 01's runs/quickstart). The
kernel gets one CPU device, as Colab's CPU runtime; stderr (progress bars, warnings) is dropped
from the stored file, stdout, tables and images are kept.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def store(name: str) -> None:
  path = os.path.join(ROOT, "notebooks", name)
  notebook = nbformat.read(path, as_version=4)
  for variable in ("DSMATH_NOTEBOOK_TINY", "DSMATH_NOTEBOOK_WORKDIR", "MPLBACKEND", "XLA_FLAGS"):
    os.environ.pop(variable, None)          # the full settings and the inline figure backend
  start = time.time()
  NotebookClient(notebook, timeout=3600, kernel_name="python3",
                 resources={"metadata": {"path": ROOT}}).execute()
  for cell in notebook.cells:
    if cell.cell_type == "code":
      cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
  nbformat.write(notebook, path)
  print(f"{name}: executed in {time.time() - start:.0f} s, stored {os.path.getsize(path) / 1e3:.0f} kB")


if __name__ == "__main__":
  for notebook_name in sys.argv[1:]:
    store(notebook_name)
