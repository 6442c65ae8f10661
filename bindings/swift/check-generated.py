#!/usr/bin/env python3
"""Checks that uniffi's Swift output for sealpost-ffi is complete.

No Swift compiler can run on the test machines, so instead of compiling,
this checks what a compiler would trip over first: the three files exist,
the modulemap exposes the header, every FFI symbol the library exports is
declared in the header, every FFI symbol the Swift file calls is declared
there too, and the Swift file has each object, record, enum and the error.

Usage: check-generated.py GENERATED_DIR LIBRARY.so
"""

import re
import subprocess
import sys
from pathlib import Path

OBJECTS = ["Account", "PrekeyBundle", "Session", "Room", "Healer", "PickleKey", "SafetyNumber"]
RECORDS = ["SessionPolicy", "Outgoing", "AcceptedSession", "RoomAccepted"]
ENUMS = ["Suite", "Padding", "EnvelopeKind", "ErrorCode", "Incoming"]
FUNCTIONS = ["defaultPolicy", "envelopeKind", "isSessionReset", "suggestsDivergence"]


def fail(msg):
    print(f"swift check: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    out, lib = Path(sys.argv[1]), sys.argv[2]
    swift, header, modulemap = out / "Sealpost.swift", out / "SealpostFFI.h", out / "SealpostFFI.modulemap"
    for f in (swift, header, modulemap):
        if not f.is_file() or f.stat().st_size == 0:
            fail(f"{f.name} missing or empty")
    swift_src, header_src, map_src = swift.read_text(), header.read_text(), modulemap.read_text()

    if not re.search(r"module\s+SealpostFFI\b", map_src) or 'header "SealpostFFI.h"' not in map_src:
        fail("modulemap does not declare module SealpostFFI with SealpostFFI.h")
    if "import SealpostFFI" not in swift_src and "canImport(SealpostFFI)" not in swift_src:
        fail("Sealpost.swift does not import SealpostFFI")

    sym = re.compile(r"\b((?:uniffi|ffi)_sealpost_ffi_\w+)\b")
    declared = set(sym.findall(header_src))
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in nm.splitlines() if sym.search(line)}
    if not exported:
        fail("the library exports no uniffi symbols")
    missing = sorted(exported - declared)
    if missing:
        fail(f"{len(missing)} exported symbols not in the header, e.g. {missing[:3]}")
    called = set(sym.findall(swift_src))
    undeclared = sorted(called - declared)
    if undeclared:
        fail(f"Swift calls undeclared symbols {undeclared[:3]}")
    uncalled = sorted(s for s in exported - called if "_fn_" in s or "_checksum_" in s)
    if uncalled:
        fail(f"Swift never calls {uncalled[:3]}")

    for name in OBJECTS:
        if not re.search(rf"open class {name}\b|public class {name}\b", swift_src):
            fail(f"no class {name}")
    for name in RECORDS:
        if not re.search(rf"\bstruct {name}\b", swift_src):
            fail(f"no struct {name}")
    for name in ENUMS + ["SealpostError"]:
        if not re.search(rf"\benum {name}\b", swift_src):
            fail(f"no enum {name}")
    for name in FUNCTIONS:
        if not re.search(rf"public func {name}\(", swift_src):
            fail(f"no function {name}")
    print(f"swift check: {len(exported)} FFI symbols declared and used; "
          f"{len(OBJECTS)} classes, {len(RECORDS)} structs, {len(ENUMS) + 1} enums, {len(FUNCTIONS)} functions")


if __name__ == "__main__":
    main()
