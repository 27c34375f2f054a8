"""How the loopback Hub answers: the Hub's error headers, and the address clients reached it at."""

from fastapi import Request
from fastapi.responses import JSONResponse, Response


def error(status: int, message: str, code: str | None = None) -> Response:
    """An error as the Hub sends it: ``X-Error-Message`` (and ``X-Error-Code``) headers, which
    huggingface_hub turns into ``RepositoryNotFoundError``, ``EntryNotFoundError`` …"""
    headers = {"x-error-message": message}
    if code:
        headers["x-error-code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")
