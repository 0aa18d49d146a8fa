"""`python -m app seed`: fill the configured database with plausible sample data.

Heroes, children and bedtime stories in English and Russian, generated from a seeded random
generator: the same `--seed` (and the same reference day) gives the same rows, ids included.
A story that references a child carries the child's snapshot exactly as the API copies it
(`app.stories.rules.child_snapshot`). Children's names are personal data: nothing here logs
or prints them, only counts and ids.

The package, one job a module:

- `vocabulary.json` / `vocabulary.py`: the words, as data, validated on first use;
- `generators/`: pure functions building the row dicts from seeded random streams;
- `loader.py`: schema check, refusal of a seed already loaded, batched inserts;
- `sizes.py`: the counts and the `--size` presets;
- `cli.py`: the command line (`add_arguments`, `run`), registered in `app/__main__.py`.
"""

from app.seed.loader import SchemaMissing, SeedRefused, SeedReport, seed_database
from app.seed.sizes import SIZES, Counts

__all__ = ["SIZES", "Counts", "SchemaMissing", "SeedRefused", "SeedReport", "seed_database"]
