"""Checks a wheel bundle is closed: every requirement of every wheel in it
(extras and other-platform markers aside) is in the bundle or in the GPU
image's package list, and the bundle stays under its size limit.

  python3 benchmarks/gpu/check_bundle.py DIR benchmarks/gpu/image_packages.txt
"""

import email.parser
import os
import re
import sys
import zipfile

LIMIT_MB = 60


def normalise(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def requirements(wheel: str):
  """(name, its non-extra requirement names) of a wheel, read from METADATA
  for Python 3.12 on Linux."""
  with zipfile.ZipFile(wheel) as z:
    meta = next(n for n in z.namelist()
                if n.endswith('.dist-info/METADATA'))
    message = email.parser.Parser().parsestr(z.read(meta).decode())
  needs = []
  for line in message.get_all('Requires-Dist') or []:
    spec, _, marker = line.partition(';')
    if 'extra' in marker:
      continue
    if re.search(r"python_version\s*<\s*['\"]3\.(\d+)", marker) and int(
        re.search(r"python_version\s*<\s*['\"]3\.(\d+)", marker).group(1)
    ) <= 12:
      continue
    if re.search(r"sys_platform\s*==\s*['\"](darwin|win32)", marker) or (
        re.search(r"platform_system\s*==\s*['\"](Darwin|Windows)", marker)):
      continue
    needs.append(normalise(re.match(r'\s*([\w.\-]+)', spec).group(1)))
  return normalise(message['Name']), needs


def main(directory, image_list):
  with open(image_list) as f:
    image = {normalise(n) for line in f if not line.startswith('#')
             for n in line.split()}
  wheels = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.endswith('.whl'))
  bundled = dict(requirements(w) for w in wheels)
  missing = sorted({f'{need} (for {name})' for name, needs in bundled.items()
                    for need in needs
                    if need not in bundled and need not in image})
  size = sum(os.path.getsize(w) for w in wheels) / 2 ** 20
  print(f'{len(wheels)} wheels, {size:.1f} MB')
  problems = []
  if missing:
    problems.append('missing from the bundle and the image: ' +
                    ', '.join(missing))
  if size > LIMIT_MB:
    problems.append(f'{size:.1f} MB is over the {LIMIT_MB} MB limit')
  if problems:
    sys.exit('\n'.join(problems))


if __name__ == '__main__':
  main(*sys.argv[1:])
