#!/usr/bin/env python3
"""Mechanical subset of Telnyx's OpenAPI document (spec3.yml) for the simulator's conformance suite.

Usage: python3 extract_subset.py <spec3.yml> <out.json>   (needs PyYAML)

Selects the operations in OPERATIONS, copies them and every component they reference (transitively)
unmodified, keeps openapi/info/servers/security, and writes sorted JSON. Only the selection is ours.
"""

import json
import sys

import yaml

# (path, method) pairs served by the simulator beyond `telnyx-call-control.subset.json`.
OPERATIONS = [
    ("/recordings/{recording_id}", "get"),
    ("/ai/audio/transcriptions", "post"),
]


def refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    paths = {}
    for path, method in OPERATIONS:
        paths.setdefault(path, {})[method] = spec["paths"][path][method]
    components = {}
    pending = []
    refs(paths, pending)
    seen = set()
    while pending:
        r = pending.pop()
        if r in seen:
            continue
        seen.add(r)
        kind, name = r.removeprefix("#/components/").split("/", 1)
        node = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        refs(node, pending)
    security = spec.get("security")
    for entry in security or []:
        for scheme in entry:
            components.setdefault("securitySchemes", {})[scheme] = spec["components"]["securitySchemes"][scheme]
    out = {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "security": security,
        "paths": paths,
        "components": components,
    }
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
