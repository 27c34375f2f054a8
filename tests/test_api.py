"""The public API is discoverable and stable: `help(hf_lpselect)` and `dir()` list it, and a name
stays what it is after its module is imported."""

import importlib
import inspect
import pkgutil

import hf_lpselect


def test_every_public_name_is_listed_and_loads():
    listed = dir(hf_lpselect)
    for name in hf_lpselect.__all__:
        assert name in listed
        assert getattr(hf_lpselect, name) is not None
    assert "score" in hf_lpselect.__doc__ and "hf_lpselect.selection" in hf_lpselect.__doc__
    assert not {"Any", "annotations", "importlib"} & set(listed)  # before: the module's own imports were listed
    assert hf_lpselect.scoring.passes.score_pass is hf_lpselect.score_pass  # the stage packages are reachable by name


def test_functions_stay_functions_after_every_module_is_imported():
    for module in pkgutil.walk_packages(hf_lpselect.__path__, "hf_lpselect."):
        importlib.import_module(module.name)
    for name in ("score", "select", "train", "evaluate", "agreement", "push_scores", "load_scored"):
        assert inspect.isfunction(getattr(hf_lpselect, name)), name


def test_every_public_function_and_class_has_a_docstring():
    for name in hf_lpselect.__all__:
        obj = getattr(hf_lpselect, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__ and len(obj.__doc__.strip()) > 40, name


def test_every_package_of_the_source_is_installed_by_pyproject():
    """The package list is explicit (cards/ installs as hf_lpselect.cards): a new subpackage must be named there, or a
    plain `pip install .` lacks it while the editable install used by the tests still finds it (it once lacked core)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "hf_lpselect").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    assert "hf_lpselect.cards" in listed and (root / "cards" / "report.md").is_file()
