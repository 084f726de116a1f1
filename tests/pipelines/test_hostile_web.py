"""The downloader on a hostile web: redirects to other schemes, slow and endless bodies, decompression
bombs, robots.txt. Everything is served from 127.0.0.1 by a server that logs every request; a raw TCP
listener on 127.0.0.2 stands for a host the guard must never reach."""

import contextlib
import io
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pairsmith.pipelines.fetch_limits import TooLarge
from pairsmith.pipelines.fetch_policy import BlockedSchemeError, build_opener, fetch_policy
from pairsmith.pipelines.robots import RobotsDisallowed
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import DownloadConfig, load_config

DEADLINE_S = 2.0
MAX_BYTES = 2**20
ROBOTS = b"User-agent: pairsmith\nDisallow: /private/\n\nUser-agent: *\nAllow: /\n"


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, "JPEG")
    return buf.getvalue()


def blank_png(width: int, height: int) -> bytes:
    """A 1-bit PNG of zeros: small on disk, width x height bytes once decoded (OpenCV gives 8 bits)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), bytes(1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many download threads connect at once


class HostileServer:
    """HTTP server on 127.0.0.1. A route is a function of the request handler; `log` lists every
    request's path, `sent` the body bytes written per path, `held` the seconds each slow route kept
    its client before the client hung up."""

    def __init__(self, routes: dict):
        self.routes, self.log, self.sent, self.held = dict(routes), [], {}, {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's naming)
                with server._lock:
                    server.log.append(self.path)
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    server.routes.get(self.path, static(b"not found", status=404))(self)

            def log_message(self, *args):
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self):
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class TcpListener:
    """A raw TCP listener on 127.0.0.2 that records every connection made to it."""

    def __init__(self):
        self._sock = socket.create_server(("127.0.0.2", 0))
        self._sock.settimeout(0.1)
        self.port, self.connections = self._sock.getsockname()[1], []
        self._stop = threading.Event()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            self.connections.append(peer)
            conn.close()

    def __enter__(self):
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sock.close()


def static(body: bytes, status: int = 200, headers: tuple = ()):
    def route(handler):
        handler.send_response(status)
        for name, value in (("Content-Length", str(len(body))), *headers):
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str):
    return static(b"", status=302, headers=(("Location", location),))


def _hold(server: HostileServer, handler, drip: bytes) -> None:
    """Send `drip` one byte a second until the client hangs up (at most 60 s); record how long."""
    start = time.monotonic()
    try:
        for byte in drip * 60:
            readable, _, _ = select.select([handler.connection], [], [], 1.0)
            if readable and not handler.connection.recv(1):
                break
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
    finally:
        server.held[handler.path] = time.monotonic() - start


def trickle_body(server: HostileServer):
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        _hold(server, handler, b"x")

    return route


def trickle_headers(server: HostileServer):
    def route(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        _hold(server, handler, b"a")

    return route


def endless(server: HostileServer, total: int = 200 * 2**20):
    """200 MB with no Content-Length (the body ends when the connection does)."""

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        block, sent = bytes(2**16), 0
        try:
            while sent < total:
                handler.wfile.write(block)
                sent += len(block)
        finally:
            server.sent[handler.path] = sent

    return route


def declared(length: int):
    """A Content-Length far beyond the limit, and no body: the client must not wait for it."""

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.connection.recv(1)  # returns when the client hangs up

    return route


def _opener(**settings):
    base = {"private_allowlist": ["127.0.0.1"], "deadline_s": DEADLINE_S, "max_bytes": MAX_BYTES}
    return build_opener(DownloadConfig(**(base | settings)))


# --- scheme guard ------------------------------------------------------------------------------


@pytest.mark.parametrize("allow_private", [False, True])
def test_redirects_to_other_schemes_are_refused_before_dialling(allow_private):
    with TcpListener() as listener, HostileServer({}) as server:
        targets = [
            f"ftp://127.0.0.2:{listener.port}/x.jpg",
            "file:///etc/passwd",
            "data:,hello",
            "gopher://x/",
        ]
        for i, target in enumerate(targets):
            server.routes[f"/to/{i}"] = redirect(target)
        opener = _opener(allow_private_addresses=allow_private)
        for i in range(len(targets)):
            with pytest.raises(BlockedSchemeError, match="scheme guard"):
                opener.open(server.url(f"/to/{i}"), timeout=5)
        with pytest.raises(urllib.error.URLError, match="unknown url type"):
            opener.open(f"ftp://127.0.0.2:{listener.port}/x.jpg", timeout=5)
        time.sleep(0.3)
    assert listener.connections == []


def test_the_policy_opener_is_installed_only_while_shards_download():
    before = urllib.request._opener  # what urlopen uses (None: urllib's default)
    with fetch_policy(DownloadConfig()):
        first = urllib.request._opener
        with fetch_policy(DownloadConfig()):
            assert urllib.request._opener not in (first, before)  # a new one per shard
        assert urllib.request._opener not in (first, before)  # the other shard still downloads
    assert urllib.request._opener is before


# --- deadline and byte budget ------------------------------------------------------------------


@pytest.mark.parametrize("route", [trickle_body, trickle_headers])
def test_a_trickle_ends_at_the_deadline(route):
    with HostileServer({}) as server:
        server.routes["/slow"] = route(server)
        start = time.monotonic()
        with (
            pytest.raises(OSError, match="download.deadline_s"),
            _opener(timeout_s=5).open(server.url("/slow"), timeout=5) as response,
        ):
            response.read()
        assert DEADLINE_S <= time.monotonic() - start < DEADLINE_S + 0.5


def test_the_deadline_covers_every_redirect_hop():
    def hop(n):
        def route(handler):
            time.sleep(0.6)
            redirect(f"/hop/{n + 1}")(handler)

        return route

    with HostileServer({f"/hop/{n}": hop(n) for n in range(10)}) as server:
        start = time.monotonic()
        with pytest.raises(OSError, match="download.deadline_s"):
            _opener(timeout_s=5).open(server.url("/hop/0"), timeout=5)
        assert time.monotonic() - start < DEADLINE_S + 0.5
        assert len(server.log) <= 1 + DEADLINE_S / 0.6 + 1  # robots.txt, then the hops that fit


def test_an_endless_body_stops_at_max_bytes_and_holds_no_more():
    with HostileServer({}) as server:
        server.routes["/endless"] = endless(server)
        tracemalloc.start()
        try:
            with (
                pytest.raises(TooLarge, match="download.max_bytes"),
                _opener().open(server.url("/endless"), timeout=5) as response,
            ):
                response.read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        time.sleep(0.3)
    assert peak < 4 * MAX_BYTES
    assert server.sent["/endless"] < 32 * 2**20  # what the sockets buffered, not 200 MB


def test_a_declared_length_over_max_bytes_is_refused_before_the_body():
    with HostileServer({"/huge": declared(10**12)}) as server:
        start = time.monotonic()
        with pytest.raises(TooLarge, match="Content-Length 1000000000000"):
            _opener().open(server.url("/huge"), timeout=5)
        assert time.monotonic() - start < 1


@pytest.fixture
def https_server(tmp_path, monkeypatch):
    """A HostileServer speaking TLS with a self-signed certificate that the opener is made to trust."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by each new default TLS context
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HostileServer({}) as server:
        server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
        server.base_url = server.base_url.replace("http:", "https:")
        yield server


def test_https_fetches_keep_the_same_limits(https_server):
    server = https_server
    server.routes |= {"/ok.jpg": static(_jpeg()), "/slow": trickle_body(server), "/endless": endless(server)}
    opener = _opener(timeout_s=5)
    assert opener.open(server.url("/ok.jpg"), timeout=5).read() == _jpeg()
    start = time.monotonic()
    with pytest.raises(OSError, match="download.deadline_s"):
        opener.open(server.url("/slow"), timeout=5).read()
    assert time.monotonic() - start < DEADLINE_S + 0.5
    with pytest.raises(TooLarge):
        opener.open(server.url("/endless"), timeout=5).read()


# --- robots.txt --------------------------------------------------------------------------------


def test_robots_txt_is_read_once_per_opener_even_under_concurrent_fetches():
    routes = {"/robots.txt": static(ROBOTS)} | {f"/img/{i}.jpg": static(_jpeg()) for i in range(64)}
    with HostileServer(routes) as server:
        server.routes["/img/to-private"] = redirect("/private/b.jpg")
        opener = _opener()
        with ThreadPoolExecutor(32) as pool:
            bodies = list(pool.map(lambda i: opener.open(server.url(f"/img/{i}.jpg")).read(), range(64)))
        assert bodies == [_jpeg()] * 64
        for path in ("/private/a.jpg", "/img/to-private"):
            with pytest.raises(RobotsDisallowed, match="download.respect_robots_txt"):
                opener.open(server.url(path))
        assert server.log.count("/robots.txt") == 1
        assert not any(p.startswith("/private/") for p in server.log)
        _opener().open(server.url("/img/0.jpg")).read()  # a new opener (a new shard) reads it again
        assert server.log.count("/robots.txt") == 2


@pytest.mark.parametrize(
    "robots",
    [
        static(b"no", status=404),
        static(b"busy", status=503),
        redirect("ftp://127.0.0.2/robots.txt"),
        declared(10**12),
    ],
    ids=["404", "503", "ftp-redirect", "too-large"],
)
def test_a_robots_txt_that_cannot_be_read_allows_everything(robots):
    with HostileServer({"/robots.txt": robots, "/private/a.jpg": static(_jpeg())}) as server:
        assert _opener().open(server.url("/private/a.jpg"), timeout=5).read() == _jpeg()
        assert server.log == ["/robots.txt", "/private/a.jpg"]


def test_robots_txt_can_be_switched_off():
    with HostileServer({"/robots.txt": static(ROBOTS), "/private/a.jpg": static(_jpeg())}) as server:
        assert _opener(respect_robots_txt=False).open(server.url("/private/a.jpg")).read() == _jpeg()
        assert server.log == ["/private/a.jpg"]


# --- decompression bombs -----------------------------------------------------------------------

_RESIZE = """
import io, resource, sys
from pairsmith.pipelines.download import make_resizer
from pairsmith.schemas.config import DownloadConfig
resizer = make_resizer(DownloadConfig())
images = [open(path, "rb").read() for path in sys.argv[1:]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for data in images:
    print(resizer(io.BytesIO(data))[-1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_decompression_bombs_are_refused_from_the_header_without_decoding(tmp_path):
    paths = []
    for side in (20000, 12000, 640):
        paths.append(tmp_path / f"{side}.png")
        paths[-1].write_bytes(blank_png(side, side))
    done = subprocess.run(
        [sys.executable, "-c", _RESIZE, *map(str, paths)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *messages, grown_kb = done.stdout.strip().splitlines()
    assert "download.max_image_pixels" in messages[0] and "download.max_image_pixels" in messages[1]
    assert "12000x12000" in messages[1] and messages[2] == "None"  # the small one is resized
    assert int(grown_kb) < 64 * 1024  # decoding even the 12000 x 12000 one would take 144 MB


# --- the whole pipeline --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """One run over every hostile route, in two shards; what it wrote and what the hosts saw."""
    tmp = tmp_path_factory.mktemp("hostile")
    with TcpListener() as listener, HostileServer({}) as server:
        server.routes |= {
            "/robots.txt": static(ROBOTS),
            "/ok.jpg": static(_jpeg()),
            "/ok-2.jpg": static(_jpeg()),
            "/to-ftp": redirect(f"ftp://127.0.0.2:{listener.port}/x.jpg"),
            "/trickle-body": trickle_body(server),
            "/trickle-headers": trickle_headers(server),
            "/endless": endless(server),
            "/declared": declared(10**12),
            "/bomb.png": static(blank_png(20000, 20000)),
            "/big.png": static(blank_png(12000, 12000)),
            "/private/a.jpg": static(_jpeg()),
            "/private/b.jpg": static(_jpeg()),
            "/to-private": redirect("/private/b.jpg"),
            "/noai.jpg": static(_jpeg(), headers=(("X-Robots-Tag", "noai"),)),
        }
        expected = {
            "/ok.jpg": ("success", None),
            "/to-ftp": ("blocked", "scheme"),
            "/trickle-body": ("failed_to_download", "deadline"),
            "/trickle-headers": ("failed_to_download", "deadline"),
            "/endless": ("failed_to_download", "too_large"),
            "/declared": ("failed_to_download", "too_large"),
            "/ok-2.jpg": ("success", None),
            "/bomb.png": ("failed_to_decode", "too_large"),
            "/big.png": ("failed_to_decode", "too_large"),
            "/private/a.jpg": ("blocked", "opt_out"),
            "/to-private": ("blocked", "opt_out"),
            "/noai.jpg": ("blocked", "opt_out"),
        }
        urls = [server.url(path) for path in expected]
        pq.write_table(pa.table({"url": urls, "caption": ["x"] * len(urls)}), tmp / "in.parquet")
        settings = [
            f"input.path={tmp / 'in.parquet'}",
            "input.shard_size=6",
            "download.private_allowlist=[127.0.0.1]",
            f"download.deadline_s={DEADLINE_S}",
            f"download.max_bytes={MAX_BYTES}",
            "download.timeout_s=5",
            "download.retries=0",
            "models.profile=none",
        ]
        manifest = run_all(load_config(None, settings), str(tmp / "out"))
        time.sleep(0.3)
        df = pl.read_parquet(tmp / "out" / "data" / "*.parquet").sort("source_row")
        yield {"df": df, "expected": expected, "server": server, "listener": listener, "manifest": manifest}


@pytest.mark.slow
def test_every_hostile_row_gets_its_status_and_kind(hostile_run):
    df, expected = hostile_run["df"], hostile_run["expected"]
    assert list(zip(df["status"], df["error_kind"], strict=True)) == list(expected.values())


@pytest.mark.slow
def test_the_run_kept_its_deadline_byte_budget_and_hosts(hostile_run):
    server = hostile_run["server"]
    assert hostile_run["listener"].connections == []
    assert max(server.held.values()) < DEADLINE_S + 1.5
    assert server.sent["/endless"] < 32 * 2**20
    assert not any(p.startswith("/private/") for p in server.log)
    assert server.log.count("/robots.txt") == hostile_run["manifest"]["shards"] == 2


@pytest.mark.slow
def test_the_manifest_counts_rows_per_opt_out(hostile_run):
    assert hostile_run["manifest"]["opt_out_rows"] == {"robots_txt": 2, "x_robots_tag": 1}


@pytest.mark.slow
def test_tar_members_are_unique_across_shards(hostile_run):
    ok = hostile_run["df"].filter(pl.col("status") == "success")
    assert ok.height == 2 and ok["tar"].n_unique() == 2
    assert ok["member"].n_unique() == 2
    for tar, member in zip(ok["tar"], ok["member"], strict=True):
        assert member.startswith(tar.removeprefix("images/").removesuffix(".tar") + "_")
