"""Private repos: hidden from a request without a token, as the Hub hides them (``RepoNotFound``, the
answer for a repo that does not exist). Any token reads them: there are no accounts here."""

import json
import re
from pathlib import Path

from .mirror import MirrorRepo


# /api/<models|datasets|spaces>/<org>/<name>[/...] and /[datasets/|spaces/]<org>/<name>/resolve/...
_REPO_IN_PATH = re.compile(
    r"^/api/(?P<t1>models|datasets|spaces)/(?P<o1>[^/]+)/(?P<n1>[^/]+)(?:/|$)"
    r"|^/(?:(?P<t2>datasets|spaces)/)?(?P<o2>[^/]+)/(?P<n2>[^/]+)/resolve/"
)


class PrivateRepos:
    """ASGI middleware: a request naming a private repo and carrying no ``Authorization`` header is
    answered 404 ``RepoNotFound`` before any route (ours or olah's) sees it."""

    def __init__(self, app, mirrors_path: Path):
        self.app, self.mirrors_path = app, mirrors_path

    def _hidden(self, scope) -> str | None:
        """The private repo this anonymous request names, or None."""
        if any(name == b"authorization" for name, _ in scope["headers"]):
            return None
        match = _REPO_IN_PATH.match(scope["path"])
        if match is None:
            return None
        repo_type = match["t1"] or match["t2"] or "models"
        repo_id = f"{match['o1'] or match['o2']}/{match['n1'] or match['n2']}"
        repo = MirrorRepo(self.mirrors_path, repo_type, repo_id)
        return repo_id if repo.exists and repo.settings().get("private") else None

    async def __call__(self, scope, receive, send):
        hidden = self._hidden(scope) if scope["type"] == "http" else None
        if hidden is None:
            return await self.app(scope, receive, send)
        message = f"Repository {hidden} not found"
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"x-error-code", b"RepoNotFound"),
                    (b"x-error-message", message.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps({"error": message}).encode()})
