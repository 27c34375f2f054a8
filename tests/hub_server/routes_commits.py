"""Write routes for commits: ``preupload`` (which files go as LFS, and the remote oids) and
``commit`` (the ndjson payload: header, file, lfsFile, deletedFile, deletedFolder; ``create_pr=1``
makes ``refs/pr/N`` and answers ``pullRequestUrl``), one git commit each."""

import base64
import json
import threading
from pathlib import Path

from fastapi import APIRouter, Request

from .answers import base_url
from .mirror import URL_PREFIXES, HubError, existing


def router(mirrors_path: Path, write_lock: threading.RLock) -> APIRouter:
    """These routes, on the git mirror at ``mirrors_path`` (commits hold ``write_lock``)."""
    routes = APIRouter()

    @routes.post("/api/{repo_type}/{org}/{name}/preupload/{revision:path}")
    async def preupload(repo_type: str, org: str, name: str, revision: str, request: Request):
        payload = await request.json()
        repo = existing(mirrors_path, repo_type, org, name)
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        entries = repo.tree_entries(commit)
        patterns = repo.lfs_patterns(commit)
        files = []
        for item in payload.get("files", []):
            path = item["path"]
            sample = base64.b64decode(item.get("sample", ""))
            lfs = repo.wants_lfs(path, int(item.get("size", 0)), sample, patterns)
            files.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": repo.remote_oid(entries, path),
                }
            )
        return {"files": files, "commitOid": commit}

    @routes.post("/api/{repo_type}/{org}/{name}/commit/{revision:path}")
    async def commit(repo_type: str, org: str, name: str, revision: str, request: Request):
        body = await request.body()
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        create_pr = request.query_params.get("create_pr") in ("1", "true", "True")
        repo = existing(mirrors_path, repo_type, org, name)
        with write_lock, repo.locked():
            sha, pr_num = repo.apply_commit(
                revision,
                [(line["key"], line["value"]) for line in lines[1:]],
                summary=header.get("summary", ""),
                description=header.get("description", ""),
                parent_commit=header.get("parentCommit"),
                create_pr=create_pr,
            )
        repo_url = f"{base_url(request)}/{URL_PREFIXES[repo.type_dir]}{repo.repo_id}"
        answer = {"success": True, "commitOid": sha, "commitUrl": f"{repo_url}/commit/{sha}", "hookOutput": ""}
        if pr_num is not None:
            answer["pullRequestUrl"] = f"{repo_url}/discussions/{pr_num}"
        return answer

    return routes
