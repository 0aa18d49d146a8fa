"""Imports every ORM model so that `Base.metadata` knows all tables (Alembic, tests)."""


def load_all_models() -> None:
    import app.children.models
    import app.heroes.models
    import app.stories.models  # noqa: F401
