"""Children: the listeners. Their names are personal data: hashed in every cache key."""

from pydantic import Field

from app.children.models import Child
from app.children.schemas import ChildCreate, ChildRead
from app.core.registry import EntitySpec, Filter
from app.core.schemas import Gender

CHILDREN = EntitySpec(
    name="child",
    plural="children",
    model=Child,
    create=ChildCreate,
    read=ChildRead,
    filters=(
        Filter(
            "name",
            str,
            Field(max_length=100, description="exact match"),
            scope="name",
            personal=True,
        ),
        Filter("age", int, Field(ge=1, le=17)),
        Filter("gender", Gender),
    ),
    exact_match=("name", "age", "gender"),
    ttl=1800,
)
