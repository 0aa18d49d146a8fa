"""The generators: pure functions building the seed's row dicts from seeded random streams.
The same seed and reference day give the same rows, ids included."""

from app.seed.generators.children import child_rows
from app.seed.generators.heroes import hero_rows
from app.seed.generators.population import age_category, language_of_name
from app.seed.generators.stories import CHILD_FIELDS, HERO_FIELDS, story_rows
from app.seed.generators.streams import entity_ids

__all__ = [
    "CHILD_FIELDS",
    "HERO_FIELDS",
    "age_category",
    "child_rows",
    "entity_ids",
    "hero_rows",
    "language_of_name",
    "story_rows",
]
