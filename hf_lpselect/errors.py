"""The errors a user can cause: each message is one sentence saying what was wrong and what to do.

They live here, free of heavy imports, so the command line can catch them without loading torch.
"""


class LPSelectError(ValueError):
    """Base class: bad input or a request that cannot be carried out as asked."""


class DataError(LPSelectError):
    """Bad input data: the message names the file (and line) and what to do."""


class TemplateError(LPSelectError):
    """A template that cannot be applied to this tokenizer or data."""


class ModelError(LPSelectError):
    """A model spec that cannot be resolved."""


class RunError(LPSelectError):
    """A run directory that cannot be (re)used as asked."""


class ClusterError(LPSelectError):
    """Clusters cannot be made or read as asked."""


class HubError(LPSelectError):
    """The Hub cannot be reached or refused a request (never carries the token)."""


class TrainError(LPSelectError):
    """``lpselect train`` arguments that cannot be combined, or a training run that cannot go on as asked."""


class ConfigError(LPSelectError):
    """An argument value that cannot work (a zero batch size, a fractional epoch count …)."""


class EvalError(LPSelectError):
    """An evaluation (lpselect eval) that cannot be run as asked: bad test set, judge or arguments."""
