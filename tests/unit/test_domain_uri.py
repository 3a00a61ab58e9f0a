# SPDX-License-Identifier: GPL-2.0-or-later
"""Remote and migration URIs for a target node: built like VirtualDomain's, but validated."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.domain.uri import Route, UriError, check_uri, with_suffix

# What check_uri accepted as a regex; every monitor checks its hypervisor URI, now by str operations.
URI_RE = re.compile(r"[a-z][a-z0-9+]*:(//)?[A-Za-z0-9._~%&+,;=:@/?\[\]-]*")


def accepted(uri: str) -> bool:
    try:
        return check_uri(uri) == uri
    except UriError:
        return False


@given(st.text(alphabet="qemu+0:/ssh.%n@[]~?=-A \\\"'\n\u00e9", max_size=24) | st.text())
def test_uris_are_checked_as_the_regex_checked_them(uri: str) -> None:
    assert accepted(uri) == bool(URI_RE.fullmatch(uri))


def test_remote_uri_from_the_local_one() -> None:
    assert Route("qemu:///system").remote_uri("node2") == "qemu://node2/system"
    route = Route("qemu:///system", transport="tcp", user="admin", suffix="-mig")
    assert route.remote_uri("node2.example.org") == "qemu+tcp://admin@node2-mig.example.org/system"
    assert Route("qemu+ssh://h/session?no_verify=1").remote_uri("b") == "qemu+ssh://b/session?no_verify=1"
    assert Route("xen:///system", transport="tls").remote_uri("b") == "xen+tls://b/system"


def test_templates_replace_percent_n_with_the_plain_node_name() -> None:
    route = Route(
        "qemu:///system",
        user="admin",
        remote_template="qemu+tcp://%n/system",
        migrate_template="tcp://%n-mig:49152",
    )
    assert route.remote_uri("b") == "qemu+tcp://b/system"  # not admin@b (VirtualDomain's %n bug)
    assert route.migrate_uri("b", "kvm") == "tcp://b-mig:49152"


def test_migrate_uri_only_with_a_suffix_or_template() -> None:
    assert Route("qemu:///system").migrate_uri("b", "qemu") is None
    assert Route("qemu:///system", suffix="-mig").migrate_uri("b.x", "kvm") == "tcp://b-mig.x"
    assert Route("xen:///system", suffix="-mig").migrate_uri("b", "xen") == "b-mig"
    assert Route("qemu:///system", suffix="-m").xl_host("b.x") == "b-m.x"


@pytest.mark.parametrize(
    "route, node",
    [
        (Route("qemu:///system"), "b;reboot"),
        (Route("qemu:///system"), "-oProxyCommand=x"),
        (Route("qemu:///system", transport="http"), "b"),
        (Route("qemu:///system", user="Root Me"), "b"),
        (Route("qemu:///system", suffix="/x"), "b"),
        (Route("qemu:///system", remote_template="qemu+ssh://%n/system?x=$(id)"), "b"),
        (Route("no-scheme"), "b"),
    ],
)
def test_bad_pieces_are_refused(route: Route, node: str) -> None:
    with pytest.raises(UriError):
        route.remote_uri(node)


def test_suffix_after_first_label() -> None:
    assert with_suffix("node1.example.org", "-mig") == "node1-mig.example.org"
    assert with_suffix("node1", None) == "node1"
