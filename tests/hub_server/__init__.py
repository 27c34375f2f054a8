"""A loopback Hugging Face Hub for tests: olah (read side) plus test-owned write routes, one server.

What it is
----------
:class:`LoopbackHub` starts, in a child process, ONE uvicorn server on ``127.0.0.1:<free port>`` that
speaks enough of the Hub HTTP protocol for the real client libraries (``huggingface_hub``,
``datasets``) to be pointed at it with ``HF_ENDPOINT``:

* Read side: `olah <https://pypi.org/project/olah/>`_'s FastAPI routes in offline mode, serving
  plain git repositories found under ``mirrors_path/<datasets|models|spaces>/<org>/<name>``
  (non-bare repos, branch ``main``; LFS files are git-lfs pointers whose content lives in
  ``<repo>/.git/lfs/objects/<oid[:2]>/<oid[2:4]>/<oid>``, which is where olah reads it from).
  olah serves repo info at a revision, ``tree`` (recursive), ``paths-info``, ``commits``, ``refs``
  and ``resolve`` (file download, including LFS content).
* Write side (``routes_repos``, ``routes_commits``, ``routes_lfs``): ``/api/repos/create``,
  ``/api/repos/delete``, ``preupload``, ``commit`` (the ndjson payload: header, file, lfsFile,
  deletedFile, deletedFolder; ``create_pr=1`` makes ``refs/pr/N`` and answers ``pullRequestUrl``),
  the git-LFS batch API with a basic single-PUT transfer and ``verify``, ``/api/validate-yaml``
  (only checks that the README front matter is a YAML mapping), ``/api/whoami-v2`` (a fixed fake
  user), a Space's ``hardware`` request and its ``runtime`` (the hardware asked for).
* Search (``routes_repos``): ``GET /api/datasets`` as ``HfApi.list_datasets`` sends it (``filter`` by
  the card's tags, ``author``, ``search``, ``sort`` by ``lastModified``/``createdAt``, ``limit``;
  private repos only for a request with a token).
* Fault injection (``faults``, :meth:`LoopbackHub.fail`): chosen requests answer 429 / 5xx, lose the
  connection mid-answer, happen but answer an error, or meet someone else's commit first.
* A few read routes are answered here before olah, because olah's offline mode gets them wrong for
  local mirrors: repo info without a revision (olah only looks in its proxy cache; ``routes_repos``),
  ``resolve`` of a missing file or revision (olah answers 401/500 instead of ``EntryNotFound`` /
  ``RevisionNotFound``), ``commits`` (olah puts the whole message in ``title``; both ``routes_files``),
  and revisions such as ``refs%2Fpr%2F1`` (rewritten by ``app`` to the commit sha they point at).

Clients must run in a subprocess started with :meth:`LoopbackHub.env` (``huggingface_hub`` reads
``HF_ENDPOINT`` at import time), with ``HF_HUB_DISABLE_XET=1`` so uploads take the LFS path.
Needs ``olah`` (which brings fastapi and uvicorn) and the ``git`` executable on PATH.

What it can NOT prove
---------------------
* Xet storage: uploads and downloads go through classic git-LFS (basic transfer) only; nothing about
  the Xet protocol, chunking or dedup is exercised.
* Auth and permissions: any token (or none) is accepted for everything, except that a private repo
  is hidden (``RepoNotFound``) from a request without a token (``access``); any token reads it. Gated
  repos, orgs, write scopes, resource groups do not exist.
* The real Hub's server-side checks: README/dataset-card YAML validation against the Hub's metadata
  schema, the dataset viewer / parquet conversion (``refs/convert/parquet``), file size and count
  limits, binary-file rejection in regular commits, gitattributes edits, rate limits, hooks,
  discussions (a PR is just a ``refs/pr/N`` ref: no discussion object, no merge), Spaces (a Space is
  a repo; its hardware is recorded, nothing is built or run).
* The search's own tags (``region:``, ``format:``, ``size_categories:`` …), its other sorts, and its
  pages: only the card's ``tags`` are matched, and every match comes in one answer.
* Which files are LFS is decided here with a simple rule (an LFS pattern in the repo's
  ``.gitattributes``, non-UTF-8 content, or >= 10 MB); the real Hub's rule may differ.


The modules, one job each
-------------------------
``mirror``          the git repository behind each Hub repo (commits, LFS objects, seeding)
``routes_repos``    create / delete / info / search of repos, a Space's hardware, whoami, validate-yaml
``routes_commits``  preupload and commit
``routes_lfs``      the git-LFS batch API, upload and verify
``routes_files``    commits, tree and resolve, answered before olah gets them wrong
``app``             the FastAPI app: our routes, then olah's; the quoted-ref rewriting
``access``          private repos hidden from requests without a token
``faults``          fault injection
``server``          the child process (``python -m hub_server.server``)
``client``          :class:`LoopbackHub`, the test process's side
"""

from .client import LoopbackHub
from .faults import FAULTS_FILE
from .mirror import (
    DEFAULT_GITATTRIBUTES,
    DEFAULT_REVISION,
    FAKE_TOKEN,
    FAKE_USER,
    LFS_THRESHOLD,
    REPO_TYPE_DIRS,
    URL_PREFIXES,
    ZERO_SHA,
    HubError,
    MirrorRepo,
)


__all__ = [
    "DEFAULT_GITATTRIBUTES",
    "DEFAULT_REVISION",
    "FAKE_TOKEN",
    "FAKE_USER",
    "FAULTS_FILE",
    "LFS_THRESHOLD",
    "REPO_TYPE_DIRS",
    "URL_PREFIXES",
    "ZERO_SHA",
    "HubError",
    "LoopbackHub",
    "MirrorRepo",
]
