"""How many rows a seed run inserts: `Counts`, and the presets of `--size`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counts:
    heroes: int
    children: int
    stories: int

    @property
    def total(self) -> int:
        return self.heroes + self.children + self.stories

    def by_plural(self) -> dict[str, int]:
        """The counts keyed by the entities' plural names (their registry `plural`)."""
        return {"heroes": self.heroes, "children": self.children, "stories": self.stories}


SIZES: dict[str, Counts] = {
    "small": Counts(heroes=20, children=10, stories=50),
    "medium": Counts(heroes=200, children=100, stories=1000),
    "large": Counts(heroes=2000, children=1000, stories=20000),
}
DEFAULT_SIZE = "small"
