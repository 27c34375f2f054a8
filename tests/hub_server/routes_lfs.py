"""The git-LFS batch API with a basic single-PUT transfer and ``verify``: what huggingface_hub
uploads an LFS file through before the commit that points to it (Xet is not spoken here)."""

import hashlib
import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .answers import base_url
from .mirror import HubError, MirrorRepo, existing


def router(mirrors_path: Path) -> APIRouter:
    """These routes, on the git mirror at ``mirrors_path``."""
    routes = APIRouter()

    def lfs_repo(prefix: str, org: str, name_git: str) -> MirrorRepo:
        return existing(mirrors_path, prefix, org, name_git[: -len(".git")])

    async def lfs_batch(repo: MirrorRepo, request: Request):
        payload = await request.json()
        if payload.get("operation") != "upload":
            raise HubError(400, "only the upload operation is supported")
        base = f"{base_url(request)}/api/loopback/lfs/{repo.type_dir}/{repo.repo_id}"
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if not repo.has_lfs(oid, size):
                entry["actions"] = {
                    "upload": {"href": f"{base}/{oid}", "header": {}},
                    "verify": {"href": f"{base}/{oid}/verify", "header": {}},
                }
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    @routes.post("/{prefix}/{org}/{name_git}/info/lfs/objects/batch")
    async def lfs_batch_prefixed(prefix: str, org: str, name_git: str, request: Request):
        if prefix not in ("datasets", "spaces") or not name_git.endswith(".git"):
            raise HubError(404, "not found")
        return await lfs_batch(lfs_repo(prefix, org, name_git), request)

    @routes.post("/{org}/{name_git}/info/lfs/objects/batch")
    async def lfs_batch_model(org: str, name_git: str, request: Request):
        if not name_git.endswith(".git"):
            raise HubError(404, "not found")
        return await lfs_batch(lfs_repo("models", org, name_git), request)

    @routes.put("/api/loopback/lfs/{repo_type}/{org}/{name}/{oid}")
    async def lfs_upload(repo_type: str, org: str, name: str, oid: str, request: Request):
        repo = existing(mirrors_path, repo_type, org, name)
        target = repo.lfs_path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in request.stream():
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != oid:
                raise HubError(400, f"content sha256 {digest.hexdigest()} does not match oid {oid}")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return Response(status_code=200)

    @routes.post("/api/loopback/lfs/{repo_type}/{org}/{name}/{oid}/verify")
    async def lfs_verify(repo_type: str, org: str, name: str, oid: str, request: Request):
        payload = await request.json()
        if not existing(mirrors_path, repo_type, org, name).has_lfs(oid, int(payload.get("size", -1))):
            raise HubError(404, f"LFS object {oid} not found")
        return {"ok": True}

    return routes
