"""Issue 9 as the command line's contract: every repro ends in exit 0, 1 or 2, one line on stderr for an
error, no traceback, and no input file changed.

Each row is one of the issue's numbered reports, run through ``scratchgen.cli.main`` in this process
(argparse's usage errors arrive as ``SystemExit(2)``). The families' own tests check what the
successful cases compute; this table checks what a user sees.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from scratchgen.cli import main

ENGLISH_WORDS = "the dog barks . a cat sleeps . the dogs bark ."


def _files(tmp):
    """The inputs of the table: corpora, a model of each kind, and their edited copies."""
    f = {}
    corpus = tmp / "corpus.txt"
    corpus.write_text("the cat sat\nthe dog ran\na cat ran\nthe dog sat on the cat\n" * 5, encoding="utf-8")
    f["corpus"] = corpus
    binary = tmp / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    f["binary"] = binary
    latin = tmp / "latin.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me\nna\u00efve\n".encode("latin-1"))
    f["latin"] = latin
    arpa = tmp / "huge.arpa"
    arpa.write_text("\\data\\\nngram 1=100000000000\n\n\\1-grams:\n-1.0\t<unk>\t0\n\n\\end\\\n")
    f["huge_arpa"] = arpa
    long_line = tmp / "long.txt"
    long_line.write_text(" ".join(["the"] * 1000) + "\n")
    f["long_line"] = long_line
    explosive = tmp / "explosive.cfg"
    explosive.write_text("S -> S S [0.4999] | 'a' [0.5001]\n")
    f["explosive"] = explosive
    renormalised = tmp / "renorm.cfg"
    renormalised.write_text("S -> 'a' [0.3] | 'b' [0.4]\n")
    f["renorm"] = renormalised
    empty = tmp / "empty.txt"
    empty.write_text("\n\n")
    f["empty"] = empty
    labelled = tmp / "labelled.txt"
    labelled.write_text("pos\tthe cat sat\nneg\tthe dog ran\npos\ta cat sat\nneg\ta dog ran\n" * 5, encoding="utf-8")
    f["labelled_corpus"] = labelled
    strange = tmp / "strange_labels.txt"
    strange.write_text("pos\tthe cat sat\nmaybe\tthe dog\n", encoding="utf-8")
    f["strange_labels"] = strange
    for name, argv in {
        "ngram": ["train", "ngram", str(corpus), "--order", "3", "--level", "word"],
        "rnn": ["train", "rnn", str(corpus), "--hidden", "16", "--max-steps", "3", "--quiet"],
        "unigram": ["train", "random", str(corpus)],
        "labelled": ["train", "random", str(labelled), "--labelled", "--level", "word"],
    }.items():
        out = tmp / f"{name}.npz"
        assert main([*argv, "-o", str(out)]) == 0, name
        f[name] = out
    return f


def _edited(src, dst, header=None, **arrays):
    with np.load(src, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if header is not None:
        h = json.loads(data["__header__"].tobytes())
        header(h)
        data["__header__"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    for key, value in arrays.items():
        data[key] = value
    np.savez(dst, **data)
    return dst


def _set(path, value):
    def edit(h):
        d = h
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return edit


# (id, argv template, expected exit, a phrase stderr must hold)
CASES = [
    # 1-5: crashes
    ("1-binary", ["train", "rnn", "{binary}", "-o", "{tmp}/m.npz"], 1, "not UTF-8"),
    ("1-latin1", ["train", "rnn", "{latin}", "-o", "{tmp}/m.npz"], 1, "not UTF-8 at byte 3"),
    ("2-hidden", ["train", "rnn", "{corpus}", "--hidden", "100000", "-o", "{tmp}/m.npz"], 1, "needs about"),
    ("3-arpa-counts", ["train", "ngram", "--from-arpa", "{huge_arpa}", "-o", "{tmp}/m.npz"], 1, "huge.arpa"),
    ("4-W_hh-shape", ["score", "{rnn_whh}", "{corpus}"], 1, "W_hh.0 has shape (16, 15), expected (16, 16)"),
    ("4-W_xh-3d", ["generate", "{rnn_3d}"], 1, "W_xh.0 has shape"),
    ("4-int", ["generate", "{rnn_int}"], 1, "W_hy has dtype int64"),
    ("4-complex", ["score", "{rnn_complex}", "{corpus}"], 1, "W_hy has dtype complex128"),
    ("4-str", ["score", "{rnn_str}", "{corpus}"], 1, "W_hy has dtype <U"),
    ("5-order-0-generate", ["generate", "{ngram_order0}"], 1, "order must be"),
    ("5-order-0-score", ["score", "{ngram_order0}", "{corpus}"], 1, "order must be"),
    ("5-nan", ["score", "{ngram_nan}", "{corpus}"], 1, "NaN"),
    ("5-positive", ["score", "{ngram_positive}", "{corpus}"], 1, "above the largest allowed value"),
    # 6-8: data loss
    ("6-lr-1e300", ["train", "rnn", "{corpus}", "--lr", "1e300", "--max-steps", "20", "--hidden", "8",
                    "--quiet", "-o", "{tmp}/diverged.npz"], 1, "--lr"),
    ("7-ngram-o-corpus", ["train", "ngram", "{corpus}", "-o", "{corpus}"], 1, "also an input"),
    ("7-rnn-curve-corpus", ["train", "rnn", "{corpus}", "--curve", "{corpus}", "--max-steps", "1",
                            "--hidden", "8", "-o", "{tmp}/m.npz"], 1, "also an input"),
    ("7-export-arpa-self", ["export-arpa", "{ngram}", "{ngram}"], 1, "also an input"),
    ("8-read-only", ["train", "random", "{corpus}", "-o", "{readonly}"], 1, "read-only"),
    # 11-12: unbounded
    ("11-long-line", ["grammar", "score", "builtin:english", "{long_line}"], 0, ""),
    ("12-explosive", ["grammar", "sample", "{explosive}", "-n", "200", "--seed", "0"], 0, "skipped"),
    # 25: one grammar resolver
    ("25-eval-reference-file", ["eval", "{unigram}", "--train", "{corpus}", "--reference", "{renorm}",
                                "-n", "5", "--no-discriminator"], None, ""),
    ("25-check-renormalised", ["grammar", "check", "{renorm}"], 0, "renormalis"),
    # 27-28: the command line's words
    ("28-n-0", ["generate", "{unigram}", "-n", "0"], 2, "-n"),
    ("28-top-p", ["generate", "{unigram}", "--top-p", "1.5"], 2, "--top-p"),
    ("28-neither", ["train", "ngram", "-o", "{tmp}/m.npz"], 2, "CORPUS"),
    ("27-unk-prompt", ["generate", "{unigram}", "--prompt", "zebra"], 1, "--unk-prompt"),
    ("27-min-max-tokens", ["generate", "{unigram}", "--min-tokens", "10", "--max-tokens", "5"], 1,
     "--min-tokens 10 is more than --max-tokens 5"),
    ("28-order-huge", ["train", "ngram", "{corpus}", "--order", "100000", "-o", "{tmp}/m.npz"], 2, "--order"),
    ("28-parse-nothing", ["grammar", "parse", "{renorm}"], 2, "nothing to parse"),
    # found by trying it as a new user: a text file given as a model, the demo's --out and an empty corpus
    ("text-as-model", ["generate", "{corpus}"], 1, "not a scratchgen model file"),
    ("demo-out-is-a-file", ["demo", "--corpus", "{corpus}", "--out", "{corpus}", "--quick"], 1, "is a file"),
    ("demo-empty-corpus", ["demo", "--corpus", "{empty}", "--quick"], 1, "at least 2 sequences"),
    # issue 11: labels at the command line
    ("label-unknown", ["generate", "{labelled}", "--label", "maybe"], 1, "this model knows 'neg', 'pos'"),
    ("label-empty", ["generate", "{labelled}", "--label", ""], 1, "unknown label ''"),
    ("label-on-unlabelled", ["generate", "{unigram}", "--label", "pos"], 1, "--label 'pos': this UnigramModel has no"),
    ("label-beam-needs-one", ["generate", "{labelled}", "--beam", "2"], 1, "needs --label, one of: neg, pos"),
    ("label-beam", ["generate", "{labelled}", "--beam", "2", "--label", "pos", "--max-tokens", "3"], 0, ""),
    ("label-generate", ["generate", "{labelled}", "--label", "neg", "-n", "2", "--seed", "0"], 0, ""),
    ("score-labelled", ["score", "{labelled}", "{labelled_corpus}", "--labelled", "--json"], 0, ""),
    ("score-labelled-unlabelled-model", ["score", "{unigram}", "{labelled_corpus}", "--labelled"], 1,
     "--labelled: this UnigramModel has no labels"),
    ("score-labelled-unknown", ["score", "{labelled}", "{strange_labels}", "--labelled"], 1,
     "unknown label 'maybe': this model knows 'neg', 'pos'"),
    ("score-labelled-no-tab", ["score", "{labelled}", "{corpus}", "--labelled"], 1, "line 1 has no tab"),
    ("score-labelled-mode", ["score", "{labelled}", "{labelled_corpus}", "--labelled", "--mode", "paragraphs"], 1,
     "--labelled reads one example a line"),
    ("classify", ["classify", "{labelled}", "{corpus}"], 0, ""),
    ("classify-json", ["classify", "{labelled}", "{labelled_corpus}", "--labelled", "--json"], 0, ""),
    ("classify-unlabelled-model", ["classify", "{unigram}", "{corpus}"], 1, "classify: this UnigramModel has no"),
    ("classify-no-tab", ["classify", "{labelled}", "{corpus}", "--labelled"], 1, "has no tab"),
    ("classify-empty", ["classify", "{labelled}", "{empty}"], 1, "no non-empty"),
    ("eval-labelled", ["eval", "{labelled}", "--train", "{labelled_corpus}", "--labelled", "-n", "4",
                       "--max-tokens", "10"], 0, ""),
    ("eval-labelled-unlabelled-model", ["eval", "{unigram}", "--train", "{labelled_corpus}", "--labelled",
                                        "-n", "2"], 1, "--labelled: this UnigramModel has no labels"),
    # issue 14: explain
    ("explain", ["explain", "{ngram}", "the cat sat", "--json", "--top", "3"], 0, ""),
    ("explain-html", ["explain", "{ngram}", "the cat sat", "--html", "{tmp}/page.html"], 0, ""),
    ("explain-label", ["explain", "{labelled}", "the cat", "--label", "pos"], 0, ""),
    ("explain-not-a-model", ["explain", "{corpus}", "the cat"], 1, "not a scratchgen model file"),
    ("explain-empty", ["explain", "{ngram}", ""], 1, "nothing to explain"),
    ("explain-tokenizers-differ", ["explain", "{ngram}", "{rnn}", "the cat"], 1, "splits text at word level"),
    ("explain-label-on-unlabelled", ["explain", "{unigram}", "the", "--label", "pos"], 1,
     "--label 'pos': this UnigramModel has no"),
    ("explain-top", ["explain", "{ngram}", "the", "--top", "-1"], 2, "--top"),
    ("explain-html-is-input", ["explain", "{ngram}", "the", "--html", "{ngram}"], 1, "also an input"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_contract")
    f = _files(tmp)
    rnn = f["rnn"]
    with np.load(rnn) as z:
        hy = z["param/W_hy"]
    f["rnn_whh"] = _edited(rnn, tmp / "whh.npz", **{"param/W_hh.0": np.zeros((16, 15))})
    f["rnn_3d"] = _edited(rnn, tmp / "w3d.npz", **{"param/W_xh.0": np.zeros((2, 2, 2))})
    f["rnn_int"] = _edited(rnn, tmp / "int.npz", **{"param/W_hy": hy.astype(np.int64)})
    f["rnn_complex"] = _edited(rnn, tmp / "complex.npz", **{"param/W_hy": hy.astype(np.complex128)})
    f["rnn_str"] = _edited(rnn, tmp / "str.npz", **{"param/W_hy": hy.astype(str)})
    ngram = f["ngram"]
    f["ngram_order0"] = _edited(ngram, tmp / "order0.npz", header=_set(["params", "order"], 0))
    with np.load(ngram) as z:
        lp2 = z["logp_2"]
    f["ngram_nan"] = _edited(ngram, tmp / "nan.npz", logp_2=np.full_like(lp2, np.nan))
    f["ngram_positive"] = _edited(ngram, tmp / "positive.npz", logp_2=np.abs(lp2) + 1.0)
    readonly = tmp / "readonly.npz"
    readonly.write_bytes(b"keep me")
    readonly.chmod(0o444)
    f["readonly"] = readonly
    f["tmp"] = tmp
    return f


@pytest.mark.parametrize("case_id, argv, code, phrase", CASES, ids=[c[0] for c in CASES])
def test_each_repro_ends_in_one_honest_line(files, capsys, case_id, argv, code, phrase):
    argv = [a.format(**files) for a in argv]
    watched = [p for k, p in files.items() if k != "tmp" and os.path.isfile(p)]
    before = {p: (open(p, "rb").read(), os.stat(p).st_mode) for p in watched}
    capsys.readouterr()
    try:
        result = main(argv)
    except SystemExit as e:  # argparse: a usage error
        result = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert result in (0, 1, 2)
    if code is not None:
        assert result == code, err
    if result != 0:  # exactly one line, the error (usage errors name the subcommand)
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert err.startswith("scratchgen: error:" if result == 1 else "scratchgen"), err
    assert phrase in err, err
    assert "pickle" not in err
    for p, snap in before.items():
        assert (open(p, "rb").read(), os.stat(p).st_mode) == snap, f"{p} changed"
    if case_id.startswith("6-"):
        assert not os.path.exists(files["tmp"] / "diverged.npz")  # a non-finite model is never saved
