"""An independent reference for sim/world/prng.c.

prng.h spells out how a stream is derived from (seed, purpose, index) and
that the generator is xoshiro256** seeded through splitmix64.  This module
implements the same from that description in Python, reads the KNOWN_*
arrays (with their keys from the comment above each) out of
tests/unit/test_prng.c, and recomputes every value, so the C test's
expectations are checked by a second implementation.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fnv1a(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & M64
    return h


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


def xoshiro_step(s):
    """One xoshiro256** step: advance the state list s, return the output."""
    result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
    t = (s[1] << 17) & M64
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 45)
    return result


def stream(seed, purpose, index):
    """Yield the outputs of the stream (seed, purpose, index)."""
    key = mix(mix((seed + GOLDEN) & M64) ^ fnv1a(purpose))
    key = mix(key ^ mix((index + GOLDEN) & M64))
    s = []
    for _ in range(4):
        key = (key + GOLDEN) & M64
        s.append(mix(key))
    while True:
        yield xoshiro_step(s)


KNOWN = re.compile(
    r'/\* (KNOWN_\w+): seed (\d+), purpose "([^"]*)", index (\d+) \*/\s*'
    r'static const uint64_t \1\[\] = \{(.*?)\};', re.S)


def known_arrays():
    text = (ROOT / "tests/unit/test_prng.c").read_text()
    found = KNOWN.findall(text)
    assert found, "no KNOWN_* arrays in tests/unit/test_prng.c"
    return found


@pytest.mark.parametrize("name,seed,purpose,index,values", known_arrays(),
                         ids=[k[0] for k in known_arrays()])
def test_known_values_match_reference(name, seed, purpose, index, values):
    expected = [int(v.strip().rstrip("ULL"), 16) for v in values.split(",") if v.strip()]
    gen = stream(int(seed), purpose, int(index))
    assert [next(gen) for _ in expected] == expected, name


def test_xoshiro_published_vector():
    """The reference's generator step itself, against the published vector."""
    s = [1, 2, 3, 4]
    assert [xoshiro_step(s) for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]
