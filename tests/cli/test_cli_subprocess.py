"""The real console entry point in a subprocess (piped, as in a script) on the local backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_helpers import one_error_line, run_cli

from nanosession import open_store


def test_piped_listing_is_plain_text(sample: Path) -> None:
    result = run_cli("ls", str(sample))
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert [line.split("\t")[2] for line in result.stdout.splitlines()] == [
        "telegram:1", "cli:direct", "old:one"]


def test_every_command_end_to_end(sample: Path, tmp_path: Path) -> None:
    shown = run_cli("show", str(sample), "telegram:1")
    assert shown.returncode == 0 and "→ lookup" in shown.stdout
    history = run_cli("show", "telegram:1", "--history", "--json",
                      env={"NANOSESSION_URL": str(sample)})
    assert history.returncode == 0, history.stderr
    assert [m["role"] for m in json.loads(history.stdout)] == [
        "user", "assistant", "tool", "assistant"]
    dst = tmp_path / "dst"
    copied = run_cli("copy", str(sample), f"file://{dst}", "--verify", "--json")
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["copied"] == 3
    repaired = run_cli("repair", str(dst))
    assert repaired.returncode == 0 and "checked 3 session(s): 0 repaired" in repaired.stdout
    pruned = run_cli("prune", str(dst), "--keep", "2", "--yes")
    assert pruned.returncode == 0 and "deleted old:one" in pruned.stdout
    removed = run_cli("rm", str(dst), "cli:direct", input="y\n")
    assert removed.returncode == 0 and "deleted cli:direct" in removed.stdout
    assert [i.key for i in open_store(str(dst)).list()] == ["telegram:1"]
    plugins = run_cli("plugins")
    assert plugins.returncode == 0 and plugins.stdout.startswith("file\tlocal\t")


def test_errors_are_one_line_and_debug_shows_the_traceback(sample: Path) -> None:
    missing = run_cli("show", str(sample), "ghost")
    assert missing.returncode == 1
    assert one_error_line(missing.stderr) == "error: session 'ghost' not found"
    bad = run_cli("ls", "nosuch://x")
    assert bad.returncode == 1 and "no backend for scheme" in one_error_line(bad.stderr)
    debug = run_cli("--debug", "show", str(sample), "ghost")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    usage = run_cli("ls", str(sample), "--limit", "-3")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_demo_without_a_directory_uses_a_fresh_temporary_one(tmp_path: Path) -> None:
    result = run_cli("demo", env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    (made,) = [p for p in tmp_path.iterdir() if p.name.startswith("nanosession-demo-")]
    assert str(made) in result.stdout.splitlines()[0]
    assert len(open_store(str(made)).list()) == 3


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("nanosession ")


def test_without_typer_main_prints_the_install_hint() -> None:
    code = "import sys; sys.modules['typer'] = None\nfrom nanosession.cli import main\nmain()"
    result = subprocess.run([sys.executable, "-c", code, "ls"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        "error: the nanosession command needs typer: pip install 'nanosession[cli]'")
