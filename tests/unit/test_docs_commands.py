"""The commands the README, CONTRIBUTING.md and the docs site show exist, as they are shown.

Every ``bash`` block is read as the shell would split it (continued lines joined, comments and
here-documents left out, pipes and lists split into their commands). Each ``make`` command must
name the Makefile's own targets and variables, and each ``lcp`` command a command of the
command line's tree with that command's options (``lcp --help`` walks the same tree).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main

from lead_conversion_prediction.cli import app
from lead_conversion_prediction.config import PROJ_ROOT

README = PROJ_ROOT / "README.md"
PAGES = [README, PROJ_ROOT / "CONTRIBUTING.md", *sorted((PROJ_ROOT / "docs").rglob("*.md"))]
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)
HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}
REDIRECTIONS = {">", ">>", "<", "<<", ">&", "&>"}
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
MAKEFILE = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8")
README_LINES = 250


def shown_commands(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each simple command of the page's bash blocks, with the line of its block."""
    text = path.read_text(encoding="utf-8")
    for block in BASH_BLOCK.finditer(text):
        line = text.count("\n", 0, block.start()) + 1
        source, heredoc_end = [], None
        for each in block[1].replace("\\\n", " ").splitlines():
            if heredoc_end is not None:
                heredoc_end = None if each.strip() == heredoc_end else heredoc_end
                continue
            if found := HEREDOC.search(each):
                heredoc_end = found[1]
            source.append(each)
        pending = ""
        for each in source:  # a line ends its command, unless a quote is still open
            pending += each
            try:
                tokens = split(pending)
            except ValueError:  # a quoted string going on to the next line
                pending += "\n"
                continue
            pending, redirected = "", False
            command: list[str] = []
            for token in [*tokens, ";"]:
                if token in SEPARATORS:
                    if command:
                        yield line, command
                    command = []
                elif token in REDIRECTIONS or redirected:
                    redirected = not redirected  # the operator, then its file: no argument
                else:
                    command.append(token)


def split(source: str) -> list[str]:
    """A shell line's words and operators, its comment left out."""
    lexer = shlex.shlex(source, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split, lexer.commenters = True, "#"
    return list(lexer)


def runs(command: list[str]) -> tuple[str, list[str]] | None:
    """The program a command runs (``make`` or ``lcp``) and its arguments; None for others."""
    while command and ASSIGNMENT.match(command[0]):
        command = command[1:]  # VARIABLE=value before the program: its environment
    if command and command[0] in ("make", "lcp"):
        # `[NAME=value]` marks an optional argument, as `make help` writes them.
        return command[0], [re.sub(r"^\[(.*)\]$", r"\1", arg) for arg in command[1:]]
    return None


def every_shown(program: str) -> list[tuple[str, list[str]]]:
    return [
        (f"{path.relative_to(PROJ_ROOT)}:{line}", ran[1])
        for path in PAGES
        for line, command in shown_commands(path)
        if (ran := runs(command)) and ran[0] == program
    ]


@cache
def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", MAKEFILE, flags=re.MULTILINE))


@cache
def make_variables() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*) *[?:]?=", MAKEFILE, flags=re.MULTILINE))


def make_problems(args: list[str]) -> list[str]:
    problems = []
    for arg in args:
        name, is_variable, _ = arg.partition("=")
        if is_variable and name not in make_variables():
            problems.append(f"no variable {name} in the Makefile")
        elif not is_variable and arg not in make_targets():
            problems.append(f"no target {arg!r} in the Makefile")
    return problems


def options_of(command: Any) -> dict[str, Any]:
    """A command's options by each of their names (Typer's own click: read by duck typing)."""
    found: dict[str, Any] = {}
    for parameter in command.params:
        if parameter.param_type_name == "option":
            found.update(dict.fromkeys([*parameter.opts, *parameter.secondary_opts], parameter))
    return found


def lcp_problems(args: list[str]) -> list[str]:
    """What of ``lcp <args>`` the command line does not have: a command or an option."""
    command: Any = typer.main.get_command(app)
    path, arguments = "lcp", 0
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("-") and arg != "-":
            name, has_value, _ = arg.partition("=")
            option = options_of(command).get(name)
            if name == "--help":
                continue
            if option is None:
                return [f"`{path}` has no option {name}"]
            if not has_value and not option.is_flag:
                index += 1  # the option's value
        elif hasattr(command, "commands"):  # a group: the argument names its command
            if arg not in command.commands:
                return [f"`{path}` has no command {arg!r}"]
            command, path = command.commands[arg], f"{path} {arg}"
        else:
            arguments += 1
            takes = [each for each in command.params if each.param_type_name == "argument"]
            if arguments > len(takes):
                return [f"`{path}` takes no argument {arg!r}"]
    if hasattr(command, "commands"):
        return [f"`{path}` names no command"]
    return []


@pytest.mark.parametrize("program", ["make", "lcp"])
def test_every_command_the_pages_show_exists(program: str) -> None:
    shown = every_shown(program)
    assert len(shown) >= 10, f"the pages show too few {program} commands: is the parser right?"
    check = make_problems if program == "make" else lcp_problems
    problems = [
        f"{where}: {program} {shlex.join(args)}: {problem}"
        for where, args in shown
        for problem in check(args)
    ]
    assert problems == []


def test_the_checks_catch_a_missing_command_option_target_or_variable() -> None:
    assert lcp_problems(["predict", "-i", "-", "-o", "-", "--top", "10"]) == []
    assert lcp_problems(["--debug", "validate", "--model", "models/model.pkl"]) == []
    assert lcp_problems(["pipeline", "--promote"]) == []
    assert lcp_problems(["predict", "--no-such-option"]) == [
        "`lcp predict` has no option --no-such-option"
    ]
    assert lcp_problems(["no-such-command"]) == ["`lcp` has no command 'no-such-command'"]
    assert lcp_problems(["champion", "extra"]) == ["`lcp champion` takes no argument 'extra'"]
    assert make_problems(["pipeline", "DVC_REMOTE=../shared/dvc-remote"]) == []
    assert make_problems(["no-such-target", "NO_SUCH=1"]) == [
        "no target 'no-such-target' in the Makefile",
        "no variable NO_SUCH in the Makefile",
    ]


def test_commands_are_read_as_the_shell_splits_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\n"
        "cat leads.csv | lcp predict -i - -o - > scores.csv   # stdin and stdout\n"
        "LCP_TRACKING_PORT=5000 make tracking-server && lcp champion\n"
        "lcp validate --x a.csv \\\n    --y b.csv\n"
        "python - <<'PY'\nmake this-is-python\nPY\n"
        "```\n"
        "make not-in-a-block\n",
        encoding="utf-8",
    )
    shown = [runs(command) for _, command in shown_commands(page)]
    assert [ran for ran in shown if ran] == [
        ("lcp", ["predict", "-i", "-", "-o", "-"]),
        ("make", ["tracking-server"]),
        ("lcp", ["champion"]),
        ("lcp", ["validate", "--x", "a.csv", "--y", "b.csv"]),
    ]


def test_the_readme_is_short_and_lists_every_make_target() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_LINES
    section = text.split("## The make targets", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z][a-z0-9-]*)`", section)) - {"lcp"}
    documented = set(re.findall(r"^## .*\n([a-z-]+):", MAKEFILE, flags=re.MULTILINE))
    assert listed == documented


def test_every_mlflow_ui_link_opens_the_runs_table() -> None:
    """MLflow 3 opens an experiment's GenAI view unless the link asks for the runs table."""
    links = [
        link
        for path in PAGES
        for link in re.findall(r"#/experiments/\S*", path.read_text(encoding="utf-8"))
    ]
    assert links
    for link in links:
        assert re.fullmatch(r"#/experiments/[^/\s]+/runs\?workflowType=machine_learning", link)
