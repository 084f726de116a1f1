"""The fetch policy: the urllib opener that img2dataset downloads through (`urllib.request.urlopen`).

It is built from http and https handlers only: no ftp, file or data handler, and a redirect to any
scheme but http(s) is refused before anything is dialled (`scheme guard`). Its connections pass the
private-address guard (`address_guard.py`) unless `download.allow_private_addresses` is set, each
fetch keeps to its deadline and byte budget (`fetch_limits.py`), and robots.txt is honoured
(`robots.py`) unless `download.respect_robots_txt` is off.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from pairsmith.pipelines.address_guard import connector
from pairsmith.pipelines.fetch_limits import Limits, MeteredResponse, fetch_scope
from pairsmith.pipelines.robots import RobotsRules
from pairsmith.schemas.config import DownloadConfig

SCHEME_MARKER = "scheme guard"
FETCHED_SCHEMES = ("http", "https")


class BlockedSchemeError(urllib.error.URLError):
    """A redirect to a scheme other than http or https."""


class _HttpOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = headers.get("location") or headers.get("uri")
        if target is not None:
            scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, target)).scheme
            if scheme not in FETCHED_SCHEMES:
                fp.close()
                raise BlockedSchemeError(
                    f"{SCHEME_MARKER}: redirect to a {scheme or 'relative'!r} URL refused, only http(s) is fetched"
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _PolicyOpener(urllib.request.OpenerDirector):
    """Checks robots.txt before each request and runs each fetch (with its redirects) in one budget."""

    def __init__(self, limits: Limits, timeout_s: float):
        super().__init__()
        self.limits, self.timeout_s = limits, timeout_s
        self.robots: RobotsRules | None = None

    def open(self, fullurl, data=None, timeout=socket._GLOBAL_DEFAULT_TIMEOUT):
        if self.robots is not None:
            self.robots.check(fullurl.full_url if isinstance(fullurl, urllib.request.Request) else fullurl)
        with fetch_scope(self.limits):
            return super().open(fullurl, data, timeout)

    def read_alone(self, url: str, user_agent: str) -> bytes:
        """The body of `url`, fetched with a budget of its own (robots.txt, needed in the middle of
        another fetch)."""
        request = urllib.request.Request(url, headers={"User-Agent": user_agent})
        with fetch_scope(self.limits, new=True), self.open(request, timeout=self.timeout_s) as response:
            return response.read()


def build_opener(cfg: DownloadConfig) -> urllib.request.OpenerDirector:
    """The opener of `cfg`'s fetch policy."""
    create = connector(guard=not cfg.allow_private_addresses, allowlist=cfg.private_allowlist)

    class PolicyHTTPConnection(http.client.HTTPConnection):
        response_class = MeteredResponse

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = create  # http.client sets this per instance

    class PolicyHTTPSConnection(http.client.HTTPSConnection):
        response_class = MeteredResponse

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = create

    class PolicyHTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(PolicyHTTPConnection, req)

    class PolicyHTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(PolicyHTTPSConnection, req, context=self._context)

    opener = _PolicyOpener(Limits(cfg.deadline_s, cfg.max_bytes), cfg.timeout_s)
    for handler in (
        urllib.request.UnknownHandler(),  # any other scheme: "unknown url type"
        PolicyHTTPHandler(),
        PolicyHTTPSHandler(),
        _HttpOnlyRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    if cfg.respect_robots_txt:
        agent = f"Mozilla/5.0 (compatible; {cfg.user_agent_token})"
        opener.robots = RobotsRules(lambda url: opener.read_alone(url, agent), cfg.user_agent_token)
    return opener


class _Installed:
    """Which opener urllib's `urlopen` uses in this process, shared by the shards downloading in it."""

    lock = threading.Lock()
    shards = 0
    before: urllib.request.OpenerDirector | None = None


@contextlib.contextmanager
def fetch_policy(cfg: DownloadConfig) -> Iterator[None]:
    """Make `cfg`'s opener the one img2dataset downloads through (urllib's process-wide opener; a new
    one per shard, so each shard reads each host's robots.txt once). The opener found before comes
    back when the last shard downloading in this process is done, never while one still is."""
    with _Installed.lock:
        if _Installed.shards == 0:
            _Installed.before = urllib.request._opener  # no public getter; set by install_opener
        _Installed.shards += 1
        urllib.request.install_opener(build_opener(cfg))
    try:
        yield
    finally:
        with _Installed.lock:
            _Installed.shards -= 1
            if _Installed.shards == 0:
                urllib.request.install_opener(_Installed.before)
