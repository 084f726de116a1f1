"""A local web site of image-caption pairs for the demo, tests and benchmarks.

`LocalImageServer` serves a dict of path -> `Route` on 127.0.0.1 and records every request, so tests
can prove what was (not) fetched. `build_demo_site` makes about 200 pairs: real photos from
scikit-image, scenes of the toy models' synthetic world (`filters.toy_world`, so that the toy CLIP's
scores mean something), wrong captions, near-duplicates and every kind of broken URL.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


@dataclass(frozen=True)
class Route:
    """What the server answers on one path."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # many download threads connect at once; the default backlog (5) drops SYNs


class LocalImageServer:
    """Threaded HTTP server on 127.0.0.1 serving `routes`; `hits` lists the paths requested."""

    def __init__(self, routes: dict[str, Route], port: int = 0):
        self._routes = dict(routes)
        self._hits: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", port), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's naming)
                server._serve(self)

            def log_message(self, *args):
                pass

        return Handler

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._hits.append(request.path)
            route = self._routes.get(request.path, Route(status=404, body=b"not found"))
        if route.delay_s and self._closing.wait(route.delay_s):
            return
        try:
            request.send_response(route.status)
            for name, value in route.headers:
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(route.body)))
            request.end_headers()
            request.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def hits(self) -> list[str]:
        with self._lock:
            return list(self._hits)

    def add_route(self, path: str, route: Route) -> None:
        with self._lock:
            self._routes[path] = route

    def __enter__(self) -> LocalImageServer:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class DemoPair:
    """One input row: a path on the server, its caption, what it tests and the status it should get."""

    path: str
    caption: str | None
    kind: str
    expected_status: str


PHOTOS = {
    "astronaut": "an astronaut in a white spacesuit posing in front of an american flag",
    "coffee": "a cup of coffee on a saucer seen from above",
    "chelsea": "a tabby cat looking at the camera",
    "rocket": "a rocket standing on its launch pad",
    "camera": "a black and white photo of a man with a camera on a tripod",
    "coins": "old coins laid out in rows on a grey background",
    "moon": "a black and white close up of the surface of the moon",
    "page": "a scanned page of printed text",
    "text": "a black and white photo of handwritten text and numbers",
    "immunohistochemistry": "a microscope image of stained tissue cells",
    "hubble_deep_field": "a deep field image of distant galaxies in space",
    "retina": "a photo of the retina of a human eye",
    "cell": "a microscope image of a single cell",
}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def _encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def _image_route(image: Image.Image, fmt: str = "JPEG", quality: int = 90, **extra) -> Route:
    headers = (("Content-Type", CONTENT_TYPES[fmt]), *extra.pop("headers", ()))
    return Route(body=_encode(image, fmt, quality), headers=headers, **extra)


def _photos() -> dict[str, Image.Image]:
    from skimage import data

    out = {}
    for name in PHOTOS:
        try:
            out[name] = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        except Exception:  # noqa: BLE001  (a photo that needs a download is simply left out)
            continue
    return out


def _broken_routes(photo: Image.Image, timeout_delay_s: float) -> list[tuple[str, Route | None, str, str]]:
    """(path, route or None for a 404, kind, expected status) for every way a URL can fail."""
    jpeg = _encode(photo)
    image_headers = (("Content-Type", "image/jpeg"),)
    return [
        ("/broken/missing.jpg", None, "http_404", "failed_to_download"),
        ("/broken/error.jpg", Route(status=500, body=b"oops"), "http_500", "failed_to_download"),
        (
            "/broken/slow.jpg",
            Route(body=jpeg, headers=image_headers, delay_s=timeout_delay_s),
            "timeout",
            "failed_to_download",
        ),
        (
            "/broken/page.jpg",
            Route(body=b"<html><body>hello</body></html>", headers=(("Content-Type", "text/html"),)),
            "not_an_image",
            "failed_to_decode",
        ),
        (
            "/broken/truncated.jpg",
            Route(body=jpeg[:600], headers=image_headers),
            "truncated_jpeg",
            "failed_to_decode",
        ),
        ("/broken/empty.jpg", Route(body=b"", headers=image_headers), "empty_body", "failed_to_decode"),
        (
            "/loop/a",
            Route(status=302, headers=(("Location", "/loop/b"),)),
            "redirect_loop",
            "failed_to_download",
        ),
        (
            "/optout/noai.jpg",
            Route(body=jpeg, headers=(*image_headers, ("X-Robots-Tag", "noai"))),
            "robots_noai",
            "blocked",
        ),
        (
            "/optout/noimageai.jpg",
            Route(body=jpeg, headers=(*image_headers, ("X-Robots-Tag", "noimageai"))),
            "robots_noimageai",
            "blocked",
        ),
    ]


def build_demo_site(
    n_pairs: int = 200, seed: int = 0, timeout_delay_s: float = 6.0
) -> tuple[dict[str, Route], list[DemoPair]]:
    """Deterministic routes and the pairs that point at them (about `n_pairs`)."""
    from pairsmith.filters.toy_world import render_scene  # here: pairsmith.filters imports torch

    rng = np.random.default_rng(seed)
    routes: dict[str, Route] = {"/loop/b": Route(status=302, headers=(("Location", "/loop/a"),))}
    pairs: list[DemoPair] = []

    def add(path: str, route: Route | None, caption: str, kind: str, expected: str = "success") -> None:
        if route is not None:
            routes[path] = route
        pairs.append(DemoPair(path, caption, kind, expected))

    photos = _photos()
    first = next(iter(photos))
    formats = ("JPEG", "PNG", "WEBP")
    for i, (name, image) in enumerate(photos.items()):
        add(f"/photo/{name}", _image_route(image, formats[i % 3]), PHOTOS[name], "photo")
    for path, route, kind, expected in _broken_routes(photos[first], timeout_delay_s):
        add(path, route, f"a picture that fails as {kind.replace('_', ' ')}", kind, expected)
    add(
        "/redirect/ok",
        Route(status=302, headers=(("Location", f"/photo/{first}"),)),
        PHOTOS[first],
        "redirect_ok",
    )
    for name, image in photos.items():
        for scale, quality in ((0.5, 90), (0.75, 30), (1.0, 60)):
            small = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
            add(
                f"/near/{name}-{scale}-{quality}.jpg",
                _image_route(small, "JPEG", quality),
                PHOTOS[name],
                "near_duplicate",
            )
    names = list(photos)
    for i, name in enumerate(names):
        wrong = PHOTOS[names[(i + 1) % len(names)]]
        add(f"/wrong/{name}.jpg", _image_route(photos[name]), wrong, "wrong_caption")
    sizes = [(256, 256), (128, 128), (400, 400), (800, 100), (16, 16), (224, 224)]
    index = 0
    while len(pairs) < n_pairs:
        image, caption = render_scene(rng, size=256)
        image = image.resize(sizes[index % len(sizes)])
        add(f"/shapes/{index}.png", _image_route(image, "PNG"), caption, "synthetic")
        index += 1
    return routes, pairs


def write_pairs_parquet(pairs: list[DemoPair], base_url: str, path) -> None:
    """The pairs as an input file: url, caption, kind, expected_status."""
    table = pa.table(
        {
            "url": [base_url + p.path for p in pairs],
            "caption": [p.caption for p in pairs],
            "kind": [p.kind for p in pairs],
            "expected_status": [p.expected_status for p in pairs],
        }
    )
    pq.write_table(table, path)
