"""One error for a setting outside its choices, worded the same everywhere."""

from typing import Any, Iterable

from colorjax import errors


def check(name: str, value: Any, choices: Iterable[Any]) -> Any:
  """`value` if it is one of `choices`; else a ConfigError (a ValueError) naming the
  setting, what it may be and what it was."""
  choices = tuple(choices)
  if value not in choices:
    raise errors.ConfigError(f'{name} must be one of '
                     f'{", ".join(repr(c) for c in choices)}; got {value!r}')
  return value
