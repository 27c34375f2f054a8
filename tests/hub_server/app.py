"""The server's app: our routes in front of olah's (offline, serving the git mirror), on one FastAPI
app, behind a middleware that rewrites quoted refs (``refs%2Fpr%2F1``) to the commit they point at
and one that hides private repos from requests without a token (:mod:`.access`)."""

import contextlib
import re
import threading
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

from fastapi import FastAPI
from olah.configs import OlahConfig
from olah.server_routes import router as olah_router

from . import routes_commits, routes_files, routes_lfs, routes_repos
from .access import PrivateRepos
from .answers import error
from .mirror import HubError, MirrorRepo


def create_app(mirrors_path: Path, repos_path: Path):
    """olah's routes behind ours, on one FastAPI app, reading/writing the git mirror."""
    config = OlahConfig()
    config.offline = True
    config.mirrors_path = [str(mirrors_path)]
    config.repos_path = str(repos_path)
    config.hf_scheme, config.hf_netloc, config.hf_lfs_netloc = "http", "127.0.0.1:9", "127.0.0.1:9"  # discard port
    config.metadata_cache_ttl = 0
    write_lock = threading.RLock()

    app = FastAPI(debug=False)
    app.state.app_settings = SimpleNamespace(config=config)
    app.state.logger = None
    app.state.templates = None

    @app.exception_handler(HubError)
    async def hub_error_handler(_request, exc: HubError):
        return error(exc.status, exc.message, exc.code)

    app.include_router(routes_repos.router(mirrors_path, write_lock))
    app.include_router(routes_files.router(mirrors_path))
    app.include_router(routes_commits.router(mirrors_path, write_lock))
    app.include_router(routes_lfs.router(mirrors_path))
    app.include_router(olah_router)
    return PrivateRepos(_RefRewrite(app, mirrors_path), mirrors_path)


# /api/<type>/<org>/<name>/(revision|tree|paths-info)/<rev>... and /[datasets|spaces/]<org>/<name>/resolve/<rev>/...
_REV_IN_PATH = re.compile(
    r"^(?:(?P<api>/api/(?P<t1>models|datasets|spaces)/(?P<o1>[^/]+)/(?P<n1>[^/]+)/(?:revision|tree|paths-info)/)"
    r"|(?P<res>/(?:(?P<t2>datasets|spaces)/)?(?P<o2>[^/]+)/(?P<n2>[^/]+)/resolve/))"
    r"(?P<rev>[^/]+)(?P<rest>.*)$"
)


class _RefRewrite:
    """ASGI middleware: olah routes take the revision as one path segment, so a quoted ref such as
    ``refs%2Fpr%2F1`` (decoded to several segments) is replaced by the commit sha it points at."""

    def __init__(self, app, mirrors_path: Path):
        self.app, self.mirrors_path = app, mirrors_path

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            match = _REV_IN_PATH.match(raw.decode("latin-1"))
            if match and "%" in match["rev"]:
                repo_type = match["t1"] or match["t2"] or "models"
                repo_id = f"{match['o1'] or match['o2']}/{match['n1'] or match['n2']}"
                with contextlib.suppress(HubError, RuntimeError):
                    sha = MirrorRepo(self.mirrors_path, repo_type, repo_id).resolve(unquote(match["rev"]))
                    if sha:
                        new_raw = (match["api"] or match["res"]) + sha + match["rest"]
                        scope = {**scope, "raw_path": new_raw.encode("latin-1"), "path": unquote(new_raw)}
        await self.app(scope, receive, send)
