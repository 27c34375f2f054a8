"""The loopback Hub (tests/hub_server/) works with the real clients: huggingface_hub uploads
(create_repo, upload_folder in one commit, create_pr, delete_patterns), datasets.load_dataset by
repo id, and list_datasets' search by tag. The clients run in a subprocess because huggingface_hub reads HF_ENDPOINT at import time."""

import json
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


REPO = "loopback-org/toy"

README = """---
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
- config_name: small
  data_files:
  - split: train
    path: small/train-*.parquet
---
# toy
"""


def _png() -> bytes:
    """A valid 1x1 RGB PNG (binary content, must travel as LFS)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _write_folder(path, readme=README, extra=None):
    (path / "data").mkdir(parents=True)
    (path / "small").mkdir()
    (path / "images").mkdir()
    (path / "README.md").write_text(readme)
    pq.write_table(
        pa.table({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}), path / "data/train-00000-of-00001.parquet"
    )
    pq.write_table(pa.table({"text": ["x", "y"], "label": [1, 0]}), path / "small/train-00000-of-00001.parquet")
    (path / "images/sample.png").write_bytes(_png())
    for rel, text in (extra or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    return path


CLIENT = textwrap.dedent(
    """
    import json, sys
    from huggingface_hub import HfApi, hf_hub_download
    import datasets

    repo, first, pr_folder, third = sys.argv[1:5]
    api = HfApi()
    out = {}
    api.create_repo(repo, repo_type="dataset", private=False, exist_ok=True)
    api.create_repo(repo, repo_type="dataset", private=False, exist_ok=True)  # 409 -> exist_ok
    out["exists"] = api.repo_exists(repo, repo_type="dataset")
    c1 = api.upload_folder(folder_path=first, repo_id=repo, repo_type="dataset", commit_message="Add toy data")
    out["c1"] = c1.oid
    small = datasets.load_dataset(repo, "small", split="train")
    out["small"] = small.to_dict()
    out["default_rows"] = datasets.load_dataset(repo, split="train").num_rows
    out["readme"] = open(hf_hub_download(repo, "README.md", repo_type="dataset")).read()

    pr = api.upload_folder(folder_path=pr_folder, repo_id=repo, repo_type="dataset",
                           commit_message="Propose a change", create_pr=True)
    out["pr_num"], out["pr_revision"] = pr.pr_num, pr.pr_revision
    out["main_after_pr"] = api.dataset_info(repo).sha
    out["pr_readme"] = open(hf_hub_download(repo, "README.md", repo_type="dataset", revision=pr.pr_revision)).read()
    out["pr_refs"] = [r.ref for r in api.list_repo_refs(repo, repo_type="dataset", include_pull_requests=True).pull_requests]

    c3 = api.upload_folder(folder_path=third, repo_id=repo, repo_type="dataset",
                           commit_message="Refresh", delete_patterns=["notes/*"])
    out["c3"] = c3.oid
    out["files"] = api.list_repo_files(repo, repo_type="dataset")
    out["commits"] = [c.title for c in api.list_repo_commits(repo, repo_type="dataset")]
    print("RESULT" + json.dumps(out))
    """
)


def test_real_clients_round_trip(loopback_hub, tmp_path):
    hub = loopback_hub
    first = _write_folder(tmp_path / "first", extra={"notes/stale.txt": "old notes\n"})
    pr_folder = _write_folder(tmp_path / "pr", readme=README + "\nProposed change.\n")
    third = _write_folder(tmp_path / "third", readme=README + "\nRefreshed.\n")

    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, REPO, str(first), str(pr_folder), str(third)],
        env=hub.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:] + "\n--- server log ---\n" + hub.log_path.read_text()[-2000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])

    assert out["exists"]
    # upload_folder: one commit with the message, binary files stored as LFS, content served back
    assert out["small"] == {"text": ["x", "y"], "label": [1, 0]}
    assert out["default_rows"] == 4
    assert out["readme"] == README
    assert hub.is_lfs(REPO, "data/train-00000-of-00001.parquet") and hub.is_lfs(REPO, "images/sample.png")
    assert not hub.is_lfs(REPO, "README.md")
    assert hub.read(REPO, "images/sample.png", revision=out["c1"]) == _png()

    # create_pr: a new refs/pr/1 with the change, main untouched
    assert out["pr_num"] == 1 and out["pr_revision"] == "refs/pr/1"
    assert out["main_after_pr"] == out["c1"]
    assert out["pr_readme"].endswith("Proposed change.\n")
    assert out["pr_refs"] == ["refs/pr/1"]
    assert hub.commit_messages(REPO, "refs/pr/1")[:2] == ["Propose a change", "Add toy data"]

    # delete_patterns: the stale file goes, in the same single commit as the refresh
    assert "notes/stale.txt" not in out["files"]
    assert "notes/stale.txt" in hub.files(REPO, out["c1"])
    assert out["commits"] == ["Refresh", "Add toy data", "initial commit"]
    assert hub.read(REPO, "README.md").decode().endswith("Refreshed.\n")


def test_seed_and_errors(loopback_hub, tmp_path):
    """A seeded repo reads like an existing Hub dataset; missing repos/files give the Hub's errors."""
    hub = loopback_hub
    sha = hub.seed("someone/existing", _write_folder(tmp_path / "seed"), message="Existing dataset")
    code = textwrap.dedent(
        """
        import sys
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
        api = HfApi()
        assert api.dataset_info("someone/existing").sha == sys.argv[1]
        assert not api.repo_exists("someone/missing", repo_type="dataset")
        assert api.file_exists("someone/existing", "README.md", repo_type="dataset")
        assert not api.file_exists("someone/existing", "nope.md", repo_type="dataset")
        try:
            hf_hub_download("someone/existing", "nope.md", repo_type="dataset")
        except EntryNotFoundError:
            pass
        else:
            raise AssertionError("expected EntryNotFoundError")
        try:
            hf_hub_download("someone/missing", "README.md", repo_type="dataset")
        except RepositoryNotFoundError:
            pass
        else:
            raise AssertionError("expected RepositoryNotFoundError")
        print("OK")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, sha], env=hub.env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-4000:]


def test_client_environments_never_use_the_users_lpselect_cache(loopback_hub, monkeypatch, tmp_path):
    # before the fix env() dropped HF_LPSELECT_CACHE with the other HF_* variables: clients wrote ~/.cache/hf_lpselect
    monkeypatch.setenv("HF_LPSELECT_CACHE", str(tmp_path / "isolated"))
    assert loopback_hub.env()["HF_LPSELECT_CACHE"] == str(tmp_path / "isolated")
    monkeypatch.delenv("HF_LPSELECT_CACHE")  # a module-scoped fixture may build its env before the autouse one runs
    assert Path(loopback_hub.env()["HF_LPSELECT_CACHE"]).parent == Path(loopback_hub.env()["HF_HOME"])


SEARCH = textwrap.dedent(
    """
    import json
    from huggingface_hub import HfApi
    api = HfApi()
    ids = lambda found: [d.id for d in found]
    print("RESULT" + json.dumps({
        "tagged": ids(api.list_datasets(filter="lpselect", sort="last_modified")),
        "first": ids(api.list_datasets(filter="lpselect", sort="last_modified", limit=1)),
        "anonymous": ids(api.list_datasets(filter="lpselect", sort="last_modified", token=False)),
        "both_tags": ids(api.list_datasets(filter=["lpselect", "data-selection"])),
        "by_name": ids(api.list_datasets(search="PLAIN")),
        "by_author": ids(api.list_datasets(author="other")),
        "tags": [d.tags for d in api.list_datasets(search="newer")],
    }))
    """
)


def test_the_dataset_search_answers_list_datasets_by_card_tag_newest_first(loopback_hub, tmp_path):
    """GET /api/datasets as huggingface_hub's list_datasets sends it: tags from the card, newest first."""
    hub = loopback_hub
    tagged = README.replace("license: mit\n", "license: mit\ntags:\n- lpselect\n- data-selection\n")
    hub.seed("org/older", _write_folder(tmp_path / "older", readme=tagged))
    time.sleep(1.1)  # commit times have whole seconds
    hub.seed("org/newer", _write_folder(tmp_path / "newer", readme=tagged))
    hub.seed("other/plain", _write_folder(tmp_path / "plain"))  # no tags
    hub.seed("org/secret", _write_folder(tmp_path / "secret", readme=tagged), private=True)
    proc = subprocess.run([sys.executable, "-c", SEARCH], env=hub.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["tagged"][:2] in (["org/secret", "org/newer"], ["org/newer", "org/secret"])  # seeded in one second
    assert out["tagged"][2:] == ["org/older"]
    assert len(out["first"]) == 1
    assert out["anonymous"] == ["org/newer", "org/older"]  # a private repo is listed to its owner's token only
    assert sorted(out["both_tags"]) == ["org/newer", "org/older", "org/secret"]
    assert out["by_name"] == out["by_author"] == ["other/plain"]
    assert out["tags"] == [["lpselect", "data-selection"]]


def test_a_private_repo_is_hidden_from_a_request_without_a_token(loopback_hub, tmp_path):
    hub = loopback_hub
    hub.seed("someone/private", _write_folder(tmp_path / "private"), private=True)
    code = textwrap.dedent(
        """
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RepositoryNotFoundError
        assert HfApi().dataset_info("someone/private").private  # with the token of hub.env()
        for read in (lambda: HfApi().dataset_info("someone/private", token=False),
                     lambda: hf_hub_download("someone/private", "README.md", repo_type="dataset", token=False)):
            try:
                read()
            except RepositoryNotFoundError:
                pass
            else:
                raise AssertionError("an anonymous request read a private repo")
        print("OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=hub.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-4000:]
