"""Counting on a Dask cluster gives the single-machine model to the last bit (issue 13, section 4).

One ``LocalCluster`` of two worker processes serves the whole module (starting one costs about a
second); every test is skipped when Dask is absent (``pip install 'scratchgen[dask]'``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchgen import ScratchgenError, load
from scratchgen.errors import CorpusError
from scratchgen.ngram import NGramCounts, NGramModel
from scratchgen.ngram.distributed import _range_pieces, _splits
from scratchgen.text import Tokenizer, read_corpus


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab é漢\t", max_size=9), max_size=12),
    ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=12, max_size=12),
    last=st.booleans(),
    blocksize=st.integers(1, 40),
    piece=st.integers(1, 16),
)
def test_the_byte_ranges_of_a_file_hold_each_line_once(tmp_path_factory, lines, ends, last, blocksize, piece):
    """Read range by range, piece by piece, a file gives the text of ``open`` (universal newlines): no line
    lost, split or read twice, whatever the ranges and pieces (no Dask needed)."""
    text = "".join(line + end for line, end in zip(lines, ends))
    if lines and not last:
        text = text[: -len(ends[len(lines) - 1])]  # no newline at the end of the file
    path = tmp_path_factory.mktemp("ranges") / "c.txt"
    path.write_bytes(text.encode())
    with open(path, encoding="utf-8", newline=None) as f:
        expected = f.read()
    pieces = [p for s in _splits(str(path), blocksize, "utf-8") for p in _range_pieces(*s, "utf-8", piece)]
    assert all(p.endswith("\n") for p in pieces)
    assert "".join(pieces) == expected + ("" if expected.endswith("\n") or not expected else "\n")


def test_an_encoding_without_a_newline_byte_is_read_whole(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("ab\ncd\n", encoding="utf-16")
    assert _splits(str(path), 4, "utf-16") == [(str(path), 0, -1)]
    assert "".join(_range_pieces(str(path), 0, -1, "utf-16", 3)) == "ab\ncd\n"


distributed = pytest.importorskip("distributed")
db = pytest.importorskip("dask.bag")

from scratchgen.ngram.distributed import connect, count_with_dask  # noqa: E402

TEXT = (
    "the cat sat on the mat\n"
    "\n"
    "the dog sat on the log\r\n"
    "a cat and a dog\n"
    "\n\n"
    "Ünïcödé wörds, and CJK 漢字 too\n"
    "the end\n"
) * 7


@pytest.fixture(scope="module")
def client():
    c = connect("local:2")
    yield c
    c.close()
    c.cluster.close()


def same_model(a: NGramModel, b: NGramModel) -> None:
    assert a.vocab_.to_list() == b.vocab_.to_list()
    for name in ("keys_", "logp_", "bow_"):
        for x, y in zip(getattr(a, name), getattr(b, name)):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.discounts_ == b.discounts_


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("order", [1, 3, 5])
def test_a_file_counted_by_the_workers_gives_the_same_model(client, tmp_path, level, order):
    path = tmp_path / "corpus.txt"
    path.write_bytes(TEXT.encode())
    tok = Tokenizer(level)
    # Blocks of 50 bytes: many partitions, some of them only blank lines.
    counts, vocab = count_with_dask(str(path), order, tok, client, blocksize=50)
    merged = NGramModel(order=order, tokenizer=tok).fit_counts(counts, vocab)
    same_model(merged, NGramModel(order=order, tokenizer=tok).fit(read_corpus(str(path), tok)))


def test_a_bag_of_texts_and_a_list_of_files(client, tmp_path):
    lines = [line for line in TEXT.splitlines() if line]
    bag = db.from_sequence(lines, npartitions=4)
    expected = NGramModel(order=4).fit(lines)
    same_model(NGramModel(order=4).fit_dask(bag, client=client), expected)
    counts, vocab = NGramCounts.from_dask(bag, order=4, client=client)
    same_model(NGramModel(order=4).fit_counts(counts, vocab), expected)
    halves = [tmp_path / "a.txt", tmp_path / "b.txt"]
    halves[0].write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    halves[1].write_text("\n".join(lines[10:]) + "\n", encoding="utf-8")
    same_model(NGramModel(order=4).fit_dask([str(p) for p in halves], client=client), expected)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(alphabet="abcé 漢\t", min_size=1, max_size=12), min_size=1, max_size=30),
    parts=st.integers(1, 5),
    order=st.integers(1, 4),
)
def test_any_split_gives_the_same_counts(client, texts, parts, order):
    """Counts are sums: however the corpus is split into partitions, the merged counts are the whole's."""
    texts = [t for t in texts if t]
    bag = db.from_sequence(texts, npartitions=min(parts, len(texts)))
    counts, vocab = count_with_dask(bag, order, Tokenizer(), client)
    model = NGramModel(order=order).fit(texts)
    assert vocab.to_list() == model.vocab_.to_list()
    from_counts = NGramModel(order=order).fit_counts(counts, vocab)
    assert all(np.array_equal(a, b) for a, b in zip(from_counts.logp_, model.logp_))


def test_a_literal_unk_word_is_counted_as_in_one_process(client, tmp_path):
    """A partition whose only word is a literal <unk> has no ordinary token, yet its counts are kept."""
    lines = ["<unk>", "<unk> <unk>", "a b <unk>", "b a"]
    tok = Tokenizer("word")
    expected = NGramModel(order=3, tokenizer=tok).fit(lines)
    bag = db.from_sequence(lines, npartitions=4)
    same_model(NGramModel(order=3, tokenizer=tok).fit_dask(bag, client=client), expected)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts, vocab = count_with_dask(str(path), 3, tok, client, blocksize=7)
    same_model(NGramModel(order=3, tokenizer=tok).fit_counts(counts, vocab), expected)


def test_local_workers_keep_the_allocators_sliding_mmap_threshold(client):
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_ (2.4x the CPU time of counting); connect leaves it unset."""
    import os

    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        pytest.skip("set in this process's environment: the workers inherit it, as they should")
    assert set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()) == {None}


def test_a_local_cluster_serves_no_dashboard_and_leaves_port_8787_alone(recwarn):
    """Dask's scheduler serves HTTP even with dashboard_address=None, on :8787 by default (a second cluster then
    warns "Port 8787 is already in use"): connect puts it on a free loopback port and serves no dashboard."""
    import urllib.error
    import urllib.request

    with connect("local:1") as c:
        server = c.cluster.scheduler.http_server
        assert (server.address, server.port != 8787) == ("127.0.0.1", True)
        with pytest.raises(urllib.error.HTTPError) as e:  # the dashboard's page is not there
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/status", timeout=10)
        assert e.value.code == 404
        c.cluster.close()
    assert not [w for w in recwarn if "8787" in str(w.message)]


def test_bad_input_is_one_clear_error(client, tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        count_with_dask(str(tmp_path / "missing.txt"), 3, client=client)
    with pytest.raises(CorpusError, match="dask.bag"):
        count_with_dask(42, 3, client=client)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty corpus"):
        count_with_dask(str(empty), 3, client=client)
    with pytest.raises(ScratchgenError, match="local:N"):
        connect("local:0")


def test_the_command_line_counts_on_a_local_cluster(tmp_path):
    from scratchgen.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    args = ["train", "ngram", "--order", "3", "--level", "word", str(corpus)]
    assert main(args + ["-o", str(a), "--dask", "local:1", "--partition-size", "64"]) == 0
    assert main(args + ["-o", str(b)]) == 0
    same_model(load(a), load(b))
    with pytest.raises(SystemExit) as e:
        main(["train", "ngram", "--from-arpa", "x.arpa", "-o", str(a), "--dask", "local:1"])
    assert e.value.code == 2
