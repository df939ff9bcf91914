"""The runbooks and operator docs against the code: sections, commands, health values and
portable shell."""

from __future__ import annotations

import re
import shlex
import typing
from pathlib import Path

import click
import pytest

from cortiware import health
from cortiware.cli import main as cortiware_cli

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted(p for p in (ROOT / "runbooks").glob("*.md") if p.name != "README.md")
OPERATOR_DOCS = [*RUNBOOKS, ROOT / "runbooks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SECTIONS = (
    "Meaning",
    "Impact",
    "Diagnosis",
    "Mitigation",
    "Rollback",
    "Verification",
    "Escalation",
)

# `cortiware …` where a shell command starts (line start, after && ; | $( or ECS Exec's
# --command "), up to the end of the line, a pipe or a shell operator.
CORTIWARE = re.compile(
    r"(?:^|&&|\|\||;|\$\(|--command \")[ \t]*cortiware((?: +[^\s`|;&)\"']+)+)", re.M
)
MAKE = re.compile(r"(?<![\w/.-])make ((?:[a-z][\w-]*(?: |$|`))+)")
GNU_ONLY = {
    "date -d": r"\bdate\b[^\n|]*\s-d\b",
    "date --date": r"\bdate\b[^\n|]*--date\b",
    "sed -i": r"\bsed\s+-i\b",
    "grep -P": r"\bgrep\s+(?:-\w*P)",
    "xargs -r": r"\bxargs\s+-r\b",
    "readlink -f": r"\breadlink\s+-f\b",
    "stat -c": r"\bstat\s+-c\b",
    "base64 -w": r"\bbase64\s+-w\b",
    "sort -V": r"\bsort\s+-V\b",
    "head -n -N": r"\bhead\s+-n\s+-\d",
}


def code_of(path: Path) -> str:
    """The text of every fenced block and inline code span of a Markdown file, one per line."""
    text = path.read_text()
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join([*fenced, *inline])


def cortiware_commands() -> list[tuple[str, list[str]]]:
    """(file, argv) of every `cortiware …` command the operator docs name."""
    found = []
    for path in OPERATOR_DOCS:
        for line in code_of(path).replace("\\\n", " ").splitlines():
            for match in CORTIWARE.finditer(line):
                words = shlex.split(match.group(1).replace("<", "").replace(">", ""), posix=True)
                if any(w.endswith(":") for w in words[:3]):
                    continue  # a quoted log line (`cortiware integration backend: …`)
                if words[0] == "cortiware":
                    continue  # infra.md's example of the usage error `cortiware cortiware seed`
                found.append((path.name, words))
    return found


def make_targets_named() -> set[tuple[str, str]]:
    """(file, target) of every `make TARGET` the operator docs name."""
    found = set()
    for path in OPERATOR_DOCS:
        for match in MAKE.finditer(code_of(path)):
            for word in match.group(1).split():
                if word.strip("`") and "=" not in word:
                    found.add((path.name, word.strip("`")))
    return found


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.stem)
def test_every_runbook_has_the_seven_sections_in_order(runbook: Path) -> None:
    """Meaning, Impact, Diagnosis, Mitigation, Rollback, Verification, Escalation, in order."""
    headings = re.findall(r"^## (.+)$", runbook.read_text(), flags=re.M)
    assert [h for h in headings if h in SECTIONS] == list(SECTIONS)


def test_every_cortiware_command_named_exists_and_parses() -> None:
    """Each `cortiware …` in the runbooks and docs resolves to a command whose options exist,
    and its `--help` exits 0."""
    commands = cortiware_commands()
    assert len(commands) >= 20  # the docs do name them; a broken pattern would find none
    for source, words in commands:
        command: click.Command = cortiware_cli
        path: list[str] = []
        for word in words:
            if not isinstance(command, click.Group) or word.startswith("-"):
                break
            sub = command.get_command(click.Context(command), word)
            if sub is None:
                break
            command, path = sub, [*path, word]
        assert path or words[0] in ("--help", "--version"), (source, words)
        known = {opt for param in command.params for opt in param.opts}
        for word in words[len(path) :]:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known | {"--help"}, (source, words, word)
        result = click.testing.CliRunner().invoke(cortiware_cli, [*path, "--help"])
        assert result.exit_code == 0, (source, path, result.output)


def test_every_make_target_named_exists() -> None:
    """Each `make TARGET` in the runbooks and docs is a target of the Makefile."""
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.M))
    named = make_targets_named()
    assert {"deploy", "rollback", "restore", "preflight"} <= {t for _, t in named}
    for source, target in named:
        assert target in targets, (source, target)


@pytest.mark.parametrize("doc", OPERATOR_DOCS, ids=lambda p: p.name)
def test_shell_commands_work_with_gnu_and_bsd_tools(doc: Path) -> None:
    """No GNU-only flag (date -d, sed -i, grep -P …) in the commands an operator copies."""
    code = code_of(doc)
    for name, pattern in GNU_ONLY.items():
        assert not re.search(pattern, code), (doc.name, name)


def test_health_values_named_are_the_code_s() -> None:
    """Every health status and check value the runbooks quote is one the code reports."""
    checks = set(typing.get_args(health.CheckResult))
    statuses = {"healthy", "degraded", "unhealthy", "ready", "unready", "ok"}
    text = "\n".join(p.read_text() for p in [*RUNBOOKS, ROOT / "runbooks" / "README.md"])
    quoted_checks = re.findall(r'"(?:database|redis|config)": "(\w+)"', text)
    quoted_status = re.findall(r'"status": "(\w+)"', text)
    assert quoted_checks, "the runbooks quote check values"
    assert set(quoted_checks) <= checks, set(quoted_checks) - checks
    assert set(quoted_status) <= statuses, set(quoted_status) - statuses
    assert not re.search(r"\b(?:database|redis|config)[\"']?: [\"']?error\b", text)


def test_first_deploy_sets_every_required_secret_before_the_first_up() -> None:
    """docs/infra.md's path from nothing sets each secret the program requires (the webhook
    secret as a placeholder) and runs preflight before its first `pulumi up`."""
    from ops.preflight import REQUIRED_SECRETS

    text = (ROOT / "docs" / "infra.md").read_text()
    path = text[text.index("## From nothing to running") : text.index("## Day two")]
    first_up = path.index("pulumi up")
    for name in REQUIRED_SECRETS:
        assert path.index(f"config set --secret {name} ") < first_up, name
    assert path.index("make preflight") < first_up
