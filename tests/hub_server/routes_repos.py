"""Routes for whole repos: create, delete, info, the dataset search, and a Space's hardware; plus
``whoami-v2`` (a fixed fake user), ``validate-yaml`` and the health check the test process polls."""

import re
import shutil
import threading
from pathlib import Path

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from olah.mirror.repos import LocalMirrorRepo

from .answers import base_url, error
from .mirror import DEFAULT_REVISION, FAKE_USER, URL_PREFIXES, HubError, MirrorRepo, existing


_FRONT_MATTER = re.compile(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", flags=re.DOTALL)
LIST_SORTS = ("lastModified", "createdAt")  # what the search sorts by here (newest first), as HfApi spells them


def card_tags(repo: MirrorRepo) -> list[str]:
    """The ``tags`` of the README's YAML front matter on ``main`` (the real Hub adds tags of its own)."""
    entry = repo.tree_entries(repo.resolve(DEFAULT_REVISION)).get("README.md")
    match = _FRONT_MATTER.match(repo.file_bytes(entry[1]).decode(errors="replace")) if entry else None
    try:
        meta = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return []
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return [str(t) for t in tags] if isinstance(tags, list) else []


def listed(repo: MirrorRepo) -> dict:
    """One repo as the Hub's search lists it (``DatasetInfo`` reads these keys)."""
    commits = repo.commits(DEFAULT_REVISION)
    return {
        "id": repo.repo_id,
        "author": repo.repo_id.split("/")[0],
        "sha": commits[0]["id"],
        "lastModified": commits[0]["date"],
        "createdAt": commits[-1]["date"],
        "private": bool(repo.settings().get("private", False)),
        "tags": card_tags(repo),
        "downloads": 0,
        "likes": 0,
    }


def runtime(repo: MirrorRepo) -> dict:
    """A Space's runtime as the Hub answers it (``SpaceRuntime``): nothing runs here, the hardware is only requested."""
    return {"stage": "NO_APP_FILE", "hardware": {"current": None, "requested": repo.settings().get("hardware")}}


def router(mirrors_path: Path, write_lock: threading.RLock) -> APIRouter:
    """These routes, on the git mirror at ``mirrors_path`` (writes hold ``write_lock``)."""
    routes = APIRouter()

    @routes.get("/api/loopback/health")
    async def health():
        return {"ok": True}

    @routes.get("/api/whoami-v2")
    async def whoami():
        return {
            "type": "user",
            "id": "0" * 24,
            "name": FAKE_USER,
            "fullname": "Loopback Test User",
            "email": f"{FAKE_USER}@loopback.invalid",
            "emailVerified": True,
            "canPay": False,
            "isPro": False,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "write"}},
        }

    @routes.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        payload = await request.json()
        match = _FRONT_MATTER.match(payload.get("content", ""))
        if not match:
            return {"errors": [], "warnings": [{"message": "empty or missing yaml metadata in repo card"}]}
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            return JSONResponse({"errors": [{"message": f"Invalid YAML: {exc}"}]}, status_code=400)
        if data is not None and not isinstance(data, dict):
            return JSONResponse({"errors": [{"message": "YAML metadata must be a mapping"}]}, status_code=400)
        return {"errors": [], "warnings": []}

    @routes.post("/api/repos/create")
    async def create_repo(request: Request):
        payload = await request.json()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or FAKE_USER}/{payload['name']}"
        repo = MirrorRepo(mirrors_path, repo_type, repo_id)
        url = f"{base_url(request)}/{URL_PREFIXES[repo.type_dir]}{repo_id}"
        with write_lock, repo.locked():
            if repo.exists:
                return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
            private = payload.get("private", payload.get("visibility") == "private")
            hardware = {"hardware": payload["hardware"]} if payload.get("hardware") else {}  # a Space's, if asked for
            repo.create(private=bool(private), **hardware)
        return {"url": url, "name": repo_id, "id": repo_id}

    @routes.delete("/api/repos/delete")
    async def delete_repo(request: Request):
        payload = await request.json()
        repo_id = f"{payload.get('organization') or FAKE_USER}/{payload['name']}"
        repo = MirrorRepo(mirrors_path, payload.get("type") or "model", repo_id)
        with write_lock, repo.locked():
            if not repo.exists:
                return error(404, f"Repository {repo_id} not found", "RepoNotFound")
            shutil.rmtree(repo.path)
        return Response(status_code=200)

    @routes.get("/api/datasets")
    async def list_datasets(request: Request):
        """The search ``HfApi.list_datasets`` sends: ``filter`` (tags; a repo needs every one), ``author``,
        ``search`` (a part of the id), ``sort`` (newest first) and ``limit``; one page, no ``Link`` header.
        Private repos are listed to a request with a token only (any token: there are no accounts here)."""
        query = request.query_params
        wanted, searched, author = set(query.getlist("filter")), query.getlist("search"), query.get("author")
        sort = query.get("sort")
        if sort is not None and sort not in LIST_SORTS:
            raise HubError(400, f"the loopback Hub sorts by {' or '.join(LIST_SORTS)} only, not {sort!r}")
        found = []
        for git_dir in sorted((mirrors_path / "datasets").glob("*/*/.git")):
            repo = MirrorRepo(mirrors_path, "dataset", f"{git_dir.parent.parent.name}/{git_dir.parent.name}")
            if author not in (None, repo.repo_id.split("/")[0]):
                continue
            if not all(s.lower() in repo.repo_id.lower() for s in searched):
                continue
            item = listed(repo)
            if item["private"] and not request.headers.get("authorization"):
                continue
            if wanted <= set(item["tags"]):
                found.append(item)
        if sort is not None:
            found.sort(key=lambda item: item[sort], reverse=True)
        limit = query.get("limit")
        return found[: int(limit)] if limit else found

    @routes.head("/api/{repo_type}/{org}/{name}")
    @routes.get("/api/{repo_type}/{org}/{name}")
    async def repo_info(repo_type: str, org: str, name: str):
        repo = existing(mirrors_path, repo_type, org, name)
        meta = LocalMirrorRepo(str(repo.path), repo.type_dir, org, name).get_meta(DEFAULT_REVISION)
        meta["private"] = bool(repo.settings().get("private", False))
        return meta

    @routes.post("/api/spaces/{org}/{name}/hardware")
    async def request_space_hardware(org: str, name: str, request: Request):
        payload = await request.json()
        repo = existing(mirrors_path, "space", org, name)
        if not payload.get("flavor"):
            raise HubError(400, "flavor is required")
        with write_lock, repo.locked():
            repo.update_settings(hardware=payload["flavor"])
        return runtime(repo)

    @routes.get("/api/spaces/{org}/{name}/runtime")
    async def space_runtime(org: str, name: str):
        return runtime(existing(mirrors_path, "space", org, name))

    return routes
