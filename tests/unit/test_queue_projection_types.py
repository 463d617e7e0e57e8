"""The queue projection skips events it does not handle without parsing them: the list it
checks must name every event model its match handles, or those events would be lost."""

from __future__ import annotations

import ast
import inspect

from projections import queue
from schemas import events as ev


def test_every_event_model_the_projection_matches_is_let_through():
    tree = ast.parse(inspect.getsource(queue.apply))
    matched = {
        node.cls.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.MatchClass) and isinstance(node.cls, ast.Attribute)
    }
    assert matched, "found the match cases"
    assert matched == {model.__name__ for model in queue._APPLIED}
    assert all(getattr(ev, name) in queue._APPLIED for name in matched)
