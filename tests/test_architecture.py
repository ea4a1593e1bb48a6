"""The import graph runs one way (docs/architecture.md): stages above shared libraries above the model.

An AST scan of every module of the package (function-local imports included, since a lazy
import is still a dependency): no module imports itself back through any chain, and no unit
(a top-level module or sub-package) imports a unit of a higher layer.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "dsmath_jax"

# Rank of every unit: an import must go to a strictly lower rank. Stages are ordered as the
# pipeline runs (a later stage may use an earlier one, never the reverse).
RANKS = {
    # ground floor: no dsmath_jax imports
    "paths": 0, "sharding": 0, "jsonl": 0, "gguf_file": 0, "templates": 0, "console": 0, "lifeline": 0,
    "xla_cpu": 0,                    # XLA CPU settings the package applies when imported
    # whole-or-nothing outputs and the resolved config, local or in an object store (paths)
    "atomic": 1, "config_types": 2,
    # the model and its vocabulary; the task prologue (mesh, rules, jit under the mesh), which the
    # model's own `convert` task uses too
    "tokenizer": 3, "runtime": 3, "model": 4,
    # libraries several stages share
    "grading": 5, "sandbox": 5, "decontaminate": 5,
    # the benchmark definitions: read by decontamination (corpus, datasets) and by eval
    "benchmarks": 6,
    # stages, in pipeline order
    "corpus": 7, "datasets": 8, "data": 9, "tokenizer_train": 10, "tokenizer_task": 11,
    "train": 12, "sample": 13, "rl": 14, "eval": 15,
    # the entry points
    "quickstart": 16, "main": 17,
}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
  """module -> the dsmath_jax modules it imports (a `from pkg import name` counts pkg.name if it
  is a module, else pkg)."""
  modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts}
  graph = {}
  for name, path in modules.items():
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        candidates = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                      else node.module for alias in node.names]
      else:
        continue
      targets |= {c for c in candidates if c.startswith("dsmath_jax.") and c in modules}
    graph[name] = targets - {name}
  return graph


def _unit(module: str) -> str:
  return module.split(".")[1] if "." in module else module


def test_no_import_cycle():
  graph = import_graph()
  state, stack = {}, []

  def visit(module):
    state[module] = "open"
    stack.append(module)
    for target in sorted(graph[module]):
      if state.get(target) == "open":
        cycle = stack[stack.index(target):] + [target]
        pytest.fail("import cycle: " + " -> ".join(cycle))
      if target not in state:
        visit(target)
    stack.pop()
    state[module] = "done"

  for module in sorted(graph):
    if module not in state:
      visit(module)


def test_every_unit_has_a_layer():
  units = {_unit(m) for m in import_graph()} - {"dsmath_jax", "__main__"}
  assert units <= set(RANKS), f"place these in RANKS (tests/test_architecture.py): {sorted(units - set(RANKS))}"


def test_imports_run_downward():
  upward = []
  for module, targets in import_graph().items():
    source = _unit(module)
    if source not in RANKS:
      continue
    for target in targets:
      unit = _unit(target)
      if unit != source and RANKS[unit] >= RANKS[source]:
        upward.append(f"{module} -> {target} ({source} {RANKS[source]} -> {unit} {RANKS[unit]})")
  assert not upward, "imports that do not run downward:\n" + "\n".join(sorted(upward))


def test_scan_sees_known_edges():
  """The scan must see real imports (or the tests above pass vacuously)."""
  graph = import_graph()
  assert "dsmath_jax.model.llama" in graph["dsmath_jax.sample.sampler"]
  assert "dsmath_jax.grading.grader" in graph["dsmath_jax.rl.rewards"]      # a function-local import
  assert len(graph) > 80
