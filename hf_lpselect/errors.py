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
