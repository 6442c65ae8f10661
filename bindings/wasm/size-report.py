#!/usr/bin/env python3
"""What the WebAssembly module's size is made of: code bytes per crate (from
the function bodies and the name section of a module that still has its
names, as wasm-bindgen writes it before wasm-opt), data segments and the
rest. Usage: size-report.py MODULE.wasm [TOP]"""

import re
import sys
from collections import Counter


def leb(buf, i):
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def sections(buf):
    if buf[:4] != b"\0asm":
        raise SystemExit("not a wasm module")
    i = 8
    while i < len(buf):
        sid = buf[i]
        size, j = leb(buf, i + 1)
        yield sid, buf[j : j + size]
        i = j + size


def main():
    buf = open(sys.argv[1], "rb").read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    imported = 0
    bodies = []
    names = {}
    by_section = Counter()
    for sid, body in sections(buf):
        if sid == 0:
            nlen, k = leb(body, 0)
            cname = body[k : k + nlen].decode()
            by_section[f"custom:{cname}"] += len(body)
            if cname == "name":
                k += nlen
                while k < len(body):
                    sub = body[k]
                    size, k = leb(body, k + 1)
                    if sub == 1:
                        count, m = leb(body, k)
                        for _ in range(count):
                            idx, m = leb(body, m)
                            ln, m = leb(body, m)
                            names[idx] = body[m : m + ln].decode(errors="replace")
                            m += ln
                    k += size
            continue
        by_section[{1: "type", 2: "import", 3: "function", 5: "memory", 6: "global", 7: "export",
                    10: "code", 11: "data"}.get(sid, f"section {sid}")] += len(body)
        if sid == 2:
            count, k = leb(body, 0)
            for _ in range(count):
                for _ in range(2):
                    ln, k = leb(body, k)
                    k += ln
                kind = body[k]
                k += 1
                if kind == 0:
                    imported += 1
                    _, k = leb(body, k)
                elif kind == 1:
                    k += 1
                    flags, k = leb(body, k)
                    _, k = leb(body, k)
                    if flags & 1:
                        _, k = leb(body, k)
                elif kind == 2:
                    flags, k = leb(body, k)
                    _, k = leb(body, k)
                    if flags & 1:
                        _, k = leb(body, k)
                elif kind == 3:
                    k += 2
        if sid == 10:
            count, k = leb(body, 0)
            for n in range(count):
                size, k = leb(body, k)
                bodies.append((imported + n, size))
                k += size
    crates = Counter()
    for idx, size in bodies:
        name = names.get(idx, "?")
        # `<T as crate::Trait>::f` counts for T's crate; `crate::path::f` for its first segment.
        m = re.match(r"^<?(?:&(?:mut )?)?(?:\[)?([A-Za-z_][A-Za-z0-9_]*)", name)
        crates[m.group(1) if m else "?"] += size
    total = len(buf)
    print(f"{total} bytes ({total // 1024} KiB) in all")
    for sec, size in by_section.most_common():
        print(f"  {sec:28} {size:8} bytes {100 * size / total:5.1f}%")
    code = sum(s for _, s in bodies)
    print(f"code by crate (function bodies, {code // 1024} KiB, before wasm-opt):")
    for crate, size in crates.most_common(top):
        print(f"  {crate:28} {size:8} bytes {100 * size / code:5.1f}%")


if __name__ == "__main__":
    main()
