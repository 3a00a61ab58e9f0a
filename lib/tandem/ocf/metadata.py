# SPDX-License-Identifier: GPL-2.0-or-later
"""Metadata XML built from the declarations with lxml (imported only for the meta-data action).

It carries the DOCTYPE ocf-tester wants, a timeout on every action, and no OCF-1.1-only attributes,
so that ra-api-1.dtd, metadata.rng and the OCF 1.1 RELAX NG schema all accept it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tandem.ocf.spec import AgentSpec

DOCTYPE = '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">'


def build(spec: AgentSpec) -> str:
    from lxml import etree

    root = etree.Element("resource-agent", name=spec.name, version=spec.version)
    etree.SubElement(root, "version").text = "1.1"
    etree.SubElement(root, "longdesc", lang="en").text = spec.longdesc
    etree.SubElement(root, "shortdesc", lang="en").text = spec.shortdesc
    params = etree.SubElement(root, "parameters")
    for decl in spec.params:
        node = etree.SubElement(
            params,
            "parameter",
            name=decl.name,
            unique="1" if decl.unique else "0",
            required="1" if decl.required else "0",
        )
        etree.SubElement(node, "longdesc", lang="en").text = decl.describe()
        etree.SubElement(node, "shortdesc", lang="en").text = decl.shortdesc
        content = etree.SubElement(node, "content", type=decl.kind.content)
        if decl.default is not None:
            content.set("default", decl.default)
    actions = etree.SubElement(root, "actions")
    for action in spec.actions:
        node = etree.SubElement(actions, "action", name=action.name, timeout=f"{action.timeout}s")
        if action.interval is not None:
            node.set("interval", f"{action.interval}s")
        if action.depth is not None:
            node.set("depth", str(action.depth))
        if action.role is not None:
            node.set("role", action.role)
    body = etree.tostring(root, pretty_print=True, encoding="unicode")
    return f'<?xml version="1.0"?>\n{DOCTYPE}\n{body}'
