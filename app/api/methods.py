"""405 Method Not Allowed with the full `Allow` of the path, for every route.

Routing tries the routes in order and, when only the method differs, lets the first route of
the path answer 405 with its own methods: `OPTIONS /heroes` said `Allow: POST`, though GET is
served too. And a literal path can be shadowed by a parametrized one: `DELETE /cache/stats`
matched `DELETE /cache/{entity}` and got a 422.

`install_method_not_allowed` reads the app's routes once, after they are all added, and adds
two routes computed from them:

- in front, for the literal paths (`/api/v1/heroes`, `/cache/stats`): a dict lookup of the
  path; a method that path does not serve is a 405 (so no other route can shadow it);
- last, for the paths with parameters: reached only when no route matched fully (a 404 or a
  405), it finds the path among them and answers 405 with that path's methods.

A request that a route serves pays one dict lookup; no route is scanned per request.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound, compile_path
from starlette.types import Receive, Scope, Send

#: The order methods are listed in `Allow`.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ALLOW_SCOPE_KEY = "tales.allow"


def allow_header(methods: Iterable[str]) -> str:
    rank = {method: index for index, method in enumerate(METHOD_ORDER)}
    return ", ".join(sorted(set(methods), key=lambda m: (rank.get(m, len(rank)), m)))


@dataclass(frozen=True, slots=True)
class PathMethods:
    path: str
    regex: re.Pattern[str]
    methods: frozenset[str]
    allow: str


def served_paths(app: FastAPI) -> list[PathMethods]:
    """Each path the app's routes serve (in route order) with all the methods it serves."""
    methods: dict[str, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        path, route_methods = route.path, route.methods
        if path is None or not route_methods:
            continue  # mounts (their app answers every method itself)
        methods.setdefault(path, set()).update(route_methods)
    return [
        PathMethods(path, compile_path(path)[0], frozenset(served), allow_header(served))
        for path, served in methods.items()
    ]


def _route_path(scope: Scope) -> str:
    """The path as routes match it (below the app's root path, as Starlette does)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class MethodNotAllowed(BaseRoute):
    """Matches (fully) a request whose path is served, but not with its method."""

    def __init__(self, paths: list[PathMethods], *, literal: bool) -> None:
        self.literal = literal
        self.by_path = {p.path: p for p in paths}
        self.paths = paths

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = _route_path(scope)
        if self.literal:
            served = self.by_path.get(path)
        else:
            served = next((p for p in self.paths if p.regex.match(path)), None)
        if served is None or scope["method"] in served.methods:
            return Match.NONE, {}
        return Match.FULL, {ALLOW_SCOPE_KEY: served.allow}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # names no route: url_for looks further

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(405, headers={"Allow": scope[ALLOW_SCOPE_KEY]})


def install_method_not_allowed(app: FastAPI) -> None:
    """Call once every route is added."""
    paths = served_paths(app)
    literal = [p for p in paths if not compile_path(p.path)[2]]
    templated = [p for p in paths if compile_path(p.path)[2]]
    app.router.routes.insert(0, MethodNotAllowed(literal, literal=True))
    app.router.routes.append(MethodNotAllowed(templated, literal=False))
