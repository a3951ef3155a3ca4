"""Code and conf hashing, in one place: what a model, a feature table and a run record.

- `declaration_digest`: a declaration (as JSON) plus the source code of the functions it
  names, e.g. a feature set and its transforms. A feature table's build state records one over
  what decides its rows (and models trained before `closure_digest` existed, per set).
- `closure_digest`: the same over the whole `closure` of those functions: every function and
  class of the project they reach through their globals (helpers, helpers' helpers, a module's
  functions called as `module.fn`), and the module-level constants they read. A model's feature
  spec records it per set, so that editing a helper a transform calls is a code change, and
  editing code it never reaches is not.
- `module_digest`, `package_digest`: the source code of whole modules, or of every module of a
  package (the library code behind every feature, recorded with every run in `audit.runs`).
- `json_digest`: a stable digest of plain data (the effective conf).
- `bytes_digest`: a digest of bytes (a serialized model, which names it in a worker's cache; the
  library wheel a model carries).
- `record_hash`: a file's hash as a wheel's RECORD lists it.

Every digest is the first 16 hex digits of a SHA-256.

Code digests have a scheme, recorded beside each digest (`HASH_SCHEME_KEY`), and a checker
recomputes a recorded digest with the scheme it was recorded with (`recorded_scheme`):
- `ast1` (`AST_SCHEME`, what new records use): the code's syntax tree (`ast.parse` of the
  dedented source), node types and fields only: no positions, no comments, no docstrings, and
  no layout, so a formatter's run or a reworded docstring changes no digest, while any edit
  that can change what the code computes does. Docstrings are left out because they cannot
  change a result and a formatter rewrites their indentation; empty fields are left out so
  that a Python release adding one to a node does not move every digest.
- `text` (`TEXT_SCHEME`; records made before schemes were recorded hold none): the source text as
  `inspect.getsource` gives it, byte for byte as those records were made. Where a formatter
  rewrote parity's code since, the text from before it (`KEPT_TEXTS`, kept by
  `scripts/keep_texts.py` when the formatter ran) stands in for the new text with the same
  syntax tree, so those records still match until the code really changes. It names each
  function it reaches by its module: code moved out of a module since keeps the old module's
  name there, where its new module names that in `RECORDED_IN`.
"""

from __future__ import annotations

import ast
import base64
import functools
import gzip
import hashlib
import importlib
import importlib.resources
import inspect
import json
import pkgutil
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any

DIGITS = 16
TEXT_SCHEME, AST_SCHEME = "text", "ast1"
SCHEME = AST_SCHEME  # what new records use
HASH_SCHEME_KEY = "hash_scheme"  # the key that records a digest's scheme beside it (absent: TEXT_SCHEME)


class UnknownHashSchemeError(ValueError):
    """A digest was recorded with a scheme this version of parity does not know (a newer one)."""


def recorded_scheme(record: Mapping[str, Any]) -> str:
    """The scheme of the digests in `record`: the one it names, or `TEXT_SCHEME` (a record made
    before schemes were recorded)."""
    return str(record.get(HASH_SCHEME_KEY) or TEXT_SCHEME)


def json_digest(data: Any) -> str:
    """A digest of plain data, independent of key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:DIGITS]


def bytes_digest(data: bytes) -> str:
    """A digest of raw bytes."""
    return hashlib.sha256(data).hexdigest()[:DIGITS]


def declaration_digest(
    data: dict[str, Any], functions: Iterable[Callable[..., Any]], scheme: str = SCHEME
) -> str:
    """A digest of a declaration and the source code of every function it names, in order."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    for function in functions:
        digest.update(code_form(function, scheme))
    return digest.hexdigest()[:DIGITS]


def module_digest(modules: Iterable[ModuleType], scheme: str = SCHEME) -> str:
    """A digest of the source code of `modules`, in order."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(code_form(module, scheme))
    return digest.hexdigest()[:DIGITS]


def package_digest(package: str, scheme: str = SCHEME) -> str:
    """A digest of the source code of a package and every module in it, in name order."""
    root = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.walk_packages(root.__path__, f"{package}."))
    return module_digest([root, *(importlib.import_module(name) for name in names)], scheme)


def closure_digest(
    data: dict[str, Any], functions: Iterable[Callable[..., Any]], scheme: str = SCHEME
) -> str:
    """A digest of a declaration and the source code of everything its functions reach (`closure`).

    In `ast1`, where code lives is not what it computes: each function or class counts by its
    name, tree and constants, in the order of those, so moving a helper to another module
    (the declaration names the functions it calls, in order) changes no digest.
    """
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    blocks = []
    for reached in closure(list(functions), key=None if scheme == AST_SCHEME else _recorded_key):
        where = reached.__qualname__ if scheme == AST_SCHEME else ".".join(_recorded_key(reached))
        constants = "".join(f"{name}={value}\n" for name, value in sorted(_constants(reached).items()))
        blocks.append(f"{where}\n".encode() + code_form(reached, scheme) + constants.encode())
    for block in sorted(blocks) if scheme == AST_SCHEME else blocks:
        digest.update(block)
    return digest.hexdigest()[:DIGITS]


def code_form(item: Any, scheme: str = SCHEME) -> bytes:
    """What a digest of `scheme` takes of a function's, class's or module's code (see the
    module's docstring).

    Raises:
        UnknownHashSchemeError: `scheme` is neither `AST_SCHEME` nor `TEXT_SCHEME`.
    """
    source = inspect.getsource(item)
    if scheme == TEXT_SCHEME:
        kept = _kept_texts()
        return (kept.get(_tree_key(source), source) if kept else source).encode()
    if scheme != AST_SCHEME:
        known = f"{AST_SCHEME}, {TEXT_SCHEME}"
        raise UnknownHashSchemeError(
            f"digest scheme {scheme!r} is not one this parity knows ({known}): upgrade parity"
        )
    return _tree_bytes(source)


def _tree_bytes(source: str) -> bytes:
    tree = _parsed(source)
    if tree is None:  # a lambda inside a longer expression: its source does not parse alone
        return b"text:" + source.encode()
    return _tree_form(_without_docstrings(tree)).encode()


def _parsed(source: str) -> ast.Module | None:
    """The tree of a function's, class's or module's source (a method's is indented)."""
    try:
        return ast.parse(textwrap.dedent(source))
    except SyntaxError:  # indented code holding a multi-line string whose lines start at column 0
        try:
            block = ast.parse("if True:\n" + source).body[0]
        except SyntaxError:
            return None
        return ast.Module(body=block.body if isinstance(block, ast.If) else [block], type_ignores=[])


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            if _is_docstring(node.body[0]):
                node.body = node.body[1:]
    return tree


def _is_docstring(statement: ast.stmt) -> bool:
    value = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(value, ast.Constant) and isinstance(value.value, str)


def _tree_form(value: Any) -> str:
    """A tree as `ast1` digests it: each node's type and its non-empty fields by name, in order,
    without positions; constants by their `repr`."""
    if isinstance(value, ast.AST):
        fields = ((name, getattr(value, name, None)) for name in value._fields)
        shown = ",".join(f"{name}={_tree_form(v)}" for name, v in fields if v is not None and v != [])
        return f"{type(value).__name__}({shown})"
    if isinstance(value, list):
        return "[" + ",".join(_tree_form(v) for v in value) + "]"
    return repr(value)


KEPT_TEXTS = "kept_texts.json.gz"  # beside this module, once a formatter has run over parity (`kept_texts`)


@functools.cache
def _kept_texts() -> dict[str, str]:
    """The texts from before a formatter ran, by `_tree_key` (none before one has)."""
    resource = importlib.resources.files(__package__) / KEPT_TEXTS
    return dict(json.loads(gzip.decompress(resource.read_bytes()))) if resource.is_file() else {}


def _tree_key(source: str) -> str:
    """Which code a source text is, whatever its layout: its indentation and its `ast1` tree."""
    indent = source[: len(source) - len(source.lstrip(" \t"))]
    return f"{indent!r}:{hashlib.sha256(_tree_bytes(source)).hexdigest()}"


def source_texts(package: str) -> dict[str, str | None]:
    """The texts the text scheme reads of a package: each module's, and each function's and class's
    defined at a module's top level, by `_tree_key` (None where two texts of one tree differ).
    Taken before a formatter runs, for `kept_texts` after it."""
    root = importlib.import_module(package)
    modules = [
        root,
        *(importlib.import_module(m.name) for m in pkgutil.walk_packages(root.__path__, f"{package}.")),
    ]
    texts: dict[str, str | None] = {}
    for module in modules:
        defined = [
            v
            for v in vars(module).values()
            if _is_code(v) and getattr(v, "__module__", "") == module.__name__
        ]
        for item in [module, *defined]:
            try:
                text = inspect.getsource(item)
            except (OSError, TypeError):  # an empty module, a class made at run time
                continue
            key = _tree_key(text)
            texts[key] = text if texts.get(key, text) == text else None
    return texts


def kept_texts(before: dict[str, str | None], package: str) -> dict[str, str]:
    """Of the texts `source_texts` took before a formatter ran, those it rewrote without changing
    their syntax tree: what the text scheme reads instead of the new texts (`KEPT_TEXTS`)."""
    now = source_texts(package)
    return {key: text for key, text in before.items() if text is not None and key in now and now[key] != text}


def write_kept_texts(texts: dict[str, str], folder: Path) -> None:
    """Write `kept_texts` as `KEPT_TEXTS` into `folder` (parity.core's). Texts kept there by an
    earlier formatter's run win: they are the ones the text scheme's records were made over."""
    path = folder / KEPT_TEXTS
    kept = dict(json.loads(gzip.decompress(path.read_bytes()))) if path.is_file() else {}
    path.write_bytes(gzip.compress(json.dumps({**texts, **kept}, sort_keys=True).encode(), mtime=0))


RECORDED_IN = "TEXT_SCHEME_MODULE"  # a module's name for the module its code moved from (`_recorded_key`)


def _recorded_key(item: Any) -> tuple[str, str]:
    """Where the text scheme names `item`: by its module, or by the module its code lived in
    when text-scheme records were made, if its module says so in `RECORDED_IN` (code moved
    out of a module that grew too large, its text unchanged, still matches those records)."""
    module = sys.modules.get(item.__module__)
    return str(getattr(module, RECORDED_IN, item.__module__)), item.__qualname__


def closure(
    functions: list[Callable[..., Any]], key: Callable[[Any], tuple[str, str]] | None = None
) -> list[Any]:
    """`functions`, then every function and class they reach through their globals (and
    closures), transitively: the code that decides what they compute.

    Only the project's own code is followed: the top-level packages of `functions`' modules,
    and parity. Third-party code (pyspark, numpy) is pinned by the lock file, not hashed. The
    functions reached are in a stable order: the roots as given, then by `key` (module and
    name by default).
    """
    named = key or (lambda item: (item.__module__, item.__qualname__))
    packages = {_package(fn) for fn in functions} | {"parity"}
    roots = [inspect.unwrap(fn) for fn in functions]
    seen: dict[tuple[str, str], Any] = {}
    stack = list(roots)
    while stack:
        item = stack.pop()
        if named(item) in seen:
            continue
        seen[named(item)] = item
        stack += [found for found in _references(item) if _package(found) in packages]
    root_keys = [named(fn) for fn in roots]
    rest = sorted(key for key in seen if key not in root_keys)
    return [seen[key] for key in dict.fromkeys([*root_keys, *rest])]


def _references(item: Any) -> list[Any]:
    """The functions and classes a function (or each method of a class) names as globals,
    reads from a module it names (`module.fn`), or holds in its closure."""
    if inspect.isclass(item):
        methods = [inspect.unwrap(m) for m in vars(item).values() if isinstance(m, FunctionType)]
        return [found for method in methods for found in _references(method)]
    if not isinstance(item, FunctionType):
        return []
    names = _names(item.__code__)
    found: list[Any] = []
    for name in names:
        value = item.__globals__.get(name)
        if isinstance(value, ModuleType):
            found += [
                getattr(value, attribute) for attribute in names if _is_code(getattr(value, attribute, None))
            ]
        elif value is not None and _is_code(value):
            found.append(inspect.unwrap(value))
    for cell in item.__closure__ or ():
        try:
            if _is_code(cell.cell_contents):
                found.append(inspect.unwrap(cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    return found


_CONSTANT_TYPES = (str, bytes, int, float, bool, tuple, frozenset, re.Pattern)


def _constants(item: Any) -> dict[str, str]:
    """The module-level constants a function reads (a pattern, a threshold, a tuple of names),
    as text: editing one changes what the function computes as surely as editing its code."""
    if not isinstance(item, FunctionType):
        return {}
    found: dict[str, str] = {}
    names = _names(item.__code__)
    for name in names:
        value = item.__globals__.get(name)
        if isinstance(value, _CONSTANT_TYPES):
            found[name] = _constant_text(value)
        elif isinstance(value, ModuleType) and _package(value) == _package(item):
            found |= {
                f"{name}.{a}": _constant_text(getattr(value, a))
                for a in names
                if isinstance(getattr(value, a, None), _CONSTANT_TYPES)
            }
    return found


def _constant_text(value: Any) -> str:
    return f"re.compile({value.pattern!r}, {value.flags})" if isinstance(value, re.Pattern) else repr(value)


def _package(item: Any) -> str:
    return str(getattr(item, "__module__", None) or getattr(item, "__name__", "")).split(".")[0]


def _names(code: CodeType) -> list[str]:
    """The global and attribute names a code object (and every code object nested in it) uses."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names += _names(constant)
    return list(dict.fromkeys(names))


def _is_code(value: Any) -> bool:
    return isinstance(value, FunctionType) or (inspect.isclass(value) and _has_source(value))


def _has_source(value: Any) -> bool:
    try:
        inspect.getsourcefile(value)
    except TypeError:  # a built-in class
        return False
    return True


def record_hash(data: bytes) -> str:
    """A file's hash as a wheel's RECORD lists it: `sha256=` and the URL-safe base64 digest."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
