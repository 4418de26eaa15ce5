"""The generated hook reference in docs/ matches the hook table."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_hooks_md_matches_table(tmp_path):
    out = tmp_path / "hooks.md"
    subprocess.run([sys.executable, str(ROOT / "core/hooks/gen_hooks.py"),
                    str(ROOT / "core/hooks/hooks.table"), "--docs", str(out)], check=True)
    committed = (ROOT / "docs/hooks.md").read_text()
    assert committed == out.read_text(), (
        "docs/hooks.md is out of date: regenerate it with\n"
        "  python3 core/hooks/gen_hooks.py core/hooks/hooks.table --docs docs/hooks.md")
