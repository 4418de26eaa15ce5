"""Equal-preference MX hosts are ordered by the seed: every order occurs, each seed replays."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios/dns/mx-equal-preference.scn"


def first_host(mtasim, seed, tmp_path):
    out = subprocess.run([mtasim, "run", "--seed", str(seed), "--trace", "-", str(SCENARIO)],
                         capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if " conn open " in line:
            return line.split("dst=")[1].split(":")[0]
    raise AssertionError(f"seed {seed}: no connection opened\n{out.stdout}")


def test_both_orders_occur_and_replay(mtasim, tmp_path):
    picks = [first_host(mtasim, s, tmp_path) for s in range(1, 41)]
    counts = {h: picks.count(h) for h in set(picks)}
    assert set(counts) == {"198.51.100.31", "198.51.100.32"}, counts
    # 40 fair coin flips: each side between 10 and 30 with overwhelming probability.
    assert all(10 <= n <= 30 for n in counts.values()), counts
    assert [first_host(mtasim, s, tmp_path) for s in range(1, 11)] == picks[:10]
