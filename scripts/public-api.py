#!/usr/bin/env python3
"""Reduces rustdoc's JSON output for one crate to a sorted list of its public
API: one line per item reachable from the crate root (modules, re-exports,
types, fields, variants, functions with their signatures, constants, trait
implementations of public types), each under every public path it has.

usage: public-api.py RUSTDOC_JSON > api.txt

Fails (exit 2) on a rustdoc JSON format version it was not written for, so a
toolchain change cannot silently produce an empty or partial list.
"""
import json
import sys

KNOWN_FORMATS = range(53, 60)

doc = json.load(open(sys.argv[1]))
if doc.get("format_version") not in KNOWN_FORMATS:
    sys.exit(f"public-api.py: unsupported rustdoc JSON format {doc.get('format_version')}")
index = doc["index"]
ROOT_CRATE = 0
crate_name = index[str(doc["root"])]["name"]


def item(i):
    return index.get(str(i))


def kind_of(it):
    return next(iter(it["inner"]))


def ty(t):
    """Renders a rustdoc type."""
    if t is None:
        return "()"
    k, v = next(iter(t.items()))
    if k == "primitive":
        return v
    if k == "generic":
        return v
    if k == "resolved_path":
        return v["path"].split("::")[-1] + args(v.get("args"))
    if k == "borrowed_ref":
        life = (v["lifetime"] + " ") if v.get("lifetime") else ""
        return "&" + life + ("mut " if v["is_mutable"] else "") + ty(v["type"])
    if k == "slice":
        return "[" + ty(v) + "]"
    if k == "array":
        return "[" + ty(v["type"]) + "; " + v["len"] + "]"
    if k == "tuple":
        return "(" + ", ".join(ty(x) for x in v) + ")"
    if k == "impl_trait":
        return "impl " + " + ".join(bound(b) for b in v)
    if k == "dyn_trait":
        return "dyn " + " + ".join(p["trait"]["path"].split("::")[-1] + args(p["trait"].get("args")) for p in v["traits"])
    if k == "qualified_path":
        return ty(v["self_type"]) + "::" + v["name"]
    if k == "raw_pointer":
        return ("*mut " if v["is_mutable"] else "*const ") + ty(v["type"])
    if k == "function_pointer":
        return "fn(" + ", ".join(ty(x[1]) for x in v["sig"]["inputs"]) + ") -> " + ty(v["sig"]["output"])
    if k == "infer":
        return "_"
    return k


def args(a):
    if not a:
        return ""
    if "angle_bracketed" in a:
        parts = []
        for x in a["angle_bracketed"]["args"]:
            if isinstance(x, dict) and "type" in x:
                parts.append(ty(x["type"]))
            elif isinstance(x, dict) and "lifetime" in x:
                parts.append(x["lifetime"])
            elif isinstance(x, dict) and "const" in x:
                parts.append(str(x["const"].get("expr", "_")))
            else:
                parts.append("_")
        for c in a["angle_bracketed"].get("constraints", []):
            binding = c.get("binding", {})
            if "equality" in binding:
                parts.append(c["name"] + " = " + ty(binding["equality"].get("type")))
            else:
                parts.append(c["name"])
        return "<" + ", ".join(parts) + ">" if parts else ""
    if "parenthesized" in a:
        p = a["parenthesized"]
        return "(" + ", ".join(ty(x) for x in p["inputs"]) + ")" + (" -> " + ty(p["output"]) if p.get("output") else "")
    return ""


def bound(b):
    if "trait_bound" in b:
        t = b["trait_bound"]["trait"]
        return t["path"].split("::")[-1] + args(t.get("args"))
    if "outlives" in b:
        return b["outlives"]
    return "?"


def generics(g):
    out = []
    for p in g.get("params", []):
        kind = p["kind"]
        if "type" in kind:
            if kind["type"].get("is_synthetic"):
                continue
            bs = kind["type"].get("bounds", [])
            out.append(p["name"] + (": " + " + ".join(bound(b) for b in bs) if bs else ""))
        elif "const" in kind:
            out.append("const " + p["name"] + ": " + ty(kind["const"]["type"]))
        elif "lifetime" in kind:
            out.append(p["name"])
    where = []
    for w in g.get("where_predicates", []):
        if "bound_predicate" in w:
            bp = w["bound_predicate"]
            where.append(ty(bp["type"]) + ": " + " + ".join(bound(b) for b in bp["bounds"]))
    text = "<" + ", ".join(out) + ">" if out else ""
    if where:
        text += " where " + ", ".join(where)
    return text


def signature(name, f):
    sig = f["sig"]
    header = f.get("header", {})
    prefix = ""
    if header.get("is_const"):
        prefix += "const "
    if header.get("is_async"):
        prefix += "async "
    if header.get("is_unsafe"):
        prefix += "unsafe "
    params = []
    for pname, ptype in sig["inputs"]:
        if pname == "self":
            rendered = ty(ptype)
            params.append({"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(rendered, "self: " + rendered))
        else:
            params.append(pname + ": " + ty(ptype))
    out = "" if sig.get("output") is None else " -> " + ty(sig["output"])
    return f"{prefix}{name}{generics(f['generics'])}({', '.join(params)}){out}"


lines = set()


def public(it):
    return it["visibility"] == "public"


def emit_type_members(path, it):
    inner = it["inner"][kind_of(it)]
    k = kind_of(it)
    if k == "struct":
        kind = inner["kind"]
        fields = []
        if isinstance(kind, dict) and "plain" in kind:
            fields = kind["plain"]["fields"]
        elif isinstance(kind, dict) and "tuple" in kind:
            fields = [f for f in kind["tuple"] if f is not None]
        for fid in fields:
            f = item(fid)
            if f and public(f):
                lines.add(f"field {path}.{f['name']}: {ty(f['inner']['struct_field'])}")
    if k == "enum":
        for vid in inner["variants"]:
            v = item(vid)
            vk = v["inner"]["variant"]["kind"]
            shape = ""
            if isinstance(vk, dict) and "tuple" in vk:
                shape = "(" + ", ".join(ty(item(f)["inner"]["struct_field"]) if f is not None else "_" for f in vk["tuple"]) + ")"
            elif isinstance(vk, dict) and "struct" in vk:
                shape = " { " + ", ".join(
                    item(f)["name"] + ": " + ty(item(f)["inner"]["struct_field"]) for f in vk["struct"]["fields"]) + " }"
            lines.add(f"variant {path}::{v['name']}{shape}")
    for impl_id in inner.get("impls", []):
        imp = item(impl_id)
        if imp is None:
            continue
        body = imp["inner"]["impl"]
        if body.get("is_synthetic") or body.get("blanket_impl") is not None:
            continue
        trait = body.get("trait")
        if trait is not None:
            lines.add(f"impl {trait['path'].split('::')[-1]}{args(trait.get('args'))} for {path}")
            continue
        for mid in body["items"]:
            m = item(mid)
            if m is None or not public(m):
                continue
            mk = kind_of(m)
            if mk == "function":
                lines.add(f"method {signature(path + '::' + m['name'], m['inner']['function'])}")
            elif mk == "assoc_const":
                lines.add(f"const {path}::{m['name']}: {ty(m['inner']['assoc_const']['type'])}")
            elif mk == "assoc_type":
                lines.add(f"type {path}::{m['name']}")


def walk(module_id, path, visiting):
    if module_id in visiting:
        return
    visiting = visiting | {module_id}
    for child in item(module_id)["inner"]["module"]["items"]:
        it = item(child)
        if it is None or not public(it):
            continue
        k = kind_of(it)
        if k == "use":
            use = it["inner"]["use"]
            target = item(use["id"]) if use.get("id") is not None else None
            if use["is_glob"]:
                if target is not None and kind_of(target) == "module":
                    walk(use["id"], path, visiting)
                continue
            if target is None:
                lines.add(f"use {path}::{use['name']} = {use['source']}")
                continue
            declare(target, use["id"], f"{path}::{use['name']}", visiting)
        else:
            declare(it, child, f"{path}::{it['name']}", visiting)


def declare(it, item_id, path, visiting):
    k = kind_of(it)
    inner = it["inner"][k]
    if k == "module":
        lines.add(f"mod {path}")
        walk(item_id, path, visiting)
    elif k == "function":
        lines.add(f"fn {signature(path, inner)}")
    elif k == "constant":
        lines.add(f"const {path}: {ty(inner['type'])}")
    elif k == "static":
        lines.add(f"static {path}: {ty(inner['type'])}")
    elif k == "type_alias":
        lines.add(f"type {path}{generics(inner['generics'])} = {ty(inner['type'])}")
    elif k in ("struct", "enum", "union", "trait"):
        attrs = " ".join(a for a in it.get("attrs", []) if isinstance(a, str) and "non_exhaustive" in a)
        lines.add(f"{k} {path}{generics(inner.get('generics', {}))}" + (f" #[{attrs}]" if attrs else ""))
        if k == "trait":
            for mid in inner["items"]:
                m = item(mid)
                if m is not None and kind_of(m) == "function":
                    lines.add(f"trait-method {signature(path + '::' + m['name'], m['inner']['function'])}")
        else:
            emit_type_members(path, it)
    elif k == "macro":
        lines.add(f"macro {path}")
    else:
        lines.add(f"{k} {path}")


walk(doc["root"], crate_name, frozenset())
if not lines:
    sys.exit("public-api.py: no public items found; refusing to write an empty API")
sys.stdout.write("".join(line + "\n" for line in sorted(lines)))
