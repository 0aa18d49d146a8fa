"""The entities this service serves. To add one: a package with its model, schemas and an
`EntitySpec` (see `app/core/registry.py`), listed here, and a migration for its table."""

from app.children.entity import CHILDREN
from app.core.registry import Registry
from app.heroes.entity import HEROES
from app.stories.entity import STORIES

ENTITIES = Registry((HEROES, CHILDREN, STORIES))
