"""Import stub for torchvision, so that timm imports on a CPU-only machine.

PyPI's torchvision wheels are CUDA builds that fail to load next to the CPU
torch wheel here, and timm imports torchvision at module level for data
transforms it never uses when building a model. Any use raises.
"""
import importlib.abc, importlib.machinery, sys, types

class _Anything(type):
  def __getattr__(cls, name):
    return _Anything(name, (), {})
  def __call__(cls, *a, **k):
    raise RuntimeError('torchvision stub called')

class _StubModule(types.ModuleType):
  def __getattr__(self, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return _Anything(name, (), {})

class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  def find_spec(self, fullname, path, target=None):
    if fullname == 'torchvision' or fullname.startswith('torchvision.'):
      return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
    return None
  def create_module(self, spec):
    module = _StubModule(spec.name)
    module.__path__ = []
    return module
  def exec_module(self, module):
    pass

sys.meta_path.insert(0, _Finder())
