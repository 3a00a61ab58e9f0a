# SPDX-License-Identifier: GPL-2.0-or-later
"""Documentation generated from the agents' metadata: man pages (`man ocf_tandem_drbd`) and the README's
parameter tables, so that what users read is what the agents declare."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tandem.shipped import AGENT_NAMES, metadata_file


@dataclass(frozen=True)
class ParamDoc:
    name: str
    shortdesc: str
    longdesc: str
    type: str
    default: str | None
    required: bool


@dataclass(frozen=True)
class AgentDoc:
    name: str
    version: str
    shortdesc: str
    longdesc: str
    params: tuple[ParamDoc, ...]
    actions: tuple[tuple[str, str], ...]  # (name, "timeout=..s interval=..s role=..")


def parse_metadata(xml: str) -> AgentDoc:
    from lxml import etree

    root = etree.fromstring(xml.encode())
    params = []
    for p in root.iterfind("parameters/parameter"):
        content = p.find("content")
        params.append(
            ParamDoc(
                name=p.get("name", ""),
                shortdesc=" ".join((p.findtext("shortdesc") or "").split()),
                longdesc=" ".join((p.findtext("longdesc") or "").split()),
                type=content.get("type", "string") if content is not None else "string",
                default=content.get("default") if content is not None else None,
                required=p.get("required") == "1",
            )
        )
    actions = tuple(
        (
            a.get("name", ""),
            " ".join(f"{k}={a.get(k)}" for k in ("timeout", "interval", "role", "depth") if a.get(k)),
        )
        for a in root.iterfind("actions/action")
    )
    return AgentDoc(
        name=root.get("name", ""),
        version=root.get("version", ""),
        shortdesc=" ".join((root.findtext("shortdesc") or "").split()),
        longdesc=" ".join((root.findtext("longdesc") or "").split()),
        params=tuple(params),
        actions=actions,
    )


def agent_metadata(name: str) -> str:
    """The agent's metadata as it prints it: the generated file shipped with the library (the tests check it
    is what the agent's declaration builds)."""
    try:
        with open(metadata_file(name), encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise FileNotFoundError(
            f"the metadata of agent {name} is not beside the library ({metadata_file(name)}: "
            f"{exc.strerror}); install from a complete checkout or package"
        ) from exc


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)


def man_page(doc: AgentDoc) -> str:
    lines = [
        f'.TH OCF_TANDEM_{doc.name.upper()} 7 "" "tandem {doc.version}" "OCF resource agents"',
        ".SH NAME",
        f"ocf_tandem_{doc.name} \\- {_roff(doc.shortdesc)}",
        ".SH SYNOPSIS",
        _roff(f"{doc.name} [{' | '.join(dict.fromkeys(a for a, _ in doc.actions))}]"),
        ".SH DESCRIPTION",
        _roff(doc.longdesc),
        ".SH SUPPORTED PARAMETERS",
    ]
    for p in doc.params:
        flags = (
            ", required" if p.required else (f", default: {p.default}" if p.default not in (None, "") else "")
        )
        lines += [
            ".TP",
            f"\\fB{_roff(p.name)}\\fR ({_roff(p.type + flags)})",
            _roff(f"{p.shortdesc}. {p.longdesc}"),
        ]
    lines.append(".SH SUPPORTED ACTIONS")
    lines += [line for name, attrs in doc.actions for line in (".TP", f"\\fB{_roff(name)}\\fR", _roff(attrs))]
    lines += [
        ".SH EXAMPLE CRM SHELL",
        _roff(f"See the tandem README for the crmsh and pcs configuration of ocf:tandem:{doc.name}."),
    ]
    return "\n".join(lines) + "\n"


def command_man_page(version: str) -> str:
    """tandem(8), from the command table; the handler scripts' pages point to it (they are its commands)."""
    from tandem.cli import COMMANDS

    lines = [
        f'.TH TANDEM 8 "" "tandem {version}" "System Administration"',
        ".SH NAME",
        "tandem, tandem-fence-peer, tandem-unfence-peer \\- tandem's commands for Pacemaker and DRBD",
        ".SH SYNOPSIS",
        "\\fBtandem\\fR \\fICOMMAND\\fR [\\fIARGS\\fR...]",
        ".br",
        "\\fBtandem-fence-peer\\fR, \\fBtandem-unfence-peer\\fR: tandem fence-peer, tandem unfence-peer",
        ".SH COMMANDS",
    ]
    for name, (_, _, help_) in sorted(COMMANDS.items()):
        lines += [".TP", f"\\fB{_roff(name)}\\fR", _roff(help_)]
    lines += [
        ".SH SEE ALSO",
        "\\fBocf_tandem_drbd\\fR(7), \\fBocf_tandem_domain\\fR(7); \\fBtandem \\fICOMMAND\\fB --help\\fR",
    ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_params(doc: AgentDoc) -> str:
    rows = ["| parameter | default | description |", "|---|---|---|"]
    for p in doc.params:
        default = "(required)" if p.required else (f"`{p.default}`" if p.default not in (None, "") else "")
        rows.append(f"| `{p.name}` | {_cell(default)} | {_cell(p.shortdesc)}. {_cell(p.longdesc)} |")
    return "\n".join(rows) + "\n"


def update_readme(text: str, tables: dict[str, str]) -> str:
    """Replace each `<!-- params:NAME -->` ... `<!-- /params:NAME -->` block with the generated table."""
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- params:{name} -->\n).*?(<!-- /params:{name} -->)", re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"README has no <!-- params:{name} --> block")
        text = text[: match.start()] + match.group(1) + table + match.group(2) + text[match.end() :]
    return text


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tandem docs", description=__doc__)
    parser.add_argument("--man", metavar="AGENT", choices=AGENT_NAMES, help="print the man page of AGENT")
    parser.add_argument("--readme", type=Path, help="regenerate the parameter tables in this README")
    args = parser.parse_args(list(argv))
    if args.man:
        print(man_page(parse_metadata(agent_metadata(args.man))), end="")
    if args.readme:
        tables = {n: markdown_params(parse_metadata(agent_metadata(n))) for n in AGENT_NAMES}
        args.readme.write_text(update_readme(args.readme.read_text(), tables))
    if not args.man and not args.readme:
        parser.print_usage(sys.stderr)
        return 2
    return 0
