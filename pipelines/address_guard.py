"""Private-address guard: an urllib opener that refuses to connect to non-public addresses.

The check happens when a connection is opened, on the address actually dialled, so it also covers
redirects (each hop opens a new connection) and DNS answers that change between lookups.
img2dataset downloads through `urllib.request.urlopen`, which uses the opener installed here.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request

GUARD_MARKER = "private address guard"


class BlockedAddressError(OSError):
    """Raised instead of connecting to a loopback, private, link-local, multicast or reserved address."""


def is_public(ip: str) -> bool:
    """True for globally routable unicast addresses."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def _guarded_create_connection(allowlist: frozenset[str]):
    def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs):
        host, port = address
        if host in allowlist:
            return socket.create_connection(address, timeout, source_address)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_, sockaddr in infos:
            if not is_public(sockaddr[0]):
                raise BlockedAddressError(
                    f"{GUARD_MARKER}: host {host!r} resolves to non-public address {sockaddr[0]} "
                    "(set download.allow_private_addresses=true or add the host to download.private_allowlist)"
                )
        # Dial the address that was checked, not a fresh lookup.
        return socket.create_connection((infos[0][4][0], port), timeout, source_address)

    return create_connection


def build_guarded_opener(allowlist: list[str] | tuple[str, ...] = ()) -> urllib.request.OpenerDirector:
    """An opener whose HTTP and HTTPS connections pass through the guard."""
    create = _guarded_create_connection(frozenset(allowlist))

    class GuardedHTTPConnection(http.client.HTTPConnection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = create  # http.client sets this per instance

    class GuardedHTTPSConnection(http.client.HTTPSConnection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = create

    class GuardedHTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(GuardedHTTPConnection, req)

    class GuardedHTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(GuardedHTTPSConnection, req, context=self._context)

    return urllib.request.build_opener(GuardedHTTPHandler, GuardedHTTPSHandler)


def install_fetch_policy(allow_private: bool, allowlist: list[str] | tuple[str, ...] = ()) -> None:
    """Install the process-wide urllib opener that img2dataset's downloader uses."""
    opener = urllib.request.build_opener() if allow_private else build_guarded_opener(allowlist)
    urllib.request.install_opener(opener)
