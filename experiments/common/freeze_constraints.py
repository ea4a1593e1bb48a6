"""Writes constraints.txt: the versions this machine resolved for dsmath_jax's dependencies.

  python experiments/common/freeze_constraints.py > constraints.txt

`pip freeze` filtered to what setup.py asks for (with every extra) and what those need in turn,
so a Docker image, a TPU worker or CI installs the same versions (`pip install -c constraints.txt`).
"""
import importlib.metadata as metadata
import re
import sys

from packaging.requirements import Requirement

ROOTS = ("dsmath-jax",)


def _name(text: str) -> str:
  return re.sub(r"[-_.]+", "-", text).lower()


def closure(roots) -> dict[str, str]:
  """{canonical name: version} of the installed distributions reachable from `roots`."""
  seen, todo = {}, [_name(r) for r in roots]
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    try:
      dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
      continue
    seen[name] = dist.version
    for line in dist.requires or ():
      requirement = Requirement(line)
      marker = requirement.marker
      # Every extra of the package itself; the platform markers of this machine for the rest.
      if marker and not (name in ROOTS or marker.evaluate({"extra": ""})):
        continue
      todo.append(_name(requirement.name))
  return seen


if __name__ == "__main__":
  pins = closure(ROOTS)
  sys.stdout.write("# pip install -c constraints.txt ... (python 3.11, written by "
                   "experiments/common/freeze_constraints.py)\n")
  for name in sorted(pins):
    if name not in ROOTS:   # local labels (torch 2.13.0+cpu) dropped: the same pin fits CPU and CUDA
      sys.stdout.write(f"{name}=={pins[name].split('+')[0]}\n")
