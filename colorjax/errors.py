"""Failures a person can fix from the message alone.

The command-line tools (`colorjax.cli.run`) print these as one line and exit
with status 2, without a traceback; anything else is a bug and keeps its
traceback. This module imports nothing, so every layer can raise them.
"""


class UserError(Exception):
  """An expected failure: a missing dataset, file or weights, a bad flag or
  config value, a busy port. The message says what to do."""


class ConfigError(UserError, ValueError):
  """A config value or flag that cannot work (names the key and choices)."""


class MissingFileError(UserError, FileNotFoundError):
  """A file or folder the user named (or must prepare) is not there."""
