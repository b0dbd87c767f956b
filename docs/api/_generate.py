"""mkdocs hook: expand ``::: funrl.module`` lines of docs/api/*.md into API reference.

Each directive becomes a section with the module's docstring and, for every public symbol
(the module's ``__all__``, or the names it defines when it has none), its signature and
its whole docstring turned into Markdown: ``Args:``/``Attributes:``/``Raises:`` as
definition lists (record fields get their types and defaults), ``Returns:`` as text,
``Example::`` and ``>>>`` blocks as fenced python, ``Note:``/``Warning:`` as
admonitions, ``:func:`x``` roles as links.  Classes also list their fields and their
own public methods and properties.

A symbol is documented in full once, in the section of the module that defines it (or
of the closest package that exports it); other modules that re-export it get its
signature, first paragraph and a link.  A package section names the submodules it
documents (those without a ``:::`` line of their own).

Registered in mkdocs.yml under ``hooks:``; needs funrl importable and nothing else (no
plugin, no network).  An import failure, or an ``__all__`` naming something undefined,
is logged as a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import logging
import pkgutil
import posixpath
import re
import textwrap
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.funrl_api")

_DIRECTIVE = re.compile(r"^::: *([A-Za-z_][\w.]*) *$", re.MULTILINE)
_API_DIR = Path(__file__).resolve().parent
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Attributes|Fields|Raises|Returns|Return|Yields|"
    r"Examples?|Notes?|Warnings?|See Also|References)(::?)[ \t]*(.*)$"
)
_ENTRY_SECTIONS = {"Args", "Arguments", "Parameters", "Attributes", "Fields", "Raises"}
_TITLES = {
    "Arguments": "Args",
    "Parameters": "Args",
    "Fields": "Attributes",
    "Return": "Returns",
    "Examples": "Example",
    "Notes": "Note",
    "Warnings": "Warning",
}
_NAME = r"\*{0,2}[A-Za-z_][\w.]*(?: *\([^)]*\))?"
_ENTRY = re.compile(rf"^({_NAME}(?: *, *{_NAME})*) *: *(.*)$")
_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc|const|py:\w+):`~?([^`]+)`")
_SHELL = re.compile(r"^(\$ |funrl |torchrun |python |pip |OMP_|\.venv/|bash )")
_FENCE = "```"
_SYMBOLS = "<!-- symbols -->"  # where a package's list of modules goes
_ITEM = re.compile(r"^(?:[-*+]|\d+\.) ")


# --------------------------------------------------------------------------- the index


@functools.cache
def _directives() -> dict[str, str]:
    """Module -> the page (``api/x.md``) whose ``:::`` line documents it."""
    out: dict[str, str] = {}
    for md in sorted(_API_DIR.glob("*.md")):
        for mod in _DIRECTIVE.findall(md.read_text(encoding="utf-8")):
            out.setdefault(mod, f"api/{md.name}")
    return out


def _import(name: str) -> Any:
    return importlib.import_module(name)


def public_names(mod: Any) -> list[str]:
    """``__all__``, or the public names ``mod`` defines itself (not what it imports)."""
    names = getattr(mod, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n
        for n, o in vars(mod).items()
        if not n.startswith("_")
        and not inspect.ismodule(o)
        and getattr(o, "__module__", None) == mod.__name__
    ]


def _documentable(obj: Any) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj)


@functools.cache
def _homes() -> dict[int, str]:
    """id(object) -> the full name (``module.name``) under which it is documented in full."""
    candidates: dict[int, list[tuple[str, str]]] = {}
    for modname in _directives():
        try:
            mod = _import(modname)
        except Exception:
            continue  # reported when the page renders
        for n in public_names(mod):
            obj = getattr(mod, n, None)
            if _documentable(obj):
                candidates.setdefault(id(obj), []).append((modname, n))
    homes = {}
    for key, places in candidates.items():
        obj_mod = getattr(_obj_by_place(places[0]), "__module__", "") or ""

        def rank(place: tuple[str, str], obj_mod: str = obj_mod) -> tuple[int, int, str]:
            m = place[0]
            if m == obj_mod:
                return (0, 0, m)
            if obj_mod.startswith(m + "."):
                return (1, -len(m), m)  # the closest package that exports it
            return (2, 0, m)

        best = min(places, key=rank)
        homes[key] = f"{best[0]}.{best[1]}"
    return homes


def _obj_by_place(place: tuple[str, str]) -> Any:
    return getattr(_import(place[0]), place[1])


def module_anchor(name: str) -> str:
    """The id of a module's section (a module and a function may share a dotted name)."""
    return f"module-{name}"


@functools.cache
def _anchors() -> dict[str, tuple[str, str]]:
    """Full name -> (page, id) of every module section, documented symbol and member."""
    pages = _directives()
    out = {m: (page, module_anchor(m)) for m, page in pages.items()}
    for full in _homes().values():  # a symbol wins over a module of the same name
        modname, _, name = full.rpartition(".")
        out[full] = (pages[modname], full)
        obj = getattr(_import(modname), name)
        if inspect.isclass(obj):
            for member, _ in _members(obj):
                out[f"{full}.{member}"] = (pages[modname], f"{full}.{member}")
    return out


def _link(target: str, page: str | None) -> str:
    """A Markdown link to the anchor of the full name ``target``, from ``page``."""
    dest, fragment = _anchors()[target]
    if page is None or dest == page:
        return f"#{fragment}"
    rel = posixpath.relpath(dest, posixpath.dirname(page) or ".")
    return f"{rel}#{fragment}"


def _resolve(name: str, context: str) -> str | None:
    """The anchor a role's target ``name`` refers to, seen from ``context`` (a dotted name)."""
    anchors = _anchors()
    name = name.strip().removesuffix("()")
    scopes = context.split(".")
    for i in range(len(scopes), 0, -1):
        cand = ".".join(scopes[:i]) + "." + name
        if cand in anchors:
            return cand
    if name in anchors:
        return name
    if f"funrl.{name}" in anchors:
        return f"funrl.{name}"
    return None


# --------------------------------------------------------------------------- signatures


def _ann(a: Any) -> str:
    text = a if isinstance(a, str) else inspect.formatannotation(a)
    return re.sub(r"ForwardRef\('([^']*)'\)", r"\1", text)


def _default(v: Any) -> str:
    if inspect.isclass(v) or inspect.isroutine(v):
        return getattr(v, "__qualname__", None) or getattr(v, "__name__", repr(v))
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _params(sig: inspect.Signature) -> list[str]:
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    parts, star_done = [], False
    for k, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
        star_done = star_done or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            text += f": {_ann(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {_default(p.default)}"
        parts.append(text)
        last_positional_only = p.kind is p.POSITIONAL_ONLY and (
            k + 1 == len(params) or params[k + 1].kind is not p.POSITIONAL_ONLY
        )
        if last_positional_only:
            parts.append("/")
    return parts


def _is_record(cls: Any) -> bool:
    return inspect.isclass(cls) and (dataclasses.is_dataclass(cls) or hasattr(cls, "_fields"))


def _signature_target(obj: Any) -> Any:
    if not inspect.isclass(obj):
        return obj
    if _is_record(obj):
        return obj
    init = obj.__dict__.get("__init__") or next(
        (b.__dict__["__init__"] for b in obj.__mro__ if "__init__" in b.__dict__), None
    )
    if not inspect.isfunction(init) or "Protocol" in init.__qualname__:
        return None  # object's, an exception's or a Protocol's: nothing to show
    return init


def signature(obj: Any, name: str) -> str:
    """``def name(...) -> T`` / ``class Name(...)``, one parameter a line when long."""
    target = _signature_target(obj)
    keyword = "class" if inspect.isclass(obj) else "def"
    if target is None:
        return f"{keyword} {name}"
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return f"{keyword} {name}(...)"
    parts = _params(sig)
    ret = ""
    if keyword == "def" and sig.return_annotation is not sig.empty:
        ret = f" -> {_ann(sig.return_annotation)}"
    one_line = f"{keyword} {name}({', '.join(parts)}){ret}"
    if len(one_line) <= 88 or not parts:
        return one_line
    body = "".join(f"    {p},\n" for p in parts)
    return f"{keyword} {name}(\n{body}){ret}"


def _fields(cls: Any) -> dict[str, str]:
    """Field name -> ``name: type = default`` for dataclasses and NamedTuples."""
    out = {}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            text = f"{f.name}: {_ann(f.type)}"
            if f.default is not dataclasses.MISSING:
                text += f" = {_default(f.default)}"
            elif f.default_factory is not dataclasses.MISSING:
                text += f" = {_default(f.default_factory)}()"
            out[f.name] = text
    elif hasattr(cls, "_fields"):
        ann = getattr(cls, "__annotations__", {})
        defaults = getattr(cls, "_field_defaults", {})
        for n in cls._fields:
            text = f"{n}: {_ann(ann[n])}" if n in ann else n
            if n in defaults:
                text += f" = {_default(defaults[n])}"
            out[n] = text
    return out


def _members(cls: Any) -> list[tuple[str, Any]]:
    """Public methods and properties written in ``cls``'s own body, in source order."""
    out = []
    for n, v in vars(cls).items():
        if n.startswith("_"):
            continue
        fn = v.fget if isinstance(v, property) else getattr(v, "__func__", v)
        if not inspect.isroutine(fn) and not isinstance(v, property):
            continue
        qual = getattr(fn, "__qualname__", "")
        if qual.startswith(cls.__qualname__ + "."):
            out.append((n, v))
    return out


# --------------------------------------------------------------------------- docstrings


def _inline(text: str, context: str, page: str | None) -> str:
    """Sphinx roles to (linked) code, ````x```` to ```x```, ``<`` escaped outside code."""

    def role(m: re.Match[str]) -> str:
        target = m.group(1)
        shown = target.split(".")[-1] if m.group(0).count("~") else target
        anchor = _resolve(target, context)
        return f"[`{shown}`]({_link(anchor, page)})" if anchor else f"`{shown}`"

    pieces = re.split(r"(``[^`]+?``|`[^`]+`)", text)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:  # a code span
            if piece.startswith("``"):
                piece = "`" + piece[2:-2] + "`" if "`" not in piece[2:-2] else piece
            out.append(piece)
        else:
            out.append(piece.replace("<", "&lt;"))
    text = "".join(out)
    # roles were split as text + code span: rejoin ":func:" + "`x`"
    return _ROLE.sub(role, text)


def _lang(lines: list[str]) -> str:
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith(">>>"):
        return "python"
    if _SHELL.match(first):
        return "bash"
    return "text"


def _code(lines: list[str], lang: str, nested: bool) -> list[str]:
    body = textwrap.dedent("\n".join(lines)).strip("\n").splitlines()
    if nested:  # fenced blocks only work at the top level: indent instead
        return ["", *("    " + ln if ln.strip() else "" for ln in body), ""]
    return ["", _FENCE + lang, *body, _FENCE, ""]


def _take_indented(lines: list[str], i: int) -> tuple[list[str], int]:
    """Lines from ``i`` that are indented or blank, up to the next column-0 line."""
    j = i
    while j < len(lines) and (not lines[j].strip() or lines[j][:1] in " \t"):
        j += 1
    body = lines[i:j]
    while body and not body[-1].strip():
        body.pop()
    return body, j


def _entries(body: list[str], known: set[str]) -> list[tuple[list[str], list[str]]] | None:
    """``name: text`` entries (continuations indented); None if the body has none."""
    out: list[tuple[list[str], list[str]]] = []
    rest: list[list[str]] = []  # each entry's continuation lines, as written
    for line in body:
        m = _ENTRY.match(line) if line[:1] not in " \t" else None
        if m and line.strip():
            names = [n.strip() for n in m.group(1).split(",")]
            out.append((names, [m.group(2)] if m.group(2) else []))
            rest.append([])
        elif out:
            rest[-1].append(line)
        elif line.strip():
            return None
    if not out:
        return None
    # continuations keep their relative indentation (a literal block inside an entry)
    out = [(n, [*t, *textwrap.dedent("\n".join(r)).splitlines()]) for (n, t), r in zip(out, rest)]
    return _split_joined(out, known) if known else out


def _split_joined(
    entries: list[tuple[list[str], list[str]]], known: set[str]
) -> list[tuple[list[str], list[str]]]:
    """``a: x.  b, c: y`` on one line is two entries when ``b`` and ``c`` are parameters."""
    pat = re.compile(rf"(?:(?<=\.) {{2,}}|(?<=;) +)({_NAME}(?: *, *{_NAME})*) *: +")
    out = []
    for names, text in entries:
        joined = "\n".join(text)
        pieces = pat.split(joined)
        cur_names, cur_text = names, pieces[0]
        for k in range(1, len(pieces), 2):
            new = [n.strip() for n in pieces[k].split(",")]
            if all(n.lstrip("*") in known for n in new):
                out.append((cur_names, cur_text.splitlines()))
                cur_names, cur_text = new, pieces[k + 1]
            else:
                cur_text += "  " + pieces[k] + ": " + pieces[k + 1]
        out.append((cur_names, cur_text.splitlines()))
    return out


def _term(names: list[str], fields: dict[str, str]) -> str:
    shown = []
    for n in names:
        bare = re.sub(r" *\(.*\)$", "", n)
        typed = re.search(r"\((.*)\)$", n)
        if bare in fields:
            shown.append(f"`{fields[bare]}`")
        elif typed:
            shown.append(f"`{bare}` (`{typed.group(1)}`)")
        else:
            shown.append(f"`{bare}`")
    return ", ".join(shown)


def _definition(text: list[str], ctx: Ctx) -> list[str]:
    md = convert("\n".join(text), ctx, nested=True) if any(t.strip() for t in text) else ["—"]
    while md and not md[0].strip():
        md.pop(0)
    out = []
    for k, ln in enumerate(md):
        out.append((":   " if k == 0 else "    ") + ln if ln.strip() else "")
    return out


@dataclasses.dataclass
class Ctx:
    """What a docstring is converted for: its dotted name, page and known names."""

    name: str
    page: str | None
    params: set[str] = dataclasses.field(default_factory=set)
    fields: dict[str, str] = dataclasses.field(default_factory=dict)


def convert(doc: str, ctx: Ctx, nested: bool = False) -> list[str]:
    """A Google-style docstring as Markdown lines."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            text = _inline("\n".join(para), ctx.name, ctx.page).splitlines()
            for k, ln in enumerate(text):
                # a list right after a line of text needs a blank line in Markdown
                if k and _ITEM.match(ln) and not _ITEM.match(text[k - 1]):
                    if text[k - 1][:1] not in " \t":
                        out.append("")
                out.append(ln)
            out.append("")
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        indented = line[:1] in " \t"
        sec = _SECTION.match(line) if not indented else None
        if sec:
            flush()
            body, i = _take_indented(lines, i + 1)
            out.extend(_section(sec.group(1), sec.group(2), sec.group(3), body, ctx, nested))
            continue
        if stripped.startswith(".. math::") or stripped.startswith(".. code"):
            flush()
            body, i = _take_indented(lines, i + 1)
            first = stripped.split("::", 1)[1].strip()
            lang = "python" if "python" in first else "text"
            code = [first] if first and stripped.startswith(".. math") else []
            out.extend(_code([*code, *body], lang, nested))
            continue
        if stripped.startswith(">>>") and not para:
            flush()
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            out.extend(_code(lines[i:j], "python", nested))
            i = j
            continue
        if indented and not para:  # an indented block after a blank line: literal
            body, i = _take_indented(lines, i)
            out.extend(_code(body, _lang(body), nested))
            continue
        if stripped.endswith("::"):
            para.append(line[:-2].rstrip() + (":" if not line[:-2].endswith(" ") else ""))
            if para[-1].strip() == "":
                para.pop()
            flush()
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            body, i = _take_indented(lines, i)
            if body:
                out.extend(_code(body, _lang(body), nested))
            continue
        if line.lstrip().startswith(("#", ">")) and not para:
            line = "\\" + line.lstrip()
        para.append(line)
        i += 1
    flush()
    while out and not out[-1].strip():
        out.pop()
    return out


def _section(
    title: str, colons: str, rest: str, body: list[str], ctx: Ctx, nested: bool
) -> list[str]:
    title = _TITLES.get(title, title)
    if rest.endswith("::"):  # "Example: the pieces a recipe reuses::" + a literal block
        rest, colons = rest[:-2].rstrip() + ":", "::"
    dedented = textwrap.dedent("\n".join(body)).splitlines() if body else []
    if title == "Example":
        head = [f"**{title}**" + (f": {_inline(rest, ctx.name, ctx.page)}" if rest else ""), ""]
        if colons == "::" or (dedented and dedented[0].lstrip().startswith(">>>")):
            return [
                "",
                *head,
                *_code(dedented, "python" if _lang(dedented) != "bash" else "bash", nested),
                "",
            ]
        return ["", *head, *convert("\n".join(dedented), ctx, nested), ""]
    if title in ("Note", "Warning", "See Also", "References"):
        kind = {"Note": "note", "Warning": "warning"}.get(title, "info")
        text = "\n".join([rest, *dedented]).strip()
        inner = convert(text, ctx, nested=True)
        label = "" if kind != "info" else f' "{title}"'
        return ["", f"!!! {kind}{label}", *("    " + ln if ln.strip() else "" for ln in inner), ""]
    if title in _ENTRY_SECTIONS:
        known = ctx.params | set(ctx.fields)
        entries = _entries(dedented, known) if not rest else None
        if entries is not None:
            out = ["", f"**{title}**", ""]
            seen = set()
            for names, text in entries:
                out.append(_term(names, ctx.fields if title == "Attributes" else {}))
                out.extend(_definition(text, ctx))
                out.append("")
                bare = [re.sub(r" *\(.*\)$", "", n).lstrip("*") for n in names]
                seen.update(bare)
                stale = [n for n in bare if n not in ctx.params]
                if title == "Args" and ctx.params and stale:  # the docstring drifted
                    log.warning(
                        "API page: %s documents parameters it does not take: %s", ctx.name, stale
                    )
            if title == "Attributes":
                missing = [f for f in ctx.fields if f not in seen]
                if missing:
                    listed = ", ".join(f"`{ctx.fields[f]}`" for f in missing)
                    out.extend([f"Other fields: {listed}.", ""])
            return out
    # Returns, Yields, or an entry section written as prose
    text = "\n".join([rest, *dedented]).strip()
    inner = convert(text, ctx, nested)
    if inner and inner[0].strip() and not inner[0].startswith((_FENCE, "    ", "!!!")):
        inner[0] = f"**{title}:** {inner[0]}"
        return ["", *inner, ""]
    return ["", f"**{title}**", "", *inner, ""]


def first_paragraph(doc: str | None) -> str:
    """The docstring's first paragraph on one line (empty if there is none)."""
    if not doc:
        return ""
    para = inspect.cleandoc(doc).split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in para.splitlines())
    text = _ROLE.sub(lambda m: f"`{m.group(1).lstrip('~')}`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


# --------------------------------------------------------------------------- rendering


def _kind(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        if hasattr(obj, "_fields"):
            return "NamedTuple"
        if dataclasses.is_dataclass(obj):
            return "dataclass"
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def _own_doc(obj: Any) -> str:
    doc = obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if not doc or (dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "(")):
            return ""  # dataclasses' generated "Name(a, b)" / an inherited docstring
        if hasattr(obj, "_fields") and doc.startswith(obj.__name__ + "("):
            return ""
    return doc or ""


def _params_of(obj: Any) -> set[str]:
    target = _signature_target(obj)
    try:
        return set(inspect.signature(target).parameters) if target is not None else set()
    except (TypeError, ValueError):
        return set()


def _symbol(full: str, name: str, obj: Any, page: str | None, level: int = 3) -> list[str]:
    """One symbol documented in full: heading, signature, docstring, fields, members."""
    kind = _kind(obj)
    hashes = "#" * level
    out = [f"{hashes} `{name}` {{#{full}}}", "", f"*{kind}*", ""]
    if kind in ("class", "function", "NamedTuple", "dataclass"):
        out.extend([_FENCE + "python", signature(obj, name.rpartition(".")[2]), _FENCE, ""])
    if inspect.isclass(obj):
        bases = [
            b for b in obj.__bases__ if b not in (object, tuple) and not b.__name__.startswith("_")
        ]
        if bases:
            shown = []
            for b in bases:
                home = _homes().get(id(b))
                bname = f"`{b.__qualname__}`"
                if b.__module__ != "builtins":
                    bname = f"`{b.__module__}.{b.__qualname__}`"
                shown.append(f"[{bname}]({_link(home, page)})" if home else bname)
            out.extend([f"Bases: {', '.join(shown)}", ""])
    fields = _fields(obj) if inspect.isclass(obj) else {}
    ctx = Ctx(full, page, _params_of(obj), fields)
    doc = _own_doc(obj)
    if doc:
        out.extend([*convert(doc, ctx), ""])
    if fields and not re.search(r"^(Attributes|Fields):", inspect.cleandoc(doc), re.M):
        out.extend(["**Fields**", "", "| field | type and default |", "|---|---|"])
        for f, text in fields.items():
            typ = text.split(":", 1)[1].strip() if ":" in text else ""
            out.append(f"| `{f}` | `{typ}` |".replace("|`", "| `") if typ else f"| `{f}` | |")
        out.append("")
    if inspect.isclass(obj):
        for mname, member in _members(obj):
            out.extend(_member(f"{full}.{mname}", f"{name}.{mname}", member, page, level + 1))
    return out


def _member(full: str, name: str, member: Any, page: str | None, level: int) -> list[str]:
    hashes = "#" * level
    if isinstance(member, property):
        out = [f"{hashes} `{name}` {{#{full}}}", "", "*property*", ""]
        fn = member.fget
        if fn is not None and "return" in getattr(fn, "__annotations__", {}):
            out.extend([f"Type: `{_ann(fn.__annotations__['return'])}`", ""])
        doc = inspect.getdoc(member) or ""
    else:
        kind = (
            "classmethod"
            if isinstance(member, classmethod)
            else "staticmethod"
            if isinstance(member, staticmethod)
            else "method"
        )
        fn = getattr(member, "__func__", member)
        out = [f"{hashes} `{name}` {{#{full}}}", "", f"*{kind}*", ""]
        out.extend([_FENCE + "python", signature(fn, name.rpartition(".")[2]), _FENCE, ""])
        doc = inspect.getdoc(fn) or ""
    if doc:
        fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        out.extend([*convert(doc, Ctx(full, page, _params_of(fn))), ""])
    return out


def _brief(full: str, name: str, obj: Any, home: str, page: str | None) -> list[str]:
    """A re-exported symbol: signature, first paragraph and a link to its full entry."""
    out = [f"### `{name}` {{#{full}}}", "", f"*{_kind(obj)}*", ""]
    if _kind(obj) != "module":
        out.extend([_FENCE + "python", signature(obj, name), _FENCE, ""])
    summary = first_paragraph(_own_doc(obj) or None)
    if summary:
        out.extend([_inline(summary, home, page), ""])
    out.extend([f"Documented in full as [`{home}`]({_link(home, page)}).", ""])
    return out


def _covered_submodules(mod: Any) -> list[str]:
    """Public submodules of the package ``mod`` documented in its section.

    Those with no ``:::`` line of their own and not inside a subpackage that has one.
    """
    if not hasattr(mod, "__path__"):
        return []
    own = _directives()
    nested = [d for d in own if d.startswith(mod.__name__ + ".")]
    out = []
    for info in pkgutil.walk_packages(mod.__path__, mod.__name__ + "."):
        rel = info.name[len(mod.__name__) + 1 :]
        if any(p.startswith("_") for p in rel.split(".")) or info.name in own:
            continue
        if any(info.name.startswith(d + ".") for d in nested):
            continue
        out.append(info.name)
    return out


def render(module_name: str, page: str | None = None) -> str:
    """Markdown reference of ``module_name``: its docstring and every public symbol."""
    try:
        mod = _import(module_name)
    except Exception as e:  # a broken module must fail the strict build
        log.warning("API page: cannot import %s: %s: %s", module_name, type(e).__name__, e)
        return f"*`{module_name}` could not be imported when these docs were built.*"
    if page is None:
        page = _directives().get(module_name)
    homes = _homes()
    out = [f"## `{module_name}` {{#{module_anchor(module_name)}}}", ""]
    modules: list[Any] = []
    if mod.__doc__:
        out.extend([*convert(mod.__doc__, Ctx(module_name, page)), ""])
    out.append(_SYMBOLS)
    covered = _covered_submodules(mod)
    if covered:
        listed = ", ".join(f"`{c}`" for c in covered)
        out.extend([f"This section also documents the submodules {listed}.", ""])
    for name in public_names(mod):
        if not hasattr(mod, name):
            log.warning(
                "API page: %s.__all__ names %r, which it does not define", module_name, name
            )
            continue
        obj = getattr(mod, name)
        full = f"{module_name}.{name}"
        kind = _kind(obj)
        if kind == "module":
            modules.append(obj)
            continue
        if kind == "constant":
            value = repr(obj)
            value = value if len(value) <= 300 else value[:297] + "..."
            anchor = full.replace("__", "")  # "__" in {#...} would turn bold
            out.extend([f"### `{name}` {{#{anchor}}}", "", "*constant*", ""])
            out.extend([_FENCE + "python", f"{name} = {value}", _FENCE, ""])
            continue
        home = homes.get(id(obj), full)
        if home != full:
            out.extend(_brief(full, name, obj, home, page))
        else:
            out.extend(_symbol(full, name, obj, page))
    if modules:  # a package's public submodules: a list after its docstring
        listing = ["**Modules**", ""]
        for sub in modules:
            name = f"`{sub.__name__}`"
            if sub.__name__ in _directives():
                name = f"[{name}]({_link(sub.__name__, page)})"
            summary = first_paragraph(sub.__doc__)
            listing.append(
                f"- {name}" + (f": {_inline(summary, sub.__name__, page)}" if summary else "")
            )
        at = out.index(_SYMBOLS) if _SYMBOLS in out else len(out)
        out[at:at] = [*listing, ""]
    if _SYMBOLS in out:
        out.remove(_SYMBOLS)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n") + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """mkdocs event: replace each ``::: module`` line with :func:`render`'s reference."""
    uri = page.file.src_uri if page is not None else None
    return _DIRECTIVE.sub(lambda m: render(m.group(1), uri), markdown)
