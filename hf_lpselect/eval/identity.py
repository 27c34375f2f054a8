"""Who a model is, for caches and tables: a cache key that changes when its weights do, and a short label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import DEFAULT_MODEL, DEFAULT_MODEL_NAME
from .store import content_key
from .testsets import split_named


def model_key(spec: str, identity: dict[str, Any]) -> str:
    """A model's cache identity: its spec, its Hub revision, and for a local model the SHA-256 of its weights.

    A local folder retrained in place therefore gets a new key, and its answers are generated again.
    """
    return content_key(spec, identity.get("revision"), identity.get("weights_sha256"))


def model_labels(specs: list[str]) -> list[str]:
    """Short names for tables and figures: ``NAME`` of ``NAME=SPEC``, else the last part of the spec,
    made unique with ``-2``, ``-3``.

    Example:
        >>> model_labels(["hard=runs/hard/model", "runs/random/model", "runs/full/model", "default"])
        ['hard', 'model', 'model-2', 'SmolLM2-135M-Instruct']
    """
    labels: list[str] = []
    for spec in specs:
        name, spec = split_named(spec)
        label = name or (
            DEFAULT_MODEL_NAME.split("/")[-1] if spec == DEFAULT_MODEL else Path(spec.rstrip("/")).name or spec
        )
        base, n = label, 1
        while label in labels:
            n += 1
            label = f"{base}-{n}"
        labels.append(label)
    return labels
