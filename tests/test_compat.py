"""Canaries of hf_lpselect.compat: each private name of another library that we patch or read still is what the
patch expects. A failure names the upstream version that changed it and the compat module to update."""

import inspect
from importlib.metadata import version
from types import SimpleNamespace

import datasets
import torch
import transformers
import trl
import trl.trainer.utils as trl_utils
from transformers import Trainer
from trl import SFTTrainer

from hf_lpselect.compat.datasets import fingerprint
from hf_lpselect.compat.tqdm import open_bars
from hf_lpselect.compat.transformers import CheckpointSaveHook, SignatureColumns
from hf_lpselect.compat.trl import compact_fused_head_on_cpu, max_length_hidden, trainer_card_info


def _names_used(function) -> set[str]:
    """The global names ``function``'s code (and the code nested in it) reads."""
    names, stack = set(), [function.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack += [const for const in code.co_consts if inspect.iscode(const)]
    return names


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


# ----------------------------------------------------------------------------- trl


def test_trl_fused_head_reads_use_triton_on_each_call():
    where = f"trl {trl.__version__}: update hf_lpselect/compat/trl.py (compact_fused_head_on_cpu)"
    assert callable(getattr(trl_utils, "_use_triton", None)), f"{where}: trl.trainer.utils._use_triton is gone"
    assert _parameters(trl_utils._use_triton) == ["device"], f"{where}: _use_triton no longer takes (device)"
    readers = [f for _, f in inspect.getmembers(trl_utils, inspect.isfunction) if "_use_triton" in _names_used(f)]
    readers = [f for f in readers if f.__module__ == trl_utils.__name__]
    assert readers, f"{where}: nothing in trl.trainer.utils calls _use_triton any more, so widening it does nothing"


def test_compact_fused_head_on_cpu_widens_and_restores():
    original = trl_utils._use_triton
    assert not original(torch.device("cpu")), f"trl {trl.__version__} takes the compact path on a CPU itself"
    with compact_fused_head_on_cpu():
        assert trl_utils._use_triton(torch.device("cpu"))
    assert trl_utils._use_triton is original


def test_trl_still_refuses_padding_free_with_max_length():
    """max_length_hidden hides max_length from this check; if TRL dropped it, the patch is dead code."""
    source = inspect.getsource(SFTTrainer.__init__)
    assert "padding_free" in source and "args.max_length" in source, (
        f"trl {trl.__version__}: SFTTrainer.__init__ no longer checks max_length with padding_free; "
        "update hf_lpselect/compat/trl.py (max_length_hidden) and its callers"
    )


def test_max_length_hidden_sets_it_back():
    config = SimpleNamespace(max_length=64)  # an SFTConfig, as far as the patch reads it
    with max_length_hidden(config):
        assert config.max_length is None
    assert config.max_length == 64


def test_trl_trainer_card_attributes():
    info = trainer_card_info(SFTTrainer)  # class attributes: no trainer needs building
    assert info["tags"] == ["trl", "sft"] and info["trainer_name"] == "SFT" and isinstance(info["paper"], dict), (
        f"trl {trl.__version__}: SFTTrainer._tag_names / _name / _paper changed ({info}); "
        "update hf_lpselect/compat/trl.py (trainer_card_info)"
    )


# ----------------------------------------------------------------------------- transformers


def test_transformers_checkpoint_save_is_still_private_save_checkpoint():
    where = f"transformers {transformers.__version__}: update hf_lpselect/compat/transformers.py (CheckpointSaveHook)"
    assert _parameters(Trainer._save_checkpoint) == ["self", "model", "trial"], f"{where}: _save_checkpoint changed"
    assert _parameters(Trainer._get_output_dir) == ["self", "trial"], f"{where}: _get_output_dir changed"
    assert "_save_checkpoint" in _names_used(Trainer._maybe_log_save_evaluate), f"{where}: saves go another way"
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    assert PREFIX_CHECKPOINT_DIR == "checkpoint", f"{where}: checkpoints are named {PREFIX_CHECKPOINT_DIR}-N"
    assert issubclass(CheckpointSaveHook, object) and "_save_checkpoint" in vars(CheckpointSaveHook)


def test_transformers_signature_columns_hook():
    where = f"transformers {transformers.__version__}: update hf_lpselect/compat/transformers.py (SignatureColumns)"
    assert _parameters(Trainer._set_signature_columns_if_needed) == ["self"], f"{where}: the hook changed"
    assert "self._signature_columns = None" in inspect.getsource(Trainer.__init__), f"{where}: no _signature_columns"
    assert "_set_signature_columns_if_needed" in _names_used(Trainer._remove_unused_columns), (
        f"{where}: unused columns are no longer removed through _set_signature_columns_if_needed"
    )

    class Fake(SignatureColumns):
        signature_columns = ("input_ids", "row")
        _signature_columns = None

    fake = Fake()
    fake._set_signature_columns_if_needed()
    assert fake._signature_columns == ["input_ids", "row"]


# ----------------------------------------------------------------------------- datasets, tqdm


def test_datasets_fingerprint_follows_the_content():
    rows = datasets.Dataset.from_dict({"x": [1, 2]})
    assert isinstance(fingerprint(rows), str) and fingerprint(rows) == rows._fingerprint, (
        f"datasets {datasets.__version__}: Dataset._fingerprint changed; update hf_lpselect/compat/datasets.py"
    )
    assert fingerprint(rows.map(lambda r: {"x": r["x"] + 1})) != fingerprint(rows)


def test_tqdm_lists_its_open_bars():
    from tqdm.std import tqdm

    assert hasattr(tqdm, "_instances"), f"tqdm {version('tqdm')}: tqdm._instances is gone; update compat/tqdm.py"
    bar = tqdm(total=1, disable=False)
    try:
        assert bar in open_bars()
    finally:
        bar.close()
    assert bar not in open_bars()
