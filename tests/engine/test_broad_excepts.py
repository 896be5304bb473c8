"""Errors are logged, never swallowed: every broad ``except`` in gradsim/ and ui/
re-raises, logs (with the traceback), or hands the exception on to whoever reports it."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
BROAD = {"Exception", "BaseException"}
#: Calls that hand an exception on instead of dropping it (a future, a pool's result).
HANDS_ON = ("set_exception",)


def _broad(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    names = [t] if not isinstance(t, ast.Tuple) else list(t.elts)
    return t is None or any(isinstance(n, ast.Name) and n.id in BROAD for n in names)


def _accounted_for(handler: ast.ExceptHandler) -> bool:
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            owner = ast.unparse(fn.value) if isinstance(fn, ast.Attribute) else ""
            if name in HANDS_ON or name in ("exception", "error", "warning", "info", "debug") and "log" in owner.lower():
                return True
    return False


def test_every_broad_except_logs_or_reraises():
    silent = []
    for pkg in ("gradsim", "ui"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ExceptHandler) and _broad(node) and not _accounted_for(node):
                    silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert silent == [], "broad excepts that neither log nor re-raise: " + ", ".join(silent)


def test_the_rule_sees_a_silent_handler():
    code = "try:\n    f()\nexcept Exception:\n    pass\n"
    (handler,) = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ExceptHandler)]
    assert _broad(handler) and not _accounted_for(handler)
    code = "try:\n    f()\nexcept Exception:\n    log.exception('x')\n"
    (handler,) = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ExceptHandler)]
    assert _accounted_for(handler)
