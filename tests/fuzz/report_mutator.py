"""report_mutator - mutants of a result document, for mtasim report's reader.

Shared by the pytest check (tests/drivers/test_report_robustness.py, 300
seeded mutants) and the fuzzer (tests/fuzz/fuzz_report.py, a campaign):

* mutate(base, rng) - a deep copy of the document with 1 to 3 values, at
  paths chosen among all of its paths (containers included), replaced by
  NASTY values: wrong types, huge and negative numbers, a lone surrogate,
  markup, nesting;
* mutate_text(text, rng) - the serialized document cut, bytes flipped,
  spliced or duplicated: what a truncated or corrupted file looks like.
"""

import copy

NASTY = [None, True, 0, -1, 2 ** 63 - 1, -(2 ** 63), 1.5, "", "x", "\u202e<b>", "\ud800", [], {},
         [[[]]], {"a": {"b": 1}}, "999", "CONN_ERR_CONNECT", 10 ** 20, -0.0]


def paths_of(value, prefix=()):
    """Every (path tuple) inside value, containers included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, prefix + (i,))
    return out


def mutate(base, rng, paths=None):
    """A mutant of base (base itself is not changed)."""
    paths = paths or [p for p in paths_of(base) if p]
    doc = copy.deepcopy(base)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = copy.deepcopy(rng.choice(NASTY))
        except (KeyError, IndexError, TypeError):
            continue            # an earlier mutation changed the way there
    return doc


def mutate_text(text, rng):
    """Bytes of a serialized document, damaged."""
    data = bytearray(text)
    if not data:
        return bytes(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(data))
        if op == 0:
            del data[i:]                                        # truncated
        elif op == 1:
            data[i] = rng.randrange(256)                        # a flipped byte
        elif op == 2:
            j = rng.randrange(len(data))
            data[i:i] = data[j:j + rng.randint(1, 64)]          # spliced
        elif op == 3:
            data[i:i] = rng.choice([b"[" * 3000, b"\"\\ud800\"", b"1e999", b"\x00", b"{"])
        else:
            del data[i:i + rng.randint(1, 16)]
        if not data:
            break
    return bytes(data)
