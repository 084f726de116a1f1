import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairsmith.pipelines.ingest import InputError, cut_shards, list_input_files, stable_uid
from pairsmith.schemas.config import InputConfig


def _rows(path, **cfg):
    config = InputConfig(**cfg)
    return [row for _, t in cut_shards(0, str(path), config) for row in t.to_pylist()]


def test_reads_every_format_with_extra_columns(tmp_path):
    pq.write_table(
        pa.table({"url": ["http://a.example/1.jpg"], "caption": ["one"], "n": [1]}), tmp_path / "a.parquet"
    )
    (tmp_path / "b.csv").write_text('url,caption,n\nhttp://a.example/2.jpg,"two, with comma",2\n')
    (tmp_path / "c.tsv").write_text("url\tcaption\tn\nhttp://a.example/3.jpg\tthree\t3\n")
    (tmp_path / "d.jsonl").write_text(
        json.dumps({"url": "http://a.example/4.jpg", "caption": "four", "n": 4}) + "\n"
    )
    files = list_input_files(str(tmp_path))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["a.parquet", "b.csv", "c.tsv", "d.jsonl"]
    assert list_input_files(str(tmp_path / "*.csv")) == [str(tmp_path / "b.csv")]
    rows = [r for f in files for r in _rows(f)]
    assert [r["caption"] for r in rows] == ["one", "two, with comma", "three", "four"]
    assert [str(r["n"]) for r in rows] == ["1", "2", "3", "4"]
    assert all(r["input_problem"] is None for r in rows)
    assert rows[0]["uid"] == stable_uid("http://a.example/1.jpg", "one")


def test_bad_rows_are_kept_with_a_reason(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b"url,caption\n"
        b"http://a.example/1.jpg,caf\xe9 in latin-1\n"
        b",no url\n"
        b"ftp://a.example/x.jpg,ftp\n"
        b"not a url,text\n"
        b"http://a.example/1.jpg,caf\xe9 in latin-1\n"
    )
    rows = _rows(path)
    assert len(rows) == 5
    assert rows[0]["caption"] == "caf\ufffd in latin-1"
    assert [r["input_problem"] is None for r in rows] == [True, False, False, False, True]
    assert rows[0]["uid"] == rows[4]["uid"]  # equal rows, equal uid
    assert [r["source_row"] for r in rows] == [0, 1, 2, 3, 4]


def test_jsonl_bad_lines_become_invalid_rows(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"url": "http://a.example/1.jpg", "caption": "ok"}\n{not json\n[1, 2]\n')
    rows = _rows(path)
    assert len(rows) == 3
    assert rows[0]["input_problem"] is None
    assert "line 2" in rows[1]["input_problem"] and "line 3" in rows[2]["input_problem"]


def test_shards_are_cut_in_order(tmp_path):
    n = 25
    pq.write_table(
        pa.table({"url": [f"http://a.example/{i}.jpg" for i in range(n)], "caption": ["c"] * n}),
        tmp_path / "a.parquet",
    )
    shards = list(cut_shards(3, str(tmp_path / "a.parquet"), InputConfig(shard_size=10)))
    assert [name for name, _ in shards] == ["0003-00000", "0003-00001", "0003-00002"]
    assert [t.num_rows for _, t in shards] == [10, 10, 5]
    assert pa.concat_tables([t for _, t in shards]).column("source_row").to_pylist() == list(range(n))


def test_whole_file_problems_are_clear_errors(tmp_path):
    (tmp_path / "x.csv").write_text("link,text\nhttp://a.example/1.jpg,one\n")
    with pytest.raises(InputError, match=r"no column 'url' \(columns: link, text\)"):
        _rows(tmp_path / "x.csv")
    assert _rows(tmp_path / "x.csv", url_col="link", caption_col="text")[0]["caption"] == "one"
    with pytest.raises(InputError, match="no input files"):
        list_input_files(str(tmp_path / "missing*.parquet"))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="broken.parquet: cannot read as parquet"):
        _rows(tmp_path / "broken.parquet")


def test_empty_file_has_no_rows(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert _rows(tmp_path / "empty.csv") == []


def test_input_columns_named_like_output_columns_are_kept_renamed(tmp_path):
    pq.write_table(
        pa.table({"url": ["http://a.example/1.jpg"], "caption": ["c"], "status": ["mine"]}),
        tmp_path / "a.parquet",
    )
    assert _rows(tmp_path / "a.parquet")[0]["input_status"] == "mine"
