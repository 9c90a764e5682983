"""Meta-tests that keep docs/plugins.md and the hook tests honest.

- every hook of ``nanosession.hookspecs`` has a ``### <hook>`` section in docs/plugins.md
  that names each of its arguments and says whether it is firstresult, and no section
  documents a hook that does not exist;
- every hook has a ``test_hook_<hook>`` test function somewhere under tests/;
- a new plugin author can follow the guide: its code blocks, written to files exactly as
  shown, give a backend that registers and passes the conformance suite.

The checkers are plain functions, tested on mutated inputs too, so a meta-test that always
passes would itself fail.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

import nanosession.registry
from nanosession import SessionRecord, open_store
from nanosession.hookspecs import PROJECT, RegistrationSpecs, StorageSpecs, hook_names
from nanosession.registry import Registry

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "plugins.md"
TESTS = ROOT / "tests"
_HEADING = re.compile(r"^(#{1,6}) +(.*?) *$", re.M)
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
_FILE = re.compile(r"# (\S+\.(?:py|toml))\b")


def _spec(hook: str) -> tuple[inspect.Signature, bool]:
    """The hook's documented signature and whether it is firstresult."""
    for specs in (RegistrationSpecs, StorageSpecs):
        if hook in vars(specs):
            function = vars(specs)[hook]
            opts = getattr(function, f"{PROJECT}_spec")
            return inspect.signature(function), bool(opts.get("firstresult"))
    raise KeyError(hook)


def sections(doc: str) -> dict[str, str]:
    """``### title`` -> the text up to the next heading of level 3 or higher."""
    out: dict[str, str] = {}
    heads = list(_HEADING.finditer(doc))
    for i, head in enumerate(heads):
        if len(head.group(1)) != 3:
            continue
        end = next((h.start() for h in heads[i + 1:] if len(h.group(1)) <= 3), len(doc))
        out[head.group(2).strip("`")] = doc[head.end():end]
    return out


def doc_problems(doc: str) -> list[str]:
    """What is missing or wrong in the hook reference of ``doc``."""
    found = sections(doc)
    problems = []
    for hook in hook_names():
        body = found.get(hook)
        if body is None:
            problems.append(f"no '### {hook}' section")
            continue
        signature, firstresult = _spec(hook)
        for name in signature.parameters:
            if name != "self" and not re.search(rf"`[^`]*\b{name}\b", body):
                problems.append(f"{hook}: argument {name!r} is not documented")
        says_not = bool(re.search(r"\bnot\b\**\s+firstresult", body))
        if "firstresult" not in body or says_not == firstresult:
            problems.append(f"{hook}: must say it is {'' if firstresult else 'not '}firstresult")
    problems += [f"section for unknown hook {title!r}" for title in found
                 if title.startswith("nanosession_") and title not in hook_names()]
    return problems


def defined_tests(sources: dict[str, str]) -> set[str]:
    """Names of the test functions and methods in ``{path: source}``."""
    names: set[str] = set()
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source, path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.name.startswith("test_"):
                names.add(node.name)
    return names


def untested_hooks(sources: dict[str, str]) -> list[str]:
    names = defined_tests(sources)
    return [hook for hook in hook_names() if f"test_hook_{hook}" not in names]


def _test_sources() -> dict[str, str]:
    return {str(p): p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py")}


def doc_files(doc: str) -> dict[str, str]:
    """Code blocks whose first line is ``# <file name>``, joined per file in order."""
    files: dict[str, str] = {}
    for _, body in _BLOCK.findall(doc):
        match = _FILE.match(body)
        if match:
            files[match.group(1)] = files.get(match.group(1), "") + body
    return files


# -- the meta-tests ---------------------------------------------------------------------------
def test_every_hook_has_a_correct_docs_section() -> None:
    assert doc_problems(DOC.read_text(encoding="utf-8")) == []


def test_every_hook_has_a_test() -> None:
    assert untested_hooks(_test_sources()) == []


def test_the_checkers_catch_omissions() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for hook in hook_names():
        body = sections(doc)[hook]
        without = doc.replace(f"### {hook}{body}", "")
        assert without != doc
        assert f"no '### {hook}' section" in doc_problems(without)
    wrong = doc.replace("`nanosession_save(record, mode, unchanged, durable) -> str`, firstresult.",
                        "`nanosession_save(record, mode, durable) -> str`, not firstresult.")
    assert {p for p in doc_problems(wrong) if p.startswith("nanosession_save")} == {
        "nanosession_save: must say it is firstresult"}
    stale = doc + "\n### nanosession_frobnicate\n\nGone.\n"
    assert doc_problems(stale) == ["section for unknown hook 'nanosession_frobnicate'"]
    sources = _test_sources()
    hooks_file = str(TESTS / "plugins" / "test_hooks.py")
    for hook in hook_names():
        cut = {**sources, hooks_file: sources[hooks_file].replace(f"def test_hook_{hook}(",
                                                                  "def test_other(")}
        assert untested_hooks(cut) == [hook]


def test_a_new_backend_following_only_the_docs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = doc_files(DOC.read_text(encoding="utf-8"))
    assert {"nanosession_dict.py", "test_dict_backend.py", "pyproject.toml", "timing.py"} <= set(
        files)
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads(files["pyproject.toml"])["project"]
        assert project["entry-points"]["nanosession"] == {"dict": "nanosession_dict"}
    for name, text in files.items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    pytester.syspathinsert()
    module = importlib.import_module("nanosession_dict")  # as the entry point would load it
    registry = Registry()
    registry.add_plugin(module, "dict")
    assert registry.backends["dict"].capabilities == module.DictBackend.capabilities
    monkeypatch.setattr(nanosession.registry, "_default", registry)  # as if pip-installed

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "test_dict_backend.py")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 60, outcomes

    timing = importlib.import_module("timing").Timing()
    with open_store("dict://timed", wrappers=[timing]) as store:
        store.save(SessionRecord("k", [{"role": "user", "content": "hi"}]))
        store.save(store.load("k"))
    assert timing.saves == 2 and timing.seconds > 0
