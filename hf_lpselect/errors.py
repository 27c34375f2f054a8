"""The errors a user can cause: each message is one sentence saying what was wrong and what to do.

Every one is an :class:`LpselectError`, raised where the problem is found; the command line prints it as
one line, without a traceback. Each is also the error type of the libraries we extend that fits it, so
code written against them catches ours too:

- a bad value (data, a template, an argument, a run directory, a selection …) is also a ``ValueError``,
  as ``datasets``, ``transformers`` and TRL raise for bad values;
- :class:`HubError` is also huggingface_hub's ``HfHubHTTPError`` (an ``OSError``), as huggingface_hub raises
  when the Hub cannot be reached or refuses a request.

They live here, free of heavy imports (huggingface_hub's error module alone), so the command line can
catch them without loading torch.

Example:

```python
>>> from hf_lpselect.errors import DataError, LpselectError
>>> try:
...     raise DataError("data.jsonl line 3 is not JSON; fix that line.")
... except LpselectError as err:
...     print(err)
data.jsonl line 3 is not JSON; fix that line.
```
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.errors import HfHubHTTPError


class LpselectError(Exception):
    """Base class: bad input or a request that cannot be carried out as asked; its message is one sentence."""


LPSelectError = LpselectError  # the name before it was spelled like the package


class DataError(LpselectError, ValueError):
    """Bad input data: the message names the file (and line) and what to do."""


class TemplateError(LpselectError, ValueError):
    """A template that cannot be applied to this tokenizer or data."""


class ModelError(LpselectError, ValueError):
    """A model spec that cannot be resolved."""


class RunError(LpselectError, ValueError):
    """A run directory that cannot be (re)used as asked."""


class ClusterError(LpselectError, ValueError):
    """Clusters cannot be made or read as asked."""


class SelectionError(LpselectError, ValueError):
    """A selection that cannot be made as asked: an unknown strategy, a size outside its range, options that do
    not go together, or a scores table without the columns the strategy needs."""


class TrainError(LpselectError, ValueError):
    """``lpselect train`` arguments that cannot be combined, or a training run that cannot go on as asked."""


class ConfigError(LpselectError, ValueError):
    """An argument value that cannot work (a zero batch size, a fractional epoch count …)."""


class EvalError(LpselectError, ValueError):
    """An evaluation (lpselect eval) that cannot be run as asked: bad test set, judge or arguments."""


class HubError(LpselectError, HfHubHTTPError):
    """The Hub cannot be reached or refused a request (never carries the token).

    Also a ``huggingface_hub.errors.HfHubHTTPError`` (and so an ``OSError``). ``response`` is the Hub's answer
    when there was one (then ``request_id`` and ``server_message`` are huggingface_hub's); None when the
    problem was found before asking (no token, a card that cannot be parsed).
    """

    def __init__(self, message: str, *, response: Any = None, server_message: str | None = None):
        if response is not None:
            super().__init__(message, response=response, server_message=server_message)
            return
        super(HfHubHTTPError, self).__init__(message)  # httpx's HTTPError and OSError, without a response
        self.request_id, self.server_message, self.response = None, server_message, None

    def __reduce_ex__(self, protocol):  # huggingface_hub's pickles the response, which may be None here
        return (HubError, (str(self),), {"response": self.response, "server_message": self.server_message})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
