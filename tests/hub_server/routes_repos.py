"""Routes for whole repos: create, delete, info; plus
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
from .mirror import DEFAULT_REVISION, FAKE_USER, URL_PREFIXES, MirrorRepo, existing

_FRONT_MATTER = re.compile(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", flags=re.DOTALL)


def router(mirrors_path: Path, write_lock: threading.RLock) -> APIRouter:
    """These routes, on the git mirror at ``mirrors_path`` (writes hold ``write_lock``)."""
    routes = APIRouter()

    @routes.get("/api/loopback/health")
    async def health():
        return {"ok": True}

    @routes.get("/api/whoami-v2")
    async def whoami():
        return {
            "type": "user", "id": "0" * 24, "name": FAKE_USER, "fullname": "Loopback Test User",
            "email": f"{FAKE_USER}@loopback.invalid", "emailVerified": True, "canPay": False,
            "isPro": False, "orgs": [],
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
            repo.create(private=bool(private))
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

    @routes.head("/api/{repo_type}/{org}/{name}")
    @routes.get("/api/{repo_type}/{org}/{name}")
    async def repo_info(repo_type: str, org: str, name: str):
        repo = existing(mirrors_path, repo_type, org, name)
        meta = LocalMirrorRepo(str(repo.path), repo.type_dir, org, name).get_meta(DEFAULT_REVISION)
        meta["private"] = bool(repo.settings().get("private", False))
        return meta

    return routes
