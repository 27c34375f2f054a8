"""How a failure reaches the terminal: one sentence, no traceback, on a line of its own,
also when a progress bar was drawing when it happened."""

import errno
import gc
import re

import pytest

from hf_lpselect.cli import user_errors
from hf_lpselect.core.io import is_disk_full
from hf_lpselect.errors import RunError


NO_SPACE = "Error: No space left on the device; free some space and re-run the same command to resume."


def _fail_mid_bar(error: BaseException) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=12, desc="Scoring pass 1")
    bar.update(6)
    raise error


def test_an_error_starts_its_own_line_after_an_interrupted_progress_bar(capsys):
    with pytest.raises(SystemExit) as exit_info:
        with user_errors():
            _fail_mid_bar(RunError("The run cannot go on."))
    gc.collect()  # a bar left open would redraw itself here, after the sentence
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert re.search(r"(?m)^Error: The run cannot go on\.$", err), (
        err
    )  # before the fix: "… 6/12 [00:00<?, ?it/s]Error: …"
    assert err.rstrip("\n").endswith("Error: The run cannot go on."), err
    assert "6/12" in err  # the bar's last state stays readable above the sentence


def test_a_full_disk_mid_bar_is_the_one_sentence_on_its_own_line(capsys):
    with pytest.raises(SystemExit):
        with user_errors():
            _fail_mid_bar(OSError(errno.ENOSPC, "No space left on device"))
    err = capsys.readouterr().err
    assert re.search(rf"(?m)^{re.escape(NO_SPACE)}$", err), err
    assert "Traceback" not in err


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        with user_errors():
            _ = 1 / 0


@pytest.mark.parametrize(
    "error, full",
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (
            RuntimeError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
            ),
            True,
        ),
        (OSError(errno.EACCES, "Permission denied"), False),
        (
            RuntimeError("unexpected pos 165824 vs 165712"),
            False,
        ),  # only the save site, which can ask the filesystem, may say "full"
    ],
)
def test_what_counts_as_a_full_disk(error, full):
    assert is_disk_full(error) is full


@pytest.mark.parametrize(
    "error, sentence",
    [
        (
            OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"),
            "Error: Cannot write into /mnt/ro: it is on a read-only file system; "
            "choose an output folder you can write to.",
        ),
        (
            OSError(errno.EACCES, "Permission denied", "/srv/shared/report.md"),
            "Error: Permission denied for /srv/shared/report.md; check its permissions, or choose an output folder "
            "you can write to.",
        ),
    ],
)
def test_a_refused_write_is_one_sentence_naming_where(capsys, error, sentence):
    with pytest.raises(SystemExit) as exit_info:
        with user_errors():
            _fail_mid_bar(error)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert re.search(rf"(?m)^{re.escape(sentence)}$", err), err
