"""The columns every generated row starts with, as a row the API just created has them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

#: The version counter of a row that was never updated.
FIRST_VERSION = 1


def new_row(row_id: uuid.UUID, created: datetime) -> dict[str, Any]:
    """id, version and timestamps: never updated, so `updated_at` is `created_at`."""
    return {"id": row_id, "version": FIRST_VERSION, "created_at": created, "updated_at": created}
