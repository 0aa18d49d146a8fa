"""A service process whose writes stop between their COMMIT and their cache invalidation,
forever (the app's test hook `pause_after_commit`): a test kills it there, as a crash right
after COMMIT would. Settings from the environment, as `python -m app serve` reads them.

    python -m tests.support.paused_writer
"""

import asyncio

import uvicorn

from app.main import create_app, load_settings


async def pause_forever() -> None:
    await asyncio.Event().wait()


def main() -> None:
    settings = load_settings()
    app = create_app(settings, pause_after_commit=pause_forever)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
