"""Heroes: the characters of the stories."""

from pydantic import Field

from app.core.registry import EntitySpec, Filter
from app.core.schemas import Language
from app.heroes.models import Hero
from app.heroes.schemas import HeroCreate, HeroRead

HEROES = EntitySpec(
    name="hero",
    plural="heroes",
    model=Hero,
    create=HeroCreate,
    read=HeroRead,
    filters=(
        Filter("name", str, Field(max_length=100, description="exact match"), scope="name"),
        Filter("language", Language, scope="lang"),
    ),
    ttl=3600,
)
