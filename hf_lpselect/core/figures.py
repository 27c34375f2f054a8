"""Figures every stage draws the same way: a matplotlib ``Figure`` on the Agg canvas, no global pyplot state.

Light until used: matplotlib is imported when the first figure is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A figure of ``width`` x ``height`` inches at :data:`DPI`, with a constrained layout; ``fig.savefig(path)`` writes it.

    Example:

    ```python
    >>> fig = new_figure(6.0, 4.0)
    >>> ax = fig.subplots()
    ```
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("Figures need matplotlib: pip install matplotlib.") from e
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig
