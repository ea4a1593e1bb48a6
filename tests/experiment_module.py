"""Loads an experiment's module by file path, under a name of its own.

Several experiments have a `task.py`; two tests importing `task` through sys.path in one
pytest worker would share whichever came first.
"""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(experiment: str, module: str):
  """experiments/<experiment>/<module>.py as the module `<experiment>_<module>`."""
  spec = importlib.util.spec_from_file_location(f"{experiment}_{module}",
                                                os.path.join(ROOT, "experiments", experiment, f"{module}.py"))
  loaded = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(loaded)
  return loaded
