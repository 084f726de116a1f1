"""Private-address guard: the connection factory of the fetch policy's opener (`pipelines/fetch_policy.py`).

The check happens when a connection is opened, on the address actually dialled, so it also covers
redirects (each hop opens a new connection) and DNS answers that change between lookups. Every
connection, guarded or not, dials within the time left to its fetch (`download.deadline_s`).
"""

from __future__ import annotations

import ipaddress
import socket

from pairsmith.pipelines.fetch_limits import connect_timeout

GUARD_MARKER = "private address guard"


class BlockedAddressError(OSError):
    """Raised instead of connecting to a loopback, private, link-local, multicast or reserved address."""


def is_public(ip: str) -> bool:
    """True for globally routable unicast addresses."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def connector(guard: bool, allowlist: list[str] | tuple[str, ...] = ()):
    """A `create_connection` for http.client: checks every address of a host (unless `guard` is off
    or the host is allow-listed) and dials only addresses it checked."""
    allowed = frozenset(allowlist)

    def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **_):
        host, port = address
        read_timeout = None if timeout is socket._GLOBAL_DEFAULT_TIMEOUT else timeout
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if guard and host not in allowed:
            for *_, sockaddr in infos:
                if not is_public(sockaddr[0]):
                    raise BlockedAddressError(
                        f"{GUARD_MARKER}: host {host!r} resolves to non-public address {sockaddr[0]} "
                        "(set download.allow_private_addresses=true or add the host to download.private_allowlist)"
                    )
        error: OSError = OSError(f"no address for {host!r}")
        for *_, sockaddr in infos:  # the addresses looked up (and checked) above, not a fresh lookup
            try:
                sock = socket.create_connection(sockaddr[:2], connect_timeout(read_timeout), source_address)
            except OSError as exc:
                error = exc
                continue
            sock.settimeout(read_timeout)
            return sock
        connect_timeout(read_timeout)  # raises DeadlineExceeded if the deadline is what ended the wait
        raise error

    return create_connection
