"""``scratchgen explain`` at the command line: the table, JSON Lines, the HTML page, and one-line errors.

The numbers are :func:`scratchgen.explain`'s (tests/test_explain.py checks them); here, what a user sees:
one table row a token, one JSON object a line that equals the API's record, a page whose spans hold the
records and that names no external file, a headless Chromium screenshot of it (skipped without one).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from scratchgen import GrammarModel, NGramModel, RNNModel, Tokenizer, UnigramModel, explain, load
from scratchgen.cli import main

CORPUS = ["the cat sat", "the dog ran", "a cat ran", "the dog sat on the cat"]
WORDS = Tokenizer("word")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_explain")
    f = {"tmp": tmp}
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    f["corpus"] = str(corpus)
    models = {
        "ngram": NGramModel(order=3, tokenizer=WORDS).fit(CORPUS),
        "rnn": RNNModel(hidden=6, max_steps=5, valid_fraction=0.0, seed=0, tokenizer=WORDS).fit(CORPUS),
        "unigram_chars": UnigramModel().fit(CORPUS),
        "grammar": GrammarModel.from_grammar(
            "S -> NP VP [1.0]\nNP -> 'the' N [0.6] | 'a' N [0.4]\nN -> 'cat' [0.5] | 'dog' [0.5]\n"
            "VP -> 'sat' [0.5] | 'ran' [0.5]\n"
        ),
        "labelled": UnigramModel(tokenizer=WORDS).fit(CORPUS, labels=["x", "y", "x", "y"]),
    }
    for name, model in models.items():
        path = tmp / f"{name}.npz"
        model.save(path)
        f[name] = str(path)
    return f


def run(argv, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_has_one_row_a_token(files, capsys):
    code, out, _ = run(["explain", files["ngram"], "the cat sat on the dog", "--top", "2"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "the cat sat on the dog" and "log P = " in lines[1]
    head = lines[2].split()
    assert head[:5] == ["token", "log", "P", "bits", "rank"] and head[-2:] == ["top", "why"]
    rows = [line.split() for line in lines[3:] if line.strip()]
    assert [r[0] for r in rows] == ["the", "cat", "sat", "on", "the", "dog", "</s>"]
    e = explain(load(files["ngram"]), "the cat sat on the dog", top=2)
    for row, record in zip(rows, e["tokens"]):
        assert float(row[1]) == pytest.approx(record["logprob"], abs=5e-4)
        assert float(row[2]) == pytest.approx(record["bits"], abs=5e-4) and int(row[3]) == record["rank"]
        assert record["why"] in " ".join(row)
    # the columns are aligned: every row's rank ends in the same column as the header's "rank"
    ends = {line.index(" " + r[3] + "  ", line.index(r[2])) + 1 + len(r[3]) for line, r in zip(lines[3:], rows)}
    assert ends == {lines[2].index("rank") + 4}


def test_an_oov_token_is_marked_in_the_table(files, capsys):
    _, out, _ = run(["explain", files["ngram"], "the zebra"], capsys)
    assert "zebra (oov)" in out


def test_json_lines_equal_the_api_records_one_object_a_line(files, capsys, monkeypatch):
    code, out, _ = run(["explain", files["ngram"], "-", "--json"], capsys, "the cat sat\n\n a dog ran \n", monkeypatch)
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["text"] for o in objects] == ["the cat sat", " a dog ran "]
    model = load(files["ngram"])
    for o in objects:
        e = explain(model, o["text"])
        assert o["logprob"] == pytest.approx(e["logprob"]) == pytest.approx(model.logprob(o["text"]))
        assert [r["token"] for r in o["tokens"]] == [r["token"] for r in e["tokens"]]
        for mine, theirs in zip(o["tokens"], e["tokens"]):
            assert set(mine) == set(theirs) >= {"token", "logprob", "bits", "rank", "top", "ngram_length", "steps"}
            assert mine["rank"] == theirs["rank"] and mine["ngram_length"] == theirs["ngram_length"]
            assert mine["top"] == [list(x) for x in theirs["top"]]


def test_two_models_side_by_side(files, capsys):
    code, out, _ = run(["explain", files["ngram"], files["rnn"], "the dog sat", "--top", "1"], capsys)
    assert code == 0
    assert "bits(2)-bits" in out and "|h| = " in out and "-gram matched" in out
    code, out, _ = run(["explain", files["ngram"], files["rnn"], "the dog sat", "--json"], capsys)
    o = json.loads(out)
    assert o["other"]["logprob"] == pytest.approx(load(files["rnn"]).logprob("the dog sat"))
    for r in o["tokens"]:
        assert r["bits_difference"] == pytest.approx(r["other"]["bits"] - r["bits"])
        assert "hidden_norm" in r["other"]


def test_the_grammar_draws_its_parse_below_the_table(files, capsys):
    code, out, _ = run(["explain", files["grammar"], "the cat sat"], capsys)
    assert code == 0
    assert "Viterbi parse" in out and "+-- NP" in out and "N 'cat'" in out and "Pre(first 2)" in out
    code, out, _ = run(["explain", files["grammar"], "the cat sat", "--json"], capsys)
    assert json.loads(out)["parse"] == ["S", ["NP", "the", ["N", "cat"]], ["VP", "sat"]]


def test_a_label_explains_that_labels_model(files, capsys):
    code, out, _ = run(["explain", files["labelled"], "the cat", "--label", "x", "--json"], capsys)
    assert code == 0
    model = load(files["labelled"])
    assert json.loads(out)["logprob"] == pytest.approx(model.logprob("the cat", label="x"))
    code, out, _ = run(["explain", files["labelled"], "the cat", "--json"], capsys)
    assert json.loads(out)["logprob"] == pytest.approx(model.logprob("the cat"))


# --- one-line errors ---------------------------------------------------------------------------------------

ERRORS = [
    ("not-a-model", ["explain", "{corpus}", "a"], 1, "not a scratchgen model file"),
    ("second-not-a-model", ["explain", "{ngram}", "{corpus}", "a"], 1, "not a scratchgen model file"),
    ("empty-text", ["explain", "{ngram}", ""], 1, "nothing to explain: TEXT is empty"),
    ("blank-text", ["explain", "{ngram}", " \n "], 1, "nothing to explain"),
    ("tokenizers-differ", ["explain", "{ngram}", "{unigram_chars}", "the cat"], 1,
     "splits text at word level and MODEL2"),
    ("label-unlabelled", ["explain", "{ngram}", "the cat", "--label", "x"], 1,
     "--label 'x': this NGramModel has no labels"),
    ("label-unknown", ["explain", "{labelled}", "the cat", "--label", "z"], 1, "unknown label 'z'"),
    ("top-negative", ["explain", "{ngram}", "the cat", "--top", "-1"], 2, "--top"),
    ("top-huge", ["explain", "{ngram}", "the cat", "--top", "1000"], 2, "--top"),
    ("no-text", ["explain", "{ngram}"], 2, "TEXT"),
    ("html-is-an-input", ["explain", "{ngram}", "the cat", "--html", "{ngram}"], 1, "also an input"),
    ("html-is-model2", ["explain", "{ngram}", "{rnn}", "the cat", "--html", "{rnn}"], 1, "also an input"),
    ("html-in-a-missing-folder", ["explain", "{ngram}", "the cat", "--html", "{tmp}/no/such/page.html"], 1,
     "no/such"),
]


@pytest.mark.parametrize("case_id, argv, code, phrase", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_one_line(files, capsys, case_id, argv, code, phrase):
    watched = [files[k] for k in ("corpus", "ngram", "rnn")]
    before = [open(p, "rb").read() for p in watched]
    result, out, err = run([a.format(**files) for a in argv], capsys)
    assert result == code, err
    assert phrase in err, err
    if code == 1:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert [open(p, "rb").read() for p in watched] == before


def test_the_tokenizer_error_names_both_models(files, capsys):
    _, _, err = run(["explain", files["ngram"], files["unigram_chars"], "the cat"], capsys)
    assert files["ngram"] in err and files["unigram_chars"] in err


# --- the HTML page ---------------------------------------------------------------------------------------------


class Page(HTMLParser):
    """The spans of tokens, and every attribute that could name another file."""

    def __init__(self):
        super().__init__()
        self.spans = []  # (attrs, text)
        self.external = []
        self.tags = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        for name in ("src", "href", "srcset", "data", "action"):
            if name in attrs:
                self.external.append((tag, name, attrs[name]))
        if tag == "link" or (tag == "script" and "src" in attrs):
            self.external.append((tag, attrs))
        if tag == "span" and "tok" in (attrs.get("class") or "").split():
            self._open = [attrs, ""]
            self.spans.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "span":
            self._open = None


def page_of(files, capsys, argv, name):
    path = os.path.join(files["tmp"], name)
    code, _, err = run(["explain", *argv, "--html", path], capsys)
    assert code == 0, err
    page = Page()
    text = open(path, encoding="utf-8").read()
    page.feed(text)
    return page, text


def test_the_page_has_one_span_a_token_holding_its_record(files, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("the cat sat\nthe zebra ran\n"))
    page, text = page_of(files, capsys, [files["ngram"], "-"], "one.html")
    assert page.external == [] and "http" not in text
    assert page.tags[0] == "html" and "style" in page.tags
    model = load(files["ngram"])
    expected = [r for t in ["the cat sat", "the zebra ran"] for r in explain(model, t)["tokens"]]
    assert len(page.spans) == len(expected)
    for (attrs, shown), record in zip(page.spans, expected):
        data = json.loads(attrs["data-record"])
        assert data["token"] == record["token"] == shown
        assert data["logprob"] == pytest.approx(record["logprob"]) and data["rank"] == record["rank"]
        assert data["ngram_length"] == record["ngram_length"]
        assert f"rank {record['rank']}" in attrs["title"] and record["why"] in attrs["title"]
        assert attrs["style"].startswith("background:hsl(")


def test_the_page_colours_surprise_red_and_shows_two_models_and_their_difference(files, capsys):
    page, _ = page_of(files, capsys, [files["ngram"], files["rnn"], "the cat sat"], "two.html")
    rows = {}
    for attrs, _ in page.spans:
        rows.setdefault(attrs["data-model"], []).append(attrs)
    assert sorted(rows) == ["1", "2", "diff"] and {len(v) for v in rows.values()} == {4}
    for attrs in rows["diff"]:
        assert "bits_difference" in json.loads(attrs["data-record"])
    hues = [(json.loads(a["data-record"])["bits"], int(a["style"].split("(")[1].split(",")[0])) for a in rows["1"]]
    for (_, h1), (_, h2) in zip(sorted(hues), sorted(hues)[1:]):
        assert h2 <= h1  # more bits, redder (hue towards 0)
    infinite = [a for a in rows["1"] if json.loads(a["data-record"])["bits"] == "inf"]
    assert all("hsl(0," in a["style"] for a in infinite)


def test_the_page_is_written_as_an_output(files, capsys):
    """The page goes through atomic_write: an existing page is replaced whole, and no temporary file is left."""
    path = os.path.join(files["tmp"], "again.html")
    with open(path, "w") as f:
        f.write("old")
    page_of(files, capsys, [files["grammar"], "the cat sat"], "again.html")
    assert open(path, encoding="utf-8").read().startswith("<!DOCTYPE html>")
    assert not [n for n in os.listdir(files["tmp"]) if n.startswith(".tmp-")]


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _png_pixels(path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (enough to see whether anything was drawn)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_the_page_renders_in_headless_chromium(files, capsys, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium or chrome binary on PATH")
    _, _ = page_of(files, capsys, [files["ngram"], files["rnn"], "the cat sat on the dog"], "shot.html")
    page = os.path.join(files["tmp"], "shot.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", f"--screenshot={shot}",
         "--window-size=1000,600", f"file://{page}"],
        capture_output=True, timeout=120, check=False,
    )
    assert shot.exists(), "the browser wrote no screenshot"
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1000, 600)
    # a rendered page of coloured tokens is not one flat colour: many distinct byte values in the scanlines
    assert len(set(pixels)) > 16
