"""`Started`: the context-manager shape every throwaway server of the harness shares.

Entering starts it; a start that fails half-way closes what it did start (no process is left
behind); leaving closes it.
"""

from __future__ import annotations

from typing import Self


class Started:
    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
