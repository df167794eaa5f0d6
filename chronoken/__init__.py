"""chronoken: ask a time series a question in plain English.

>>> import chronoken
>>> answer = chronoken.ask("nile", "find change points")   # doctest: +SKIP
>>> print(answer.report)                                   # doctest: +SKIP

Heavy parts (torch, statsmodels, the backbone) load on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chronoken.errors import ChronokenError
from chronoken.series import Series
from chronoken.tools import run_tool

if TYPE_CHECKING:
    from chronoken.agent.ask import Answer, ask

__all__ = ["Answer", "ChronokenError", "Series", "ask", "run_tool"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("ask", "Answer"):
        from chronoken.agent import ask as _ask_module

        return getattr(_ask_module, name)
    raise AttributeError(f"module 'chronoken' has no attribute {name!r}")
