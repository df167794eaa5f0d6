"""Model-class tools. ``registry()`` finds every Tool subclass in this package's modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from chronoken.errors import ChronokenError
from chronoken.tools.base import Tool

__all__ = ["Tool", "get", "registry", "run_tool"]


@cache
def registry() -> dict[str, Tool]:
    """Every tool by name, in a stable (alphabetical) order."""
    found: dict[str, Tool] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Tool) and cls is not Tool and cls.__module__ == module.__name__:
                found[cls.name] = cls()
    return dict(sorted(found.items()))


def get(name: str) -> Tool:
    """The tool called ``name``; an unknown name is a ChronokenError listing the tools."""
    tools = registry()
    key = name.strip().lower().replace("-", "_")
    if key not in tools:
        raise ChronokenError(
            f"unknown tool '{name}'. Available tools: {', '.join(tools)} (see `chronoken tools`)."
        )
    return tools[key]


def run_tool(name: str, series: object, **args: object) -> object:
    """Run tool ``name`` on ``series`` (anything Series.load accepts, or a bundled example name
    such as "nile") with keyword arguments.

    Returns the tool's Result (a pydantic model). Bad arguments raise ArgsError; a series the
    tool cannot handle raises SeriesError or ToolError.
    """
    from chronoken.agent.examples import resolve

    tool = get(name)
    s = resolve(series)
    return tool.run(s, tool.parse_args(**args))
