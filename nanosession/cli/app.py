"""The typer application: one function per command, thin over ``Store`` and the helpers.

Every failure nanosession knows about becomes one ``error: ...`` line on stderr and exit
code 1 (2 for a wrong command line); ``--debug`` shows the traceback and the library's logs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from importlib import metadata
from typing import Annotated, Any

import typer
from loguru import logger
from rich.markup import escape

from nanosession.cli import render
from nanosession.cli.copy import FAILED, KEPT_NEWER, WRITES, copy_sessions, verify
from nanosession.cli.durations import parse_duration
from nanosession.cli.prune import DELETED, delete_unchanged, select
from nanosession.cli.render import Output
from nanosession.cli.stores import (
    ENV_URL,
    UsageProblem,
    open_url,
    require_url,
    url_and_keys,
)
from nanosession.errors import CorruptSessionError, NanosessionError
from nanosession.record import title_of
from nanosession.registry import default_registry
from nanosession.session import Session

app = typer.Typer(
    name="nanosession",
    help="Look at, repair, copy and prune LLM-agent sessions in any nanosession store.\n\n"
    f"URL is a directory, file://, s3://bucket/prefix or any fsspec URL; ${ENV_URL} "
    "gives a default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False

OptionList = Annotated[
    list[str],
    typer.Option("--option", "-o", metavar="NAME=VALUE",
                 help="Store option, as for open_store (repeatable), e.g. endpoint_url=..."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
UrlArg = Annotated[
    str | None,
    typer.Argument(metavar="URL", show_default=False,
                   help=f"Store URL (default: ${ENV_URL})."),
]
Targets = Annotated[list[str] | None, typer.Argument(metavar="[URL] KEY...", show_default=False)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nanosession {metadata.version('nanosession')}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """nanosession: sessions of LLM agents on any storage."""
    global _debug
    _debug = debug
    if debug:
        plugins = [ep.module.split(".")[0] for ep in metadata.entry_points(group="nanosession")]
        for name in ("nanosession", *plugins):
            logger.enable(name)


@contextmanager
def guard(out: Output) -> Iterator[None]:
    """Turn every failure into one line on stderr and an exit code; no tracebacks."""
    try:
        yield
    except typer.Exit:
        raise
    except UsageProblem as exc:
        out.error(f"{exc} (see --help)")
        raise typer.Exit(2) from None
    except typer.Abort:
        if not sys.stdin.isatty():
            out.err.print()  # a piped answer leaves the prompt without its newline
        out.error("aborted")
        raise typer.Exit(1) from None
    except BrokenPipeError:  # `nanosession ls | head`: the reader has gone, stop quietly
        _silence_stdout()
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        out.error("interrupted")
        raise typer.Exit(130) from None
    except NanosessionError as exc:
        if _debug:
            raise
        hint = ""
        if type(exc) is CorruptSessionError:
            hint = " ('nanosession repair' recovers what is intact)"
        out.error(f"{exc}{hint}")
        raise typer.Exit(1) from None
    except Exception as exc:
        if _debug:
            raise
        out.error(f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback)")
        raise typer.Exit(1) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with suppress(OSError, ValueError):  # not a real file (a test runner's buffer)
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# -- ls -------------------------------------------------------------------------------
@app.command("ls")
def ls(
    url: UrlArg = None,
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only keys starting with this.")]
    = "",
    limit: Annotated[int, typer.Option("--limit", "-n", min=0,
                                       help="Show at most N sessions (0: all).")] = 50,
    json_out: JsonFlag = False,
    option: OptionList = [],  # noqa: B006 (typer reads the default, never mutates it)
) -> None:
    """List sessions, newest first: key, updated, message count, title or preview."""
    out = Output()
    with guard(out):
        with open_url(require_url(url), option) as store:
            infos = store.list(prefix, limit=limit or None, details=True)
            total = len(infos)
            if limit and total == limit:
                total = len(store.list(prefix, details=False))
        if json_out:
            out.json([render.info_dict(i) for i in infos])
            return
        render.listing(out, infos)
        if not infos:
            out.note("no sessions" + (f" with prefix {prefix!r}" if prefix else ""))
        elif total > len(infos):
            out.note(f"showing {len(infos)} of {total} (--limit 0 shows all)")


# -- show -----------------------------------------------------------------------------
@app.command("show")
def show(
    targets: Annotated[list[str], typer.Argument(metavar="[URL] KEY", show_default=False)],
    history: Annotated[bool, typer.Option("--history",
                                          help="Show what get_history would send a model.")]
    = False,
    max_messages: Annotated[int, typer.Option(help="get_history's max_messages.")] = 120,
    max_tokens: Annotated[int, typer.Option(help="get_history's max_tokens (0: no budget).")]
    = 0,
    last: Annotated[int, typer.Option("--last", min=0, help="Only the last N messages.")] = 0,
    full: Annotated[bool, typer.Option("--full", help="Do not shorten long texts.")] = False,
    json_out: JsonFlag = False,
    option: OptionList = [],  # noqa: B006
) -> None:
    """Show one conversation: roles, timestamps, text, tool calls and results."""
    out = Output()
    with guard(out):
        if len(targets) > 2:
            raise UsageProblem("show takes one URL and one KEY")
        url, key = (targets[0], targets[1]) if len(targets) == 2 else (None, targets[0])
        with open_url(require_url(url), option) as store:
            record = store.load(key)
        if history:
            session = Session(key=record.key, messages=list(record.messages),
                              metadata=record.metadata, created_at=record.created_at,
                              updated_at=record.updated_at,
                              last_consolidated=record.last_consolidated)
            sent = session.get_history(max_messages=max_messages, max_tokens=max_tokens)
            if json_out:
                out.json(sent)
                return
            out.markup(f"[bold]{escape(record.key)}[/]: get_history sends "
                       f"{len(sent)} of {len(record.messages)} messages")
            out.line()
            render.conversation(out, sent, full=full)
            return
        if json_out:
            out.json(render.record_dict(record))
            return
        messages = list(record.messages)
        start = max(0, len(messages) - last) if last else 0
        title = title_of(record.metadata)
        out.markup(f"[bold]{escape(record.key)}[/]"
                   + (f"  {escape(title)}" if title else ""))
        out.line(f"created {render.when(record.created_at)} · updated "
                 f"{render.when(record.updated_at)} · {len(messages)} messages"
                 + (f" · {record.last_consolidated} consolidated"
                    if record.last_consolidated else ""), style="dim")
        out.line()
        if start:
            out.line(f"… {start} earlier message(s) (--last 0 shows all)", style="dim")
        render.conversation(out, messages[start:], consolidated=record.last_consolidated,
                            full=full, first_index=start)


# -- rm -------------------------------------------------------------------------------
@app.command("rm")
def rm(
    targets: Targets = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    option: OptionList = [],  # noqa: B006
) -> None:
    """Delete sessions (asks first unless --yes)."""
    out = Output()
    with guard(out):
        url, keys = url_and_keys(targets or [], need_keys=True)
        with open_url(url, option) as store:
            if not yes:
                shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5
                                               else "")
                typer.confirm(f"Delete {len(keys)} session(s) from {url}: {shown}?",
                              abort=True, err=True)
            failed = 0
            for key in keys:  # one bad key is reported and does not stop the others
                try:
                    deleted = store.delete(key)
                except NanosessionError as exc:
                    deleted, problem = False, str(exc)
                else:
                    problem = f"session {key!r} not found"
                if deleted:
                    out.line(f"deleted {key}")
                else:
                    failed += 1
                    out.error(problem)
        if failed:
            raise typer.Exit(1)


# -- repair ---------------------------------------------------------------------------
@app.command("repair")
def repair(
    targets: Annotated[list[str] | None, typer.Argument(metavar="[URL] [KEY...]",
                                                        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n",
                                          help="Only report; change nothing.")] = False,
    json_out: JsonFlag = False,
    option: OptionList = [],  # noqa: B006
) -> None:
    """Check sessions (all, or the KEYs) and repair the corrupt ones, keeping originals.

    With --dry-run the exit code is 1 when something needs repair.
    """
    out = Output()
    with guard(out):
        url, keys = url_and_keys(targets or [], need_keys=False)
        reports = []
        failed = 0
        with open_url(url, option) as store:
            keys = keys or [info.key for info in store.list(details=False)]
            for key in keys:  # one failure is reported and does not stop the others
                try:
                    reports.append(store.repair(key, dry_run=dry_run))
                except NanosessionError as exc:
                    failed += 1
                    out.error(str(exc))
        bad = [r for r in reports if not r.ok]
        if json_out:
            out.json([{"key": r.key, "problems": list(r.problems),
                       "messages_kept": r.messages_kept, "lines_dropped": r.lines_dropped,
                       "repaired": r.repaired, "backup": r.backup} for r in reports])
        else:
            for r in bad:
                verb = "repaired" if r.repaired else "would repair"
                out.markup(f"[bold yellow]{escape(r.key)}[/]: {verb}, keeping "
                           f"{r.messages_kept} message(s), dropping {r.lines_dropped} line(s)")
                for problem in r.problems:
                    out.line(f"  - {problem}")
                if r.backup:
                    out.line(f"  original kept at {r.backup}", style="dim")
            done = "need repair" if dry_run else "repaired"
            out.line(f"checked {len(reports)} session(s): {len(bad)} {done}")
        if failed or (dry_run and bad):
            raise typer.Exit(1)


# -- copy -----------------------------------------------------------------------------
@app.command("copy")
def copy(
    src_url: Annotated[str, typer.Argument(metavar="SRC_URL", show_default=False)],
    dst_url: Annotated[str, typer.Argument(metavar="DST_URL", show_default=False)],
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only keys starting with this.")]
    = "",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel copies.")] = 8,
    force: Annotated[bool, typer.Option("--force",
                                        help="Replace destination copies that are newer.")]
    = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n",
                                          help="Only say what would be copied.")] = False,
    check: Annotated[bool, typer.Option("--verify",
                                        help="Also compare every copied session's content.")]
    = False,
    json_out: JsonFlag = False,
    src_option: Annotated[list[str], typer.Option(
        "--src-option", "-s", metavar="NAME=VALUE", help="Source store option (repeatable).")]
    = [],  # noqa: B006
    dst_option: Annotated[list[str], typer.Option(
        "--dst-option", "-d", metavar="NAME=VALUE",
        help="Destination store option (repeatable).")] = [],  # noqa: B006
) -> None:
    """Copy every session from SRC_URL to DST_URL; re-runs copy only what is missing or newer.

    Never overwrites a newer destination copy without --force; verifies counts at the end.
    """
    out = Output()
    with (guard(out), open_url(src_url, src_option) as src,
          open_url(dst_url, dst_option, create=True) as dst):
        progress = _progress(out)
        task: list[Any] = []

        def started(total: int) -> None:
            if progress is not None:
                progress.start()
                task.append(progress.add_task("copying", total=total))

        def advanced(outcome: Any) -> None:
            if outcome.action == FAILED:
                out.error(f"{outcome.key}: {outcome.detail}")
            elif outcome.action == KEPT_NEWER and not json_out:
                out.note(f"kept newer destination copy of {outcome.key}")
            if progress is not None:
                progress.advance(task[0])

        try:
            report = copy_sessions(src, dst, prefix=prefix, jobs=jobs, force=force,
                                   dry_run=dry_run, on_start=started, on_item=advanced)
        finally:
            if progress is not None:
                progress.stop()
        if not dry_run:
            verify(src, dst, report, prefix=prefix, content=report.in_sync if check else (),
                   jobs=jobs)
        _copy_summary(out, report, dry_run=dry_run, json_out=json_out)
        if not report.ok:
            raise typer.Exit(1)


def _progress(out: Output) -> Any:
    if not out.err.is_terminal:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=out.err, transient=True)


def _copy_summary(out: Output, report: Any, *, dry_run: bool, json_out: bool) -> None:
    counts = {a: report.actions.get(a, 0) for a in (*WRITES, "unchanged", KEPT_NEWER, FAILED)}
    if json_out:
        out.json({"dry_run": dry_run, **counts,
                  "failures": [{"key": f.key, "error": f.detail} for f in report.failures],
                  "source_count": report.source_count,
                  "destination_count": report.destination_count,
                  "missing": report.missing, "mismatched": report.mismatched,
                  "verified_content": report.verified_content, "ok": report.ok})
        return
    lead = "would copy" if dry_run else "copy"
    out.line(f"{lead}: " + ", ".join(f"{n} {a}" for a, n in counts.items()))
    if dry_run:
        return
    out.line(f"verify: source {report.source_count}, destination {report.destination_count}, "
             f"missing {len(report.missing)}"
             + (f", content checked {report.verified_content}, differing "
                f"{len(report.mismatched)}" if report.verified_content else ""),
             style="green" if report.ok else "red")
    for key in report.missing[:10]:
        out.error(f"missing at destination: {key}")
    for key in report.mismatched[:10]:
        out.error(f"differs at destination: {key}")


# -- prune ----------------------------------------------------------------------------
@app.command("prune")
def prune(
    url: UrlArg = None,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="DURATION",
        help="Delete sessions not updated for this long (90s, 15m, 12h, 30d, 2w).")] = None,
    keep: Annotated[int | None, typer.Option("--keep", min=0,
                                             help="Keep only the N newest sessions.")] = None,
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only keys starting with this.")]
    = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n",
                                          help="Only list what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    json_out: JsonFlag = False,
    option: OptionList = [],  # noqa: B006
) -> None:
    """Delete whole sessions by age and/or count; a session updated meanwhile is kept."""
    out = Output()
    with guard(out):
        if older_than is None and keep is None:
            raise UsageProblem("give --older-than DURATION and/or --keep N")
        try:
            age = parse_duration(older_than) if older_than is not None else None
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
        with open_url(require_url(url), option) as store:
            infos = store.list(prefix, details=True)
            doomed, unreadable = select(infos, older_than=age, keep=keep,
                                        now=datetime.now().astimezone())
            for info in unreadable:
                out.note(f"skipping unreadable session {info.key} ({info.error}); "
                         "run 'nanosession repair'")
            results: list[tuple[str, str, str]] = []
            if not dry_run and doomed and not yes:
                typer.confirm(f"Delete {len(doomed)} of {len(infos)} session(s) from {url}?",
                              abort=True, err=True)
            for info in doomed:
                outcome, detail = ("would delete", "") if dry_run else delete_unchanged(
                    store, info)
                results.append((info.key, outcome, detail))
        if json_out:
            out.json([{"key": k, "result": r, "detail": d} for k, r, d in results])
        else:
            for key, outcome, detail in results:
                out.line(f"{outcome} {key}" + (f" ({detail})" if detail else ""))
            done = sum(r == DELETED for _, r, _ in results)
            verb = "would delete" if dry_run else "deleted"
            out.line(f"{verb} {len(doomed) if dry_run else done} of {len(infos)} session(s)")
        if any(r not in (DELETED, "would delete") for _, r, _ in results):
            raise typer.Exit(1)


# -- plugins --------------------------------------------------------------------------
@app.command("plugins")
def plugins(json_out: JsonFlag = False) -> None:
    """Installed backends and wrappers: schemes, versions, capabilities."""
    out = Output()
    with guard(out):
        registry = default_registry()
        versions = {p.name: p.version for p in registry.plugins()}
        backends = [
            {"scheme": e.scheme, "plugin": e.plugin, "version": versions.get(e.plugin),
             "fallback": e.fallback, "description": e.description,
             "capabilities": render.capability_names(e.capabilities)}
            for e in (*registry.backends.values(), *registry.fallbacks.values())
        ]
        wrappers = [
            {"name": w.name, "plugin": w.plugin, "version": versions.get(w.plugin),
             "description": w.description}
            for w in registry.wrappers.values()
        ]
        if json_out:
            out.json({"plugins": [{"name": p.name, "package": p.package, "version": p.version}
                                  for p in registry.plugins()],
                      "backends": backends, "wrappers": wrappers})
            return
        fallback_rows = [b for b in backends if b["fallback"]]
        rows = [b for b in backends if not b["fallback"]]
        if len(fallback_rows) > 3:  # fsspec answers dozens of protocols: one summary row
            names = sorted(b["scheme"] for b in fallback_rows)
            rows.append({**fallback_rows[0], "scheme": "(fallback)",
                         "description": f"{len(names)} protocols: {', '.join(names[:8])}, …"})
        else:
            rows += fallback_rows
        if out.rich:
            for b in rows:
                out.markup(f"[bold]{escape(b['scheme'])}[/]  [cyan]{escape(b['plugin'])}[/] "
                           f"[dim]{escape(b['version'] or '')}[/]  {escape(b['description'])}")
                out.line("    " + (" · ".join(b["capabilities"]) or "no guarantees claimed"),
                         style="green" if b["capabilities"] else "dim")
        else:
            out.table((), [(b["scheme"], b["plugin"], b["version"] or "-",
                            " ".join(b["capabilities"]) or "-", b["description"])
                           for b in rows])
        idle = [p for p in registry.plugins()
                if not (p.schemes or p.fallback_schemes or p.wrappers)]
        for p in idle:
            out.note(f"plugin {p.name} {p.version or ''} is loaded but registers nothing")
        if wrappers:
            out.line()
            out.table(("WRAPPER", "PLUGIN", "VERSION", "DESCRIPTION"),
                      [(w["name"], w["plugin"], w["version"] or "-", w["description"])
                       for w in wrappers], ("bold", "cyan", "dim", None))


# -- demo -----------------------------------------------------------------------------
@app.command("demo")
def demo(
    directory: Annotated[str | None, typer.Argument(
        metavar="[DIR]", show_default=False,
        help="Where to write the demo sessions (default: a fresh temporary directory).")]
    = None,
) -> None:
    """A guided tour on the embedded default backend (JSONL files in a directory)."""
    from nanosession.cli.demo import tour

    out = Output()
    with guard(out):
        tour(out, directory)


def run() -> None:
    """Run the application (the console script)."""
    app(prog_name="nanosession")

