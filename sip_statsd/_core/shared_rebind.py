"""Shared delivery's rebind: put the shared cells where helpers made before the mapping hold the old ones."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


def rebind(roots: Iterable[object], replaced: dict[int, tuple[object, object]]) -> None:
    """Put the shared cells where the helpers of `roots` (made before the mapping) hold the old ones.

    The SIP helpers keep each series' cell in tables their closures hold (dicts, lists,
    tuples, a dict's bound `get`): those are walked once, at configure(), and every old
    cell replaced in place (a tuple is made again and put where it was).
    """
    walk = _Rebind(replaced)
    for root in roots:
        for function in vars(root).values():
            walk.sub(function)


class _Rebind:
    def __init__(self, replaced: dict[int, tuple[object, object]]) -> None:
        self.replaced = replaced
        self.done: dict[int, object] = {}
        self.keep: list[object] = []  # what `done` names stays alive during the walk

    def sub(self, obj: object) -> object | None:
        """`obj`'s replacement (an old cell's shared one, a tuple made again), else None; containers in place."""
        hit = self.replaced.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        key = id(obj)
        if key in self.done:
            return self.done[key]
        self.done[key] = None
        self.keep.append(obj)
        if type(obj) is dict:
            self._items(obj, list(obj.items()))
        elif type(obj) is list:
            self._items(obj, list(enumerate(obj)))
        elif type(obj) is tuple:
            items = [self.sub(v) for v in obj]
            if any(v is not None for v in items):
                made = tuple(v if n is None else n for v, n in zip(obj, items, strict=True))
                self.done[key] = made
                return made
        elif isinstance(obj, types.BuiltinMethodType):
            self.sub(obj.__self__)
        elif isinstance(obj, types.FunctionType):
            self._closure(obj)
        return None

    def _items(self, container: Any, items: list[tuple[Any, object]]) -> None:
        for k, v in items:
            new = self.sub(v)
            if new is not None:
                container[k] = new

    def _closure(self, function: types.FunctionType) -> None:
        for cell in function.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # empty
                continue
            new = self.sub(contents)
            if new is not None:
                cell.cell_contents = new
