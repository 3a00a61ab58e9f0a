# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt connection and migration URIs for a target node, validated. Pure.

The options follow VirtualDomain (migration_transport, migration_user, migration_network_suffix, remoteuri,
migrateuri with %n), but every piece is checked before it reaches an argv, and %n is replaced by the target's
plain (or suffixed) host name, never by an already user@-decorated string (research §1.1).
"""

from __future__ import annotations

from tandem.ocf.params import ALNUM, DIGITS, LOWER, Chars
from tandem.record import NamedTuple
from tandem.regex import lazy

HOST_RE = lazy(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*")
SUFFIX_RE = lazy(r"[A-Za-z0-9._-]{1,63}")
USER_RE = lazy(r"[a-z_][a-z0-9_-]{0,31}")
TRANSPORTS = ("tcp", "tls", "ssh", "libssh", "libssh2", "unix", "ext")
# scheme:[//][user@]host[:port]/path[?query]; no blanks, quotes, backslashes or control characters anywhere.
# Checked by str operations: every monitor checks its hypervisor URI.
SCHEME = Chars(LOWER, LOWER + DIGITS + "+")
URI_CHARS = Chars(ALNUM + "._~%&+,;=:@/?[]-", ALNUM + "._~%&+,;=:@/?[]-", empty=True)
_URI_PARTS = lazy(r"(?P<scheme>[a-z][a-z0-9]*)(?:\+(?P<transport>[a-z0-9]+))?://(?P<rest>.*)")


class UriError(ValueError):
    pass


def check_uri(uri: str, what: str = "URI") -> str:
    scheme, colon, rest = uri.partition(":")
    if not (colon and SCHEME.allows(scheme) and URI_CHARS.allows(rest)):
        raise UriError(f"{what} {uri!r} is not a valid URI")
    return uri


def check_host(host: str) -> str:
    if not HOST_RE.fullmatch(host) or len(host) > 253:
        raise UriError(f"{host!r} is not a valid host name")
    return host


def with_suffix(node: str, suffix: str | None) -> str:
    """Insert the network suffix after the first label: node1.example.org + -mig -> node1-mig.example.org."""
    check_host(node)
    if not suffix:
        return node
    if not SUFFIX_RE.fullmatch(suffix):
        raise UriError(f"network suffix {suffix!r} is not allowed")
    first, dot, rest = node.partition(".")
    return check_host(f"{first}{suffix}{dot}{rest}")


def expand(template: str, node: str, what: str) -> str:
    """A user's URI template with %n = the node's host name."""
    return check_uri(template.replace("%n", check_host(node)), what)


class Route(NamedTuple):
    """How to reach another node: the options of the resource, in one place."""

    local_uri: str  # the hypervisor URI of this node (`virsh uri` when the parameter is unset)
    transport: str | None = None
    user: str | None = None
    suffix: str | None = None
    remote_template: str | None = None  # remote_uri parameter
    migrate_template: str | None = None  # migrate_uri parameter

    def remote_uri(self, node: str) -> str:
        """The libvirt URI of `node` (the control connection of a migration, or a peer check)."""
        if self.remote_template:
            return expand(self.remote_template, node, "remote_uri")
        m = _URI_PARTS.fullmatch(check_uri(self.local_uri, "hypervisor"))
        if m is None:
            raise UriError(f"hypervisor URI {self.local_uri!r} has no scheme://")
        transport = self.transport or m.group("transport")
        if transport is not None and transport not in TRANSPORTS:
            raise UriError(f"migration transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
        if self.user is not None and not USER_RE.fullmatch(self.user):
            raise UriError(f"migration user {self.user!r} is not allowed")
        rest = m.group("rest")
        path_start = rest.find("/")
        path = rest[path_start:] if path_start >= 0 else "/"
        host = with_suffix(node, self.suffix)
        scheme = m.group("scheme") + (f"+{transport}" if transport else "")
        user = f"{self.user}@" if self.user else ""
        return check_uri(f"{scheme}://{user}{host}{path}", "remote URI")

    def migrate_uri(self, node: str, hv_type: str | None) -> str | None:
        """Where the memory goes; None lets libvirt choose (the target's own address for its host name)."""
        if self.migrate_template:
            return expand(self.migrate_template, node, "migrate_uri")
        if not self.suffix:
            return None
        host = with_suffix(node, self.suffix)
        if hv_type in ("qemu", "kvm"):
            return check_uri(f"tcp://{host}", "migrate URI")
        return host if hv_type == "xen" else None

    def xl_host(self, node: str) -> str:
        """`xl migrate` goes over ssh to a host name: the node, with the network suffix."""
        return with_suffix(node, self.suffix)
