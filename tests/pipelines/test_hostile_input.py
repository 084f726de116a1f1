"""Hostile input files: every row is kept with a status, never a crash (issue 12, items 5-8)."""

import io
import random
import time
import warnings

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LOCAL
from PIL import Image
from prefect.testing.utilities import prefect_test_harness

from pairsmith.flows.cli import main
from pairsmith.flows.demo_site import LocalImageServer, Route
from pairsmith.pipelines.ingest import RESERVED, InputWarning, column_names, cut_shards, split_problem
from pairsmith.schemas.config import InputConfig

BAD_URLS = [
    "http://[::1/x.jpg",  # unbalanced IPv6 bracket: urlsplit raises
    "http://[not-an-ip]/x.jpg",  # bracketed host that is no IP address
    "http://host:99999/x.jpg",  # port out of range
    "http://host:abc/x.jpg",  # port not a number
    "http://exa\uff03mple.com/x.jpg",  # netloc changes under NFKC normalisation
    "http://a..b/x.jpg",  # empty DNS label
    "http://" + "a" * 64 + ".com/x.jpg",  # DNS label over 63 characters
    "http://example.com/a b.jpg",  # whitespace: http.client refuses to send it
    "http://example.com/\x00.jpg",  # control character
]


def _read(path, **cfg) -> tuple[list[dict], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = [row for _, t in cut_shards(0, str(path), InputConfig(**cfg)) for row in t.to_pylist()]
    return rows, [w for w in caught if issubclass(w.category, InputWarning)]


def test_every_url_parse_error_is_an_invalid_row(tmp_path):
    good = ["http://example.com/x.jpg", "https://[::1]:8443/x.jpg", "http://b\u00fccher.example/x.jpg"]
    pq.write_table(pa.table({"url": BAD_URLS + good, "caption": ["c"] * 12}), tmp_path / "a.parquet")
    rows, _ = _read(tmp_path / "a.parquet")
    kinds = [split_problem(r["input_problem"])[0] if r["input_problem"] else None for r in rows]
    assert kinds == ["invalid_url"] * len(BAD_URLS) + [None] * len(good)
    assert "Invalid IPv6 URL" in split_problem(rows[0]["input_problem"])[1]
    assert "port" in split_problem(rows[2]["input_problem"])[1].lower()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_repeated_column_names_are_numbered_with_one_warning(tmp_path, fmt):
    path = tmp_path / f"a.{fmt}"
    names = ["url", "caption", "caption", "n", "caption", "n"]
    values = ["http://example.com/1.jpg", "first", "second", "1", "third", "2"]
    if fmt == "parquet":
        arrays = [pa.array([v] * 3) for v in values]
        pq.write_table(pa.Table.from_arrays(arrays, names=names), path, row_group_size=1)
    else:
        sep = "," if fmt == "csv" else "\t"
        path.write_text(sep.join(names) + "\n" + (sep.join(values) + "\n") * 3)
    rows, caught = _read(path)
    assert len(rows) == 3
    assert {k: rows[0][k] for k in ("caption", "caption_2", "caption_3", "n", "n_2")} == {
        "caption": "first",
        "caption_2": "second",
        "caption_3": "third",
        "n": "1",
        "n_2": "2",
    }
    assert len(caught) == 1
    assert "caption -> caption_2, caption_3" in str(caught[0].message)


def test_columns_named_like_pairsmith_columns_get_a_counter(tmp_path):
    names = ["url", "caption", "input_uid", "uid", "input_problem", "status", "input_status_2"]
    names += ["input_status", "clip_score_b32", "input_uid_2"]
    values = {n: ["http://example.com/x.jpg" if n == "url" else f"{n}!"] for n in names}
    pq.write_table(pa.table(values), tmp_path / "a.parquet")
    row = _read(tmp_path / "a.parquet")[0][0]
    assert row["input_uid"] == "input_uid!"  # the input's own names are kept when free
    assert row["input_uid_3"] == "uid!"  # input_uid and input_uid_2 are the input's: next counter
    assert row["input_problem_2"] == "input_problem!"  # pairsmith's own column stays pairsmith's
    assert row["input_problem"] is None
    assert row["input_status_3"] == "status!"
    assert row["input_clip_score_b32"] == "clip_score_b32!"
    assert list(row)[6:] == [
        "input_uid",
        "input_uid_3",
        "input_problem_2",
        "input_status_3",
        "input_status_2",
        "input_status",
        "input_clip_score_b32",
        "input_uid_2",
    ]


def test_renamed_columns_are_always_unique_and_never_pairsmith_names():
    pool = ["url", "caption", "uid", "input_uid", "input_uid_2", "status", "input_problem", "input_problem_2"]
    pool += ["clip_score", "clip_score_b32", "clip_score_b32_2", "input_clip_score_b32", "caption_2", "n"]
    rng = random.Random(0)
    for _ in range(3000):
        names = ["url", "caption", *rng.choices(pool, k=rng.randint(0, 9))]
        out, _ = column_names(names, InputConfig())
        assert len(set(out)) == len(out) and out[:2] == ["url", "caption"]
        assert not any(n in RESERVED or n.startswith("clip_score_") for n in out[2:])
        kept = [
            i for i, n in enumerate(names) if n not in RESERVED | set(names[:i]) and "clip_score" not in n
        ]
        assert all(out[i] == names[i] for i in kept)  # free names are never changed
        assert column_names(names, InputConfig())[0] == out


def test_a_ragged_line_in_a_large_file_is_one_invalid_row(tmp_path):
    n, bad = 100_000, 89_999  # the 90,000th data row (line 90,001) has a field too many
    lines = ["url,caption,n"] + [f"http://example.com/{i}.jpg,caption {i},{i}" for i in range(n)]
    lines[1 + bad] += ",surplus"
    lines[1 + 5] = 'http://example.com/5.jpg,"a caption\nover two lines",5'
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    rows, caught = _read(tmp_path / "big.csv", shard_size=30_000)
    elapsed = time.perf_counter() - start
    assert len(rows) == n
    assert [r["source_row"] for r in rows] == list(range(n))
    assert [r["n"] for r in rows[bad - 1 : bad + 2]] == [str(bad - 1), None, str(bad + 1)]
    row = rows[bad]
    kind, message = split_problem(row["input_problem"])
    assert (kind, message) == ("bad_line", "line 90001: 4 fields, expected 3")
    assert row["url"] is None and row["caption"] == lines[1 + bad]  # the raw line, to fix by hand
    assert sum(r["input_problem"] is not None for r in rows) == 1
    assert rows[5]["caption"] == "a caption\nover two lines"
    assert len(caught) == 1 and "big.csv: line 90001" in str(caught[0].message)
    print(f"ingest of {n} csv rows: {elapsed:.2f} s")


def test_bad_lines_everywhere_lose_no_row(tmp_path):
    text = "url,caption\nonly-one-field\nhttp://example.com/1.jpg,ok\na,b,c\na,b,c,d\nhttp://example.com/2.jpg,ok\nlast\n"
    (tmp_path / "a.csv").write_text(text)
    rows, caught = _read(tmp_path / "a.csv")
    assert [r["caption"] for r in rows] == ["only-one-field", "ok", "a,b,c", "a,b,c,d", "ok", "last"]
    assert [split_problem(r["input_problem"])[0] if r["input_problem"] else None for r in rows] == [
        "bad_line",
        None,
        "bad_line",
        "bad_line",
        None,
        "bad_line",
    ]
    assert len(caught) == 1


def test_jsonl_bad_lines_keep_their_text(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('\ufeff{"url": "http://example.com/1.jpg", "caption": "ok"}\n{not json\n')  # with a BOM
    rows, caught = _read(path)
    assert rows[0]["input_problem"] is None
    assert split_problem(rows[1]["input_problem"])[0] == "bad_line"
    assert rows[1]["caption"] == "{not json" and len(caught) == 1


@pytest.mark.parametrize(
    "name, content",
    [
        ("header.csv", "url,caption\n"),
        ("header.tsv", "url\tcaption\n"),
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
        ("zero.parquet", None),
    ],
)
def test_zero_row_files_ingest_to_no_rows(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        pq.write_table(
            pa.table({"url": pa.array([], pa.string()), "caption": pa.array([], pa.string())}), path
        )
    else:
        path.write_text(content)
    assert _read(path) == ([], [])


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.slow
def test_a_hostile_input_folder_runs_to_the_end(tmp_path):
    image = Route(body=_jpeg(), headers=(("Content-Type", "image/jpeg"),))
    with LocalImageServer({"/1.jpg": image, "/2.jpg": image}) as server, prefect_test_harness():
        one, two = server.url("/1.jpg"), server.url("/2.jpg")
        inputs = tmp_path / "in"
        inputs.mkdir()
        (inputs / "a.csv").write_text(
            "url,caption,caption,uid,input_problem\n"
            f"{one},a green photo,alt,u1,p1\n"
            "http://[::1/x.jpg,bracket,alt,u2,p2\n"
            f"{two},too,many,fields,here,!\n"
            "http://host:99999/x.jpg,port,alt,u3,p3\n"
            f"{two},another green photo,alt,u4,p4\n"
        )
        names = ["url", "caption", "uid", "input_uid", "input_problem"]
        pq.write_table(
            pa.table({n: [one, "http://host:abc/x.jpg"] if n == "url" else [n, n] for n in names}),
            inputs / "b.parquet",
        )
        (inputs / "c.csv").write_text("url,caption\n")
        sets = [a for s in [*LOCAL, "input.shard_size=2"] for a in ("--set", s)]
        assert main(["run", "--input", str(inputs), "--out", str(tmp_path / "out"), *sets]) == 0
    frames = [pl.read_parquet(p) for p in sorted((tmp_path / "out" / "data").glob("*.parquet"))]
    df = pl.concat(frames, how="diagonal_relaxed").sort("source_file", "source_row")
    assert df.select("source_file", "source_row").is_unique().all()
    assert [(f.rsplit("/", 1)[-1], r) for f, r in df.select("source_file", "source_row").rows()] == [
        *(("a.csv", i) for i in range(5)),
        *(("b.parquet", i) for i in range(2)),
    ]
    assert df["status"].to_list() == [
        "success",
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "success",
        "success",
        "invalid_input",
    ]
    assert df["error_kind"].to_list()[1] == df["error_kind"].to_list()[3] == "invalid_url"
    assert "line 4" in df["error_message"][2]
    assert df["caption_2"].to_list()[:2] == ["alt", "alt"]
    assert df["input_uid"].to_list()[:2] == ["u1", "u2"]  # the csv's uid column
    assert df["input_problem_2"].to_list() == ["p1", "p2", None, "p3", "p4", "input_problem", "input_problem"]
    assert df["input_uid_2"].to_list()[5:] == ["uid", "uid"]  # the parquet's uid: input_uid is taken
