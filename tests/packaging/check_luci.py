#!/usr/bin/env python3
"""Check the LuCI view against the UCI schema (UCI.md) in both directions.

Every option the view edits must exist in the schema for its section type, and every
schema option must have a field in the view. The [limits] keys of section 'main' are
listed in UCI.md only in a comment, so they are taken from `struct Limits` in
src/config/model.rs (the one config model). Exit 1 with one line per mismatch.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "openwrt-package/luci-app-edgemq/htdocs/luci-static/resources/view/edgemq/config.js"
MODEL = ROOT / "src/config/model.rs"


def find_uci_md():
    for p in (ROOT / "UCI.md", ROOT / "docs/UCI.md", ROOT.parent / "UCI.md"):
        if p.exists():
            return p
    sys.exit("check_luci: UCI.md not found (looked in the repository root, docs/, and ..)")


def schema_options(text):
    """section type -> set of options, from the `config TYPE` blocks of UCI.md."""
    schema, current = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*config\s+(\w+)", line)
        if m:
            current = schema.setdefault(m.group(1), {"enabled"})
            continue
        if current is None:
            continue
        # `option x` and `list x`, also in comments ("or: option password_hash ...")
        for m in re.finditer(r"\b(?:option|list)\s+(\w+)", line):
            current.add(m.group(1))
    return schema


def limits_fields(text):
    m = re.search(r"pub struct Limits \{(.*?)\n\}", text, re.S)
    if not m:
        sys.exit("check_luci: struct Limits not found in model.rs")
    return set(re.findall(r"pub (\w+):", m.group(1)))


def view_options(text):
    """section type -> set of options edited by the view."""
    view, current = {}, None
    sec = re.compile(r"m\.section\(form\.\w+,\s*'(\w+)'(?:,\s*'(\w+)')?")
    opt = re.compile(r"s\.(?:tab)?option\((?:'\w+',\s*)?form\.(\w+),\s*'(\w+)'")
    # helpers above render() (enabledFlag) are counted where they are called
    body = text[text.index("render: function"):]
    for line in body.splitlines():
        m = sec.search(line)
        if m:
            # NamedSection(name, type): the type is the second argument
            stype = m.group(2) if m.group(2) and "NamedSection" in line else m.group(1)
            if "NamedSection" in line:
                stype = {"main": "edgemq"}.get(m.group(1), m.group(1))
            current = view.setdefault(stype, set())
            continue
        if "enabledFlag(s)" in line and current is not None:
            current.add("enabled")
        for m in opt.finditer(line):
            if m.group(1) in ("DummyValue", "Button", "SectionValue"):
                continue
            if current is None:
                sys.exit(f"check_luci: option {m.group(2)} before any section")
            current.add(m.group(2))
    return view


def main():
    schema = schema_options(find_uci_md().read_text())
    schema.setdefault("edgemq", {"enabled"}).update(limits_fields(MODEL.read_text()))
    js = Path(sys.argv[1]) if len(sys.argv) > 1 else JS  # a different view, for the self-test
    view = view_options(js.read_text())
    assert schema and view, "empty schema or view: the parsers found nothing"
    problems = []
    for stype in sorted(set(schema) | set(view)):
        s, v = schema.get(stype, set()), view.get(stype, set())
        if stype not in schema:
            problems.append(f"view edits section type '{stype}' which is not in UCI.md")
        if stype not in view:
            problems.append(f"UCI.md section type '{stype}' has no LuCI section")
        for o in sorted(v - s):
            problems.append(f"{stype}: LuCI edits option '{o}' which is not in UCI.md")
        for o in sorted(s - v):
            problems.append(f"{stype}: UCI.md option '{o}' has no LuCI field")
    for p in problems:
        print(p)
    n = sum(len(x) for x in schema.values())
    print(f"check_luci: {len(schema)} section types, {n} schema options, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
