"""mkdocs hook: expand ``::: funrl.module`` lines of docs/api/*.md into API listings.

Each public symbol (the module's ``__all__``) gets its signature and the first paragraph
of its docstring, so the API pages never drift from the code.  Registered in mkdocs.yml
under ``hooks:``; needs funrl importable, nothing else (no plugin, no network).  An import
failure is logged as a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from typing import Any

log = logging.getLogger("mkdocs.hooks.funrl_api")

_DIRECTIVE = re.compile(r"^::: *([A-Za-z_][\w.]*) *$", re.MULTILINE)


def first_paragraph(doc: str | None) -> str:
    """The docstring's first paragraph on one line (empty if there is none)."""
    if not doc:
        return ""
    para = inspect.cleandoc(doc).split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in para.splitlines())
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)  # Sphinx roles -> code
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _signature(obj: Any) -> str:
    target = obj.__init__ if inspect.isclass(obj) and not _is_record(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return ""
    parts, star_done = [], False
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
        star_done = star_done or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        text = prefix + p.name
        if p.annotation is not p.empty:
            ann = (
                p.annotation
                if isinstance(p.annotation, str)
                else inspect.formatannotation(p.annotation)
            )
            text += f": {ann}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def _is_record(cls: Any) -> bool:
    return hasattr(cls, "__dataclass_fields__") or hasattr(cls, "_fields")


def _kind(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def render(module_name: str) -> str:
    """Markdown listing the public symbols of ``module_name``."""
    try:
        mod = importlib.import_module(module_name)
    except Exception as e:  # a broken module must fail the strict build
        log.warning("API page: cannot import %s: %s: %s", module_name, type(e).__name__, e)
        return f"*`{module_name}` could not be imported when these docs were built.*"
    names = list(getattr(mod, "__all__", [n for n in vars(mod) if not n.startswith("_")]))
    out = [f"## `{module_name}`", "", first_paragraph(mod.__doc__), ""]
    for name in names:
        if not hasattr(mod, name):
            log.warning(
                "API page: %s.__all__ names %r, which it does not define", module_name, name
            )
            continue
        obj = getattr(mod, name)
        kind = _kind(obj)
        sig = _signature(obj) if kind in ("class", "function") else ""
        summary = first_paragraph(getattr(obj, "__doc__", None)) if kind != "constant" else ""
        if kind == "class" and summary == first_paragraph(type.__doc__):
            summary = ""
        out.append(f"- **`{name}`** *{kind}* `{sig}`" if sig else f"- **`{name}`** *{kind}*")
        if summary:
            out.append(f"    {summary}")
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """mkdocs event: replace each ``::: module`` line with :func:`render`'s listing."""
    return _DIRECTIVE.sub(lambda m: render(m.group(1)), markdown)
