"""What the commands of `python -m app` share: loading the settings (an invalid configuration
is printed on stderr, prefixed with the command's name) and a whole-number argument type."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from app.core.settings import Settings, SettingsError, load_settings
from app.entities import ENTITIES


def settings_or_report(command: str, **overrides: Any) -> Settings | None:
    """The settings (`overrides` first), or None once `<command>: <what is invalid>` is on
    stderr: the caller then exits with its code for a refused configuration."""
    try:
        return load_settings(ENTITIES, **overrides)
    except SettingsError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return None


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse `type`: an integer of at least `minimum`, or a message saying what is wrong."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}")
        return number

    return parse
