"""Griffe extension for the API reference: our docstrings are read in the terminal and by doctest as well
as on the site, so they use plain-text conventions that Markdown would garble. At load time each docstring
gets

* doctest blocks (from a ``>>>`` line to the next blank line) fenced as Python console code;
* Sphinx roles (``:func:`~steerable3d.x.f```) turned into cross-references when they name a steerable3d
  object (resolved by autorefs: a wrong name fails the strict build) and into code otherwise (torch, e3nn);
* ``.. math::`` blocks shown as preformatted text (no MathJax: the site stays offline);
* argument entries that document several parameters at once (``a, b: text``) split into one entry each,
  the form the Google-style parser reads.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`(~?)([\w.]+)`")


def fence_doctests(text: str) -> str:
    lines, out, inside = text.split("\n"), [], False
    for line in lines:
        if not inside and line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not line.strip():
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


def fence_math(text: str) -> str:
    def block(match: re.Match) -> str:
        indent, body = match.group(1), match.group(2)
        return f"{indent}```text\n{body.rstrip()}\n{indent}```\n"

    return re.sub(r"^([ \t]*)\.\. math::\n\n((?:\1[ \t]+.*\n|\n)+)", block, text, flags=re.MULTILINE)


SECTION = re.compile(r"^([ \t]*)(Args|Arguments|Parameters):[ \t]*$")
SHARED_ENTRY = re.compile(r"^([ \t]+)(\w+(?:, \w+)+): (.*)$")


def split_shared_entries(text: str) -> str:
    out, section_indent = [], None
    for line in text.split("\n"):
        header = SECTION.match(line)
        if header:
            section_indent = len(header.group(1))
        elif section_indent is not None and line.strip() and len(line) - len(line.lstrip()) <= section_indent:
            section_indent = None
        entry = SHARED_ENTRY.match(line) if section_indent is not None else None
        if entry:
            indent, names, description = entry.groups()
            out.extend(f"{indent}{name}: {description}" for name in names.split(", "))
            continue
        out.append(line)
    return "\n".join(out)


def _shown(scope: griffe.Object, dotted: str) -> bool:
    """Whether ``dotted``, looked up from ``scope``, names an object the reference renders (public,
    documented, defined in steerable3d)."""
    found = scope
    for part in dotted.split("."):
        members = getattr(found, "members", None)
        if not members or part not in members:
            return False
        found = members[part]
        if found.is_alias:
            if not found.target_path.startswith("steerable3d"):
                return False
            try:
                found = found.final_target
            except griffe.AliasResolutionError:
                return False
    return found.has_docstring and found.is_public


def resolve_roles(text: str, obj: griffe.Object) -> str:
    def replace(match: re.Match) -> str:
        short, target = match.group(1), match.group(2)
        shown = target.rsplit(".", 1)[-1] if short else target
        if target.startswith("steerable3d"):
            return f"[`{shown}`][{target}]"  # explicit: a wrong path fails the strict build
        # a bare name: a member of this object, of its class or of its module, if the reference shows it
        for scope in (obj, obj.parent, obj.module):
            if scope is not None and _shown(scope, target):
                return f"[`{shown}`][{scope.path}.{target}]"
        return f"`{shown}`"

    return ROLE.sub(replace, text)


class RstDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            value = split_shared_entries(fence_math(obj.docstring.value))
            obj.docstring.value = resolve_roles(fence_doctests(value), obj)
