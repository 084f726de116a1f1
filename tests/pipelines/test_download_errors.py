"""img2dataset's free-text outcomes (as urllib and OpenCV word them) -> status and error_kind."""

import pytest

from pairsmith.pipelines.download_errors import classify, opt_out_source


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("success", None, ("success", None)),
        (
            "failed_to_download",
            "<urlopen error [Errno -2] Name or service not known>",
            ("failed_to_download", "dns"),
        ),
        (
            "failed_to_download",
            "<urlopen error [Errno -3] Temporary failure in name resolution>",
            ("failed_to_download", "dns"),
        ),
        ("failed_to_download", "HTTP Error 404: Not Found", ("failed_to_download", "http_404")),
        ("failed_to_download", "HTTP Error 503: Service Unavailable", ("failed_to_download", "http_503")),
        (
            "failed_to_download",
            "HTTP Error 302: The HTTP server returned a redirect error that would lead to an infinite loop.",
            ("failed_to_download", "redirect_loop"),
        ),
        ("failed_to_download", "<urlopen error timed out>", ("failed_to_download", "timeout")),
        ("failed_to_download", "The read operation timed out", ("failed_to_download", "timeout")),
        (
            "failed_to_download",
            "<urlopen error [Errno 111] Connection refused>",
            ("failed_to_download", "connection"),
        ),
        ("failed_to_download", "Use of image disallowed by X-Robots-Tag directive", ("blocked", "opt_out")),
        (
            "failed_to_download",
            "<urlopen error private address guard: host 'localhost' resolves to non-public address 127.0.0.1>",
            ("blocked", "private_address"),
        ),
        ("failed_to_resize", "Image decoding error", ("failed_to_decode", "decode")),
        ("failed_to_resize", "image too small", ("rejected_by_resizer", "too_small")),
        ("failed_to_resize", "aspect ratio too large", ("rejected_by_resizer", "aspect_ratio")),
        ("failed_to_download", "something new", ("failed_to_download", "other")),
        # the fetch policy's own refusals (their messages as the policy words them)
        (
            "failed_to_download",
            "<urlopen error scheme guard: redirect to a 'ftp' URL refused, only http(s) is fetched>",
            ("blocked", "scheme"),
        ),
        (
            "failed_to_download",
            "<urlopen error robots.txt of http://h disallows this URL for user agent 'pairsmith' "
            "(download.respect_robots_txt)>",
            ("blocked", "opt_out"),
        ),
        (
            "failed_to_download",
            "fetch took longer than 60 s (download.deadline_s)",
            ("failed_to_download", "deadline"),
        ),
        (
            "failed_to_download",
            "<urlopen error fetch took longer than 60 s (download.deadline_s)>",
            ("failed_to_download", "deadline"),
        ),
        (
            "failed_to_download",
            "fetch received more than 67108864 bytes (download.max_bytes)",
            ("failed_to_download", "too_large"),
        ),
        (
            "failed_to_resize",
            "image of 12000x12000 pixels is over download.max_image_pixels=100000000",
            ("failed_to_decode", "too_large"),
        ),
        (
            "failed_to_resize",
            "Image decoding error: unreadable header (UnidentifiedImageError: cannot identify image file)",
            ("failed_to_decode", "decode"),
        ),
        # the kinds `retry` picks, each told apart
        ("failed_to_download", "HTTP Error 500: Internal Server Error", ("failed_to_download", "http_500")),
        ("failed_to_download", "[Errno 104] Connection reset by peer", ("failed_to_download", "connection")),
        (
            "failed_to_download",
            "Remote end closed connection without response",
            ("failed_to_download", "connection"),
        ),
        (
            "failed_to_download",
            "IncompleteRead(100 bytes read, 900 more expected)",
            ("failed_to_download", "connection"),
        ),
        (
            "failed_to_download",
            "<urlopen error [Errno 113] No route to host>",
            ("failed_to_download", "connection"),
        ),
        (
            "failed_to_download",
            "<urlopen error [Errno -5] No address associated with hostname>",
            ("failed_to_download", "dns"),
        ),
    ],
)
def test_classify(status, message, expected):
    assert classify(status, message) == expected


@pytest.mark.parametrize(
    ("message", "source"),
    [
        ("Use of image disallowed by X-Robots-Tag directive", "x_robots_tag"),
        (
            "<urlopen error robots.txt of http://h disallows this URL (download.respect_robots_txt)>",
            "robots_txt",
        ),
    ],
)
def test_opt_out_source(message, source):
    assert opt_out_source(message) == source
