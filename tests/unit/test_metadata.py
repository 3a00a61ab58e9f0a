# SPDX-License-Identifier: GPL-2.0-or-later
"""Metadata: valid against ra-api-1.dtd (what ocf-tester uses), metadata.rng and the OCF 1.1 RELAX NG schema;
the committed metadata/*.xml are what the agents print today."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import types
from pathlib import Path

import pytest
from lxml import etree

from tandem.ocf.metadata import build
from tandem.ocf.spec import AgentSpec
from tests.conftest import AGENTS, LIB, SHARED, TOP
from tests.unit.test_ocf_framework import SPEC

RA_DIR = Path("/usr/share/resource-agents")
AGENT_FILES = sorted(p for p in AGENTS.glob("*") if p.is_file())


def schemas() -> dict[str, object]:
    return {
        "ra-api-1.dtd": etree.DTD(str(RA_DIR / "ra-api-1.dtd")),
        "metadata.rng": etree.RelaxNG(etree.parse(str(RA_DIR / "metadata.rng"))),
        "ra-api-1.1.rng": etree.RelaxNG(etree.parse(str(SHARED / "fixtures/ocf/ra-api-1.1.rng"))),
    }


def assert_valid(xml: str) -> None:
    assert xml.startswith('<?xml version="1.0"?>\n<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">\n')
    doc = etree.fromstring(xml.encode())
    for name, schema in schemas().items():
        assert schema.validate(doc), f"{name}: {schema.error_log}"  # type: ignore[attr-defined]
    # ocf-tester's own check: xmllint --valid, resolving the DOCTYPE from /usr/share/resource-agents
    proc = subprocess.run(
        ["xmllint", "--noout", "--valid", "-"],
        input=xml,
        text=True,
        cwd=RA_DIR,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_sample_metadata_is_valid_and_escaped() -> None:
    xml = build(SPEC)
    assert_valid(xml)
    doc = etree.fromstring(xml.encode())
    assert doc.findtext("longdesc") == SPEC.longdesc
    assert doc.find("version").text == "1.1"  # type: ignore[union-attr]
    actions = doc.findall("actions/action")
    assert all(a.get("timeout") for a in actions)
    assert [a.get("role") for a in actions if a.get("name") == "monitor"] == ["Unpromoted", "Promoted"]
    mode = doc.find("parameters/parameter[@name='mode']")
    assert mode is not None and "Allowed values: fast, safe." in (mode.findtext("longdesc") or "")
    assert mode.find("content").get("default") == "fast"  # type: ignore[union-attr]
    name = doc.find("parameters/parameter[@name='name']")
    assert name is not None and name.get("required") == "1" and name.get("unique") == "1"


def test_the_committed_agents_exist() -> None:
    assert {p.name for p in AGENT_FILES} >= {"drbd", "domain"}


def agent_spec(agent: Path) -> AgentSpec:
    """The agent's own declaration, loaded as a module (its main() does not run)."""
    loader = importlib.machinery.SourceFileLoader(f"agent_{agent.name}", str(agent))
    module = types.ModuleType(loader.name)
    loader.exec_module(module)
    spec: AgentSpec = module.SPEC
    return spec


@pytest.mark.parametrize("agent", AGENT_FILES, ids=lambda p: p.name)
def test_agent_metadata_is_current_and_valid(agent: Path) -> None:
    """The committed file is what the declaration builds, and what the agent prints (served as is)."""
    committed = TOP / "metadata" / f"{agent.name}.xml"
    built = build(agent_spec(agent))
    assert_valid(built)
    assert committed.read_text() == built, f"regenerate: tandem.ocf.metadata.build(SPEC) > {committed}"
    env = {**os.environ, "TANDEM_LIBDIR": str(LIB)}
    proc = subprocess.run([str(agent), "meta-data"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == built


def test_agent_metadata_without_the_shipped_file_is_built(tmp_path: Path) -> None:
    """A library copied without metadata/ still answers meta-data, by building it."""
    lib = tmp_path / "lib"
    shutil.copytree(LIB / "tandem", lib / "tandem", ignore=shutil.ignore_patterns("metadata", "__pycache__"))
    env = {**os.environ, "TANDEM_LIBDIR": str(lib)}
    agent = AGENTS / "drbd"
    proc = subprocess.run([str(agent), "meta-data"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (TOP / "metadata" / "drbd.xml").read_text()
