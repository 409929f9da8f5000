"""The package's import graph against README's layer list: no import from
a lower layer to a higher one, no cycle, every module in a layer.

Imports are read with `ast` (nothing is imported), inside functions too:
an import placed in a function to dodge a cycle is still an edge.
"""

import ast
import os
import re

import pytest

from conftest import REPO

PACKAGE = 'colorjax'


def layers_from_readme(text):
  """README's numbered layer list -> [(layer number, [dotted names])]."""
  block = re.search(r'<!-- layers: begin -->(.*?)<!-- layers: end -->',
                    text, re.S)
  assert block, 'README.md has no <!-- layers: begin/end --> block'
  layers = []
  for line in block.group(1).strip().splitlines():
    number, names = re.match(r'(\d+)\.\s.*?:\s*(.*)$', line).groups()
    layers.append((int(number), re.findall(r'`([\w.]+)`', names)))
  return layers


def package_modules(root):
  """Dotted module name -> file, for every .py file under root/PACKAGE."""
  modules = {}
  for directory, _, files in os.walk(os.path.join(root, PACKAGE)):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(directory, name)
        dotted = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
        modules[dotted.removesuffix('.__init__')] = path
  return modules


def imports_of(module, path, modules):
  """The package modules `module` imports (`from a import b` counts as a.b
  where a.b is a module, else as a; parents' __init__ are not counted)."""
  package = module if path.endswith('__init__.py') else module.rpartition(
      '.')[0]
  found = set()
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(parts + ([base] if base else []))
      names = [f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base
               for a in node.names]
    else:
      continue
    for name in names:
      while name and name not in modules:
        name = name.rpartition('.')[0]
      if name and name != module:
        found.add(name)
  return found


def layer_of(module, layers):
  """The layer of the longest listed name that is module or a parent."""
  relative = module.removeprefix(PACKAGE).lstrip('.') or PACKAGE
  best = None
  for number, names in layers:
    for name in names:
      if (relative == name or relative.startswith(name + '.')) and (
          best is None or len(name) > len(best[1])):
        best = (number, name)
  return best[0] if best else None


def cycles(graph):
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []
  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        found.append(sorted(component))
  for v in sorted(graph):
    if v not in index:
      visit(v)
  return found


def violations(root, layers):
  """(modules in no layer, upward imports, cycles) of the package at root."""
  modules = package_modules(root)
  graph = {m: imports_of(m, p, modules) for m, p in modules.items()}
  level = {m: layer_of(m, layers) for m in modules}
  unplaced = sorted(m for m, n in level.items() if n is None)
  upward = sorted(f'{m} (layer {level[m]}) imports {t} (layer {level[t]})'
                  for m, targets in graph.items() for t in targets
                  if None not in (level[m], level[t]) and level[t] > level[m])
  return unplaced, upward, cycles(graph)


@pytest.fixture(scope='module')
def layers():
  with open(os.path.join(REPO, 'README.md')) as f:
    return layers_from_readme(f.read())


def test_every_import_points_down_and_none_loops(layers):
  unplaced, upward, loops = violations(REPO, layers)
  assert not unplaced, f'modules in no README layer: {unplaced}'
  assert not upward, 'upward imports:\n' + '\n'.join(upward)
  assert not loops, f'import cycles: {loops}'


def _write_package(root, files):
  for name, text in files.items():
    path = os.path.join(root, PACKAGE, *name.split('/'))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write(text)


def test_the_checker_finds_cycles_upward_imports_and_strays(tmp_path):
  """A made-up package: a hidden in-function cycle, an upward import, and a
  module no layer names are each reported."""
  layers = [(1, ['errors', 'data']), (2, ['methods']),
            (3, ['main', 'data.jobs'])]
  _write_package(tmp_path, {
      '__init__.py': '',
      'errors.py': '',
      'data/__init__.py': '',
      'data/pipeline.py': 'from colorjax import errors\n'
                          'def f():\n  from colorjax.data import prior\n',
      'data/prior.py': 'from colorjax.data import pipeline\n',
      'data/jobs.py': 'from colorjax import methods\n',
      'methods/__init__.py': 'from . import base\n',
      'methods/base.py': 'import colorjax.main\n',
      'main.py': 'from colorjax.methods import base\n',
      'stray.py': '',
  })
  unplaced, upward, loops = violations(str(tmp_path), layers + [
      (1, [PACKAGE])])
  assert unplaced == ['colorjax.stray']
  assert upward == ['colorjax.methods.base (layer 2) imports colorjax.main '
                    '(layer 3)']
  assert sorted(loops) == [['colorjax.data.pipeline', 'colorjax.data.prior'],
                           ['colorjax.main', 'colorjax.methods.base']]
