#!/usr/bin/env python3
"""check_layout - every #include points down a layer; no source file is too long

usage: check_layout.py [ROOT]

The layers of mtasim, bottom first (docs/architecture.md).  A C file or
header may include headers of its own layer and of the layers below it,
never of a layer above: that is what lets each layer build as a static
library that links only what is below it.

Also checked:
  - a header named *_internal.h is included only from its own directory
    (it is one module's private header: parse_internal.h, remote_internal.h)
  - the core's private headers (CORE_PRIVATE) are included only by the core
  - a "name.h" include names exactly one header of the tree (headers are
    included by name, so two headers of one name would be ambiguous)
  - every directory holding C sources is in LAYERS (a new one must be
    placed in the order)
  - no .c or .h file in core/, sim/ or live/ is longer than MAX_LINES

Prints one line per violation, "path:line: what", and exits 1; exits 0 with
a one-line summary when everything holds.  Standard library only: it runs
under meson test (suite "layout") and tests/drivers/test_layout.py shows it
catches what it must.
"""
import os
import re
import sys

# Bottom first.  A directory's rank is its index; the rank of a file is the
# rank of its directory.
LAYERS = [
    "core/util",        # generic utilities: include nothing of mtasim's
    "core/include",     # the public plugin API (declarations only)
    "core/hooks",       # the hook catalogue: table, generator, registry
    "core",             # the MTA core; mta.h and mq.h are its interface to sim/
    "sim/trace",        # the trace: records, text, digest, summaries
    "sim/scenario",     # the scenario as data
    "sim/world",        # the simulated world and the core's environment on it
    "sim/pcap",         # packet captures: writer, importer
    "sim/lang",         # the scenario language: parser, expectations
    "sim/run",          # one run: runner, plugins, results, isolation, faketime
    "live",             # the live environment, mtasim live and serve
    "sim/cmd",          # the commands: the mtasim CLI, bench, report
]

# Headers of the core that only the core itself may include.
CORE_PRIVATE = {"core/mta_internal.h", "core/trace.h", "core/smtp_reply.h",
                "core/smtp_server.h", "core/smtp_data.h"}

# Generated at build time from core/hooks/hooks.table: hooks/core/NAME.h
# lives under core/include in the build tree.
GENERATED = {"hooks/core/": "core/include"}

MAX_LINES = 1500
CHECKED_TOPS = ("core", "sim", "live")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    """The layer directory of a path relative to the root, or None."""
    d = os.path.dirname(rel)
    while d:
        if d in LAYERS:
            return d
        d = os.path.dirname(d)
    return None


def sources(root):
    """Every .c and .h under the checked top-level directories, sorted."""
    out = []
    for top in CHECKED_TOPS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def check(root):
    """The violations found under root, as "path:line: what" strings."""
    problems = []
    files = sources(root)
    fileset = set(files)
    headers = {}
    for rel in files:
        if rel.endswith(".h"):
            headers.setdefault(os.path.basename(rel), []).append(rel)
    rank = {d: i for i, d in enumerate(LAYERS)}
    nincludes = 0
    longest = (0, "")
    for rel in files:
        layer = layer_of(rel)
        if layer is None or (rel.endswith(".c") and os.path.dirname(rel) not in LAYERS):
            problems.append(f"{rel}:1: directory {os.path.dirname(rel)}/ is not a layer: "
                            f"place it in LAYERS of tests/layout/check_layout.py")
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        n = len(lines) - 1 if lines[-1] == "" else len(lines)
        longest = max(longest, (n, rel))
        if n > MAX_LINES:
            problems.append(f"{rel}:{n}: {n} lines, more than {MAX_LINES}: split it along "
                            f"a seam (one concern per file)")
        for lineno, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            nincludes += 1
            name = m.group(1)
            target = None
            for prefix, gen_layer in GENERATED.items():
                if name.startswith(prefix):
                    target = gen_layer + "/" + name
            if target is None:
                local = os.path.normpath(os.path.join(os.path.dirname(rel), name))
                if local in fileset:
                    target = local
                else:
                    found = headers.get(os.path.basename(name), [])
                    if len(found) > 1:
                        problems.append(f"{rel}:{lineno}: \"{name}\" is ambiguous: "
                                        f"{', '.join(found)}")
                        continue
                    if not found:
                        problems.append(f"{rel}:{lineno}: \"{name}\" is no header of the tree")
                        continue
                    target = found[0]
            tlayer = layer_of(target)
            if rank[tlayer] > rank[layer]:
                problems.append(f"{rel}:{lineno}: includes \"{name}\" ({target}): {tlayer}/ "
                                f"is a layer above {layer}/")
            elif target in CORE_PRIVATE and layer != "core":
                problems.append(f"{rel}:{lineno}: includes \"{name}\", private to core/")
            elif (os.path.basename(target).endswith("_internal.h")
                    and os.path.dirname(target) != os.path.dirname(rel)):
                problems.append(f"{rel}:{lineno}: includes \"{name}\", the private header "
                                f"of {os.path.dirname(target)}/")
    return problems, len(files), nincludes, longest


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    problems, nfiles, nincludes, (nlong, long_rel) = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"layout: {len(problems)} problem(s) in {nfiles} files "
              f"(layers, bottom first: {' < '.join(LAYERS)})")
        return 1
    print(f"layout: {nfiles} files, {nincludes} includes, every one down or level; "
          f"longest {long_rel} ({nlong} lines, limit {MAX_LINES})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
