"""The static check: does an answer call minidl's own implementation of what the part teaches?

A part that teaches ``conv2d`` is passed by ``return F.conv2d(x, w, b, stride, pad)``: the numbers are
right, the lesson is skipped. So each part lists the names it forbids (``forbid`` in the notebook's
metadata), and ``find_forbidden`` walks the syntax tree of the student's answer cell looking for
them: as a name (``conv2d(...)``), an attribute (``F.conv2d``), an import (``from minidl.functional
import conv2d as c``) or a string handed to ``getattr`` / ``__import__`` / ``import_module``
(``getattr(F, "conv2d")``). Names are compared whole, so the student's own ``my_conv2d`` is fine,
and so is a name the answer binds itself (``accuracy = (pred == y).mean()``, a parameter, a
function or method of its own called ``jitter``, ``self.conv_relu`` when its class defines it) or a
string that is only text (``print("accuracy", a)``). ``F.conv2d`` is flagged even in a cell that
defines its own ``conv2d``.

It is a check against taking the shortcut by accident or on purpose, not a sandbox: code that builds
the name from pieces at run time is not caught (and would be visible to a TA reading the answer).
A ``%%writefile`` cell (C++) is checked token by token instead of by syntax tree.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass


@dataclass
class Finding:
    name: str          # the forbidden name found
    line: int          # 1-based line in the cell
    where: str         # the enclosing function ("my_conv2d") or "" at the top level
    text: str          # that line of the cell, stripped


def _python_source(cell_source: str) -> str:
    """IPython lines (``%magic``, ``!shell``) are not Python: blank them, keeping line numbers."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in cell_source.splitlines())


def _enclosing_functions(tree):
    """[(first line, last line, name)] of every function, inner ones after outer ones."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans.append((node.lineno, node.end_lineno, node.name))
    return sorted(spans, key=lambda s: (s[0], -s[1]))


def _bound_names(tree) -> set:
    """Names the cell binds itself — assigned, a parameter, its own def or class — but not by an
    import (an imported name is minidl's, and the import itself is reported)."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            own.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id == "self"):
            own.add(node.attr)                     # self.conv_relu = ... in the student's own class
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
    return own


_LOOKUPS = {"getattr", "__import__", "import_module", "hasattr"}


def _looked_up_strings(tree) -> set:
    """ids of the string constants used as names: arguments of getattr / hasattr / __import__ /
    import_module."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if func in _LOOKUPS:
                found.update(id(a) for a in ast.walk(node) if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return found


def find_forbidden(cell_source: str, forbidden) -> list[Finding]:
    """Every use of a forbidden name in one cell (empty when the cell does not parse: running it
    will report the syntax error)."""
    forbidden = set(forbidden)
    if not forbidden:
        return []
    lines = cell_source.splitlines()
    if cell_source.lstrip().startswith("%%writefile"):
        return _find_in_text(lines, forbidden)
    try:
        tree = ast.parse(_python_source(cell_source))
    except SyntaxError:
        return []
    own = _bound_names(tree)
    looked_up = _looked_up_strings(tree)
    hits = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Name):
            names = [] if node.id in own else [node.id]
        elif isinstance(node, ast.Attribute):
            # self.conv_relu(...) calls the student's own method or layer when the cell defines it
            mine = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls") and node.attr in own
            names = [] if mine else [node.attr]
        elif isinstance(node, ast.alias):
            names = node.name.split(".") + ([node.asname] if node.asname else [])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) in looked_up:
            names = node.value.split(".")          # "conv2d", or a module path "minidl.functional.conv"
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = node.module.split(".")
        for name in names:
            if name in forbidden:
                line = getattr(node, "lineno", None) or _line_of_alias(lines, name)
                hits.append((line, name))
    spans = _enclosing_functions(tree)
    findings = []
    for line, name in sorted(set(hits)):
        where = ""
        for first, last, fname in spans:       # the innermost function wins (sorted outer first)
            if first <= line <= last:
                where = fname
        findings.append(Finding(name, line, where, lines[line - 1].strip() if 0 < line <= len(lines) else ""))
    return findings


def _line_of_alias(lines, name):
    for i, line in enumerate(lines, 1):
        if re.search(rf"\b{re.escape(name)}\b", line):
            return i
    return 1


def _find_in_text(lines, forbidden):
    """C++ (or any text): a forbidden entry is a token or a path fragment such as
    ``minidl::roi_pool_cell`` or ``roi_pool/roi_pool.h``; comments are skipped."""
    findings = []
    for i, line in enumerate(lines, 1):
        code = line.split("//", 1)[0]
        for name in sorted(forbidden):
            if re.search(rf"(?<![\w:/]){re.escape(name)}(?![\w])", code):
                findings.append(Finding(name, i, "", line.strip()))
    return findings


def describe(findings, part_title: str) -> str:
    """The message a student reads when the static check fails."""
    first = findings[0]
    where = f" in {first.where}" if first.where else ""
    names = ", ".join(sorted({f.name for f in findings}))
    return (f"your answer calls minidl's own {names}{where} (line {first.line}: `{first.text}`): "
            f"part '{part_title}' teaches how that is computed, so an answer that calls the library's "
            f"version scores 0 for this part — write it yourself from the pieces the instructions name")
