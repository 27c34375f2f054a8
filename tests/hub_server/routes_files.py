"""Read routes answered here before olah, because olah's offline mode gets them wrong for local
mirrors: ``commits`` (olah puts the whole message in ``title``), ``tree`` of a missing folder or
revision, and ``resolve`` of a missing file or revision (olah answers 401/500 instead of
``EntryNotFound``/``RevisionNotFound``) or with a ``Range`` header (olah ignores it). What exists is
then served by olah's own code."""

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from olah.server_routes import file_get_common, file_head_common, tree_proxy_common

from .mirror import HubError, existing


def router(mirrors_path: Path) -> APIRouter:
    """These routes, on the git mirror at ``mirrors_path``."""
    routes = APIRouter()

    @routes.head("/api/{repo_type}/{org}/{name}/commits/{revision:path}")
    @routes.get("/api/{repo_type}/{org}/{name}/commits/{revision:path}")
    async def list_commits(repo_type: str, org: str, name: str, revision: str):
        return existing(mirrors_path, repo_type, org, name).commits(revision)

    async def tree(repo_type: str, org: str, name: str, revision: str, path: str, request: Request):
        # olah answers 401 RepoNotFound for a missing folder or revision; the Hub says which is missing
        repo = existing(mirrors_path, repo_type, org, name)
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        path = path.strip("/")
        if path and not any(p.startswith(path + "/") for p in repo.tree_entries(sha)):
            raise HubError(404, f"{path} does not exist on {revision!r}", "EntryNotFound")

        def flag(key: str) -> bool:
            return request.query_params.get(key, "false").lower() in ("1", "true")

        return await tree_proxy_common(
            request.app,
            repo.type_dir,
            org,
            name,
            sha,
            path,
            recursive=flag("recursive"),
            expand=flag("expand"),
            method=request.method.lower(),
            authorization=request.headers.get("authorization"),
        )

    @routes.head("/api/{repo_type}/{org}/{name}/tree/{revision}")
    @routes.get("/api/{repo_type}/{org}/{name}/tree/{revision}")
    async def tree_root(repo_type: str, org: str, name: str, revision: str, request: Request):
        return await tree(repo_type, org, name, revision, "", request)

    @routes.head("/api/{repo_type}/{org}/{name}/tree/{revision}/{path:path}")
    @routes.get("/api/{repo_type}/{org}/{name}/tree/{revision}/{path:path}")
    async def tree_path(repo_type: str, org: str, name: str, revision: str, path: str, request: Request):
        return await tree(repo_type, org, name, revision, path, request)

    async def resolve_file(repo_type: str, org: str, name: str, revision: str, path: str, request: Request):
        repo = existing(mirrors_path, repo_type, org, name)
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        entries = repo.tree_entries(sha)
        if path.strip("/") not in entries:
            raise HubError(404, f"{path} does not exist on {revision!r}", "EntryNotFound")
        range_header = request.headers.get("range")
        if request.method == "GET" and range_header:  # olah's local-mirror route ignores Range
            data = repo.file_bytes(entries[path.strip("/")][1])
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if not match or match.groups() == ("", ""):
                raise HubError(416, f"unsupported range {range_header!r}")
            if match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
            else:
                start, end = max(len(data) - int(match[2]), 0), len(data) - 1
            if start >= len(data) or start > end:
                return Response(status_code=416, headers={"content-range": f"bytes */{len(data)}"})
            return Response(
                data[start : end + 1],
                status_code=206,
                headers={
                    "content-range": f"bytes {start}-{end}/{len(data)}",
                    "accept-ranges": "bytes",
                    "x-repo-commit": sha,
                },
            )
        common = file_head_common if request.method == "HEAD" else file_get_common
        response = await common(request.app, repo.type_dir, org, name, sha, path, request)
        response.headers["accept-ranges"] = "bytes"
        return response

    @routes.head("/{prefix}/{org}/{name}/resolve/{revision}/{path:path}")
    @routes.get("/{prefix}/{org}/{name}/resolve/{revision}/{path:path}")
    async def resolve_prefixed(prefix: str, org: str, name: str, revision: str, path: str, request: Request):
        if prefix not in ("datasets", "spaces"):
            raise HubError(404, "not found")
        return await resolve_file(prefix, org, name, revision, path, request)

    @routes.head("/{org}/{name}/resolve/{revision}/{path:path}")
    @routes.get("/{org}/{name}/resolve/{revision}/{path:path}")
    async def resolve_model(org: str, name: str, revision: str, path: str, request: Request):
        return await resolve_file("models", org, name, revision, path, request)

    return routes
