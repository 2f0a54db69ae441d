"""Issue 9, the shared mechanisms: each repro of a user's first mistake, as a test.

The family-specific repros live beside their families (``tests/nn/test_nn_hardening.py``,
``tests/ngram/test_ngram_hardening.py``, ``tests/grammar/test_grammar_hardening.py``); the fuzz suite is
``test_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import scratchgen
from scratchgen import CorpusError, ModelFileError, UniformModel, UnigramModel
from scratchgen.cli import main, print_json
from scratchgen.decoding import beam_search, generate, iter_generate
from scratchgen.errors import OutputError, ResourceError, ScratchgenError
from scratchgen.io import ArraySpec, atomic_write, protected_inputs, validate_arrays
from scratchgen.model import MODEL_REGISTRY
from scratchgen.resources import check_memory, format_bytes
from scratchgen.text import Tokenizer, check_tokens, read_corpus, word_tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "scratchgen", *argv], capture_output=True, text=True, env=env,
                          timeout=300)


def snapshot(path) -> tuple[bytes, int]:
    return open(path, "rb").read(), os.stat(path).st_mode


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat\nthe dog ran\na cat ran\n", encoding="utf-8")
    return path


# --- the validator (items 4 and 5 use it for their classes) --------------------------------------------


@pytest.mark.parametrize("array, problem", [
    (np.zeros((2, 3)), "W has shape (2, 3), expected (2, 2)"),
    (np.zeros((2, 2, 1)), "W has shape (2, 2, 1), expected (2, 2)"),
    (np.zeros((2, 2), dtype=np.int64), "W has dtype int64, expected floating-point"),
    (np.zeros((2, 2), dtype=np.complex128), "W has dtype complex128, expected floating-point"),
    (np.array([["a", "b"], ["c", "d"]]), "W has dtype <U1, expected floating-point"),
    (np.array([[0.0, np.nan], [0, 0]]), "W holds NaN"),
    (np.array([[0.0, np.inf], [0, 0]]), "W holds +inf"),
    (np.array([[0.0, -np.inf], [0, 0]]), "W holds -inf"),
])
def test_validator_names_the_array_and_what_is_wrong(array, problem):
    with pytest.raises(ModelFileError) as e:
        validate_arrays("M", {"W": array}, {"W": ArraySpec((2, 2))})
    assert str(e.value) == f"not a valid scratchgen M file: {problem}"


def test_validator_ranges_order_and_names():
    logp = ArraySpec((None,), allow_neg_inf=True, high=0.0)
    validate_arrays("M", {"lp": np.array([-np.inf, -1.0, 0.0])}, {"lp": logp})  # fine
    with pytest.raises(ModelFileError, match="lp holds 0.5, above the largest allowed value 0"):
        validate_arrays("M", {"lp": np.array([-1.0, 0.5])}, {"lp": logp})
    with pytest.raises(ModelFileError, match="k is not strictly increasing"):
        validate_arrays("M", {"k": np.array([1, 3, 3])}, {"k": ArraySpec((None,), kind="i", increasing=True)})
    with pytest.raises(ModelFileError, match="the array b is missing"):
        validate_arrays("M", {"a": np.zeros(1)}, {"a": ArraySpec((1,)), "b": ArraySpec((1,))})
    with pytest.raises(ModelFileError, match="unexpected array c"):
        validate_arrays("M", {"a": np.zeros(1), "c": np.zeros(1)}, {"a": ArraySpec((1,))})


def _edit_npz(src, dst, **replace):
    """Copy a model file, replacing (or adding) arrays; ``None`` removes one."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    for key, value in replace.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(dst, **arrays)


def test_an_object_array_is_not_a_model_and_no_message_mentions_pickle(tmp_path):
    path = tmp_path / "m.npz"
    UnigramModel().fit(["ab"]).save(path)
    bad = tmp_path / "bad.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["logprobs"] = np.array([object(), 1], dtype=object)
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError) as e:
        scratchgen.load(bad)
    assert "holds Python objects" in str(e.value) and "pickle" not in str(e.value)


def test_an_npy_header_claiming_terabytes_is_refused_before_allocating(tmp_path):
    path = tmp_path / "m.npz"
    UnigramModel().fit(["ab"]).save(path)
    bad = tmp_path / "huge.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, buf.getvalue() + b"\0" * 64 if name == "logprobs.npy" else data)
    with pytest.raises(ModelFileError, match="claims shape"):
        scratchgen.load(bad)


@pytest.mark.parametrize("cls", [UniformModel, UnigramModel])
def test_random_models_refuse_nan_inf_positive_and_misshapen_logprobs(tmp_path, cls):
    path = tmp_path / "m.npz"
    model = cls().fit(["abc", "abd"])
    model.save(path)
    V = len(model.vocab_)
    cases = {
        "holds NaN": np.full(V, np.nan),
        r"holds \+inf": np.full(V, np.inf),
        "above the largest allowed value": np.full(V, 0.5),
        "has shape": np.zeros(V + 1),
        "dtype": np.zeros(V, dtype=np.int32),
    }
    for i, (problem, array) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.npz"
        _edit_npz(path, bad, logprobs=array)
        with pytest.raises(ModelFileError, match=f"not a valid scratchgen {cls.__name__} file: logprobs.*{problem}"):
            scratchgen.load(bad)


def test_a_header_param_out_of_range_is_refused_at_load(tmp_path):
    path = tmp_path / "m.npz"
    UnigramModel().fit(["ab"]).save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays["__header__"].tobytes())
    header["params"]["k"] = -1
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="not a valid scratchgen UnigramModel file: k must be"):
        scratchgen.load(bad)


def test_save_refuses_a_non_finite_model_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.npz"
    model = UnigramModel().fit(["ab"])
    model.save(path)
    before = snapshot(path)
    model.logprobs_ = model.logprobs_.copy()
    model.logprobs_[3] = np.nan
    with pytest.raises(ModelFileError, match="cannot save this UnigramModel: logprobs holds NaN"):
        model.save(path)
    assert snapshot(path) == before


# --- the output guard (items 7 and 8) ----------------------------------------------------------------


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(corpus, tmp_path):
    before = snapshot(corpus)
    result = run("train", "random", str(corpus), "-o", str(corpus))
    assert result.returncode == 1 and "it is also an input" in result.stderr
    assert result.stderr.count("\n") == 1 and snapshot(corpus) == before
    link = tmp_path / "link.txt"
    os.symlink(corpus, link)  # the same file under another name
    assert main(["train", "random", str(corpus), "-o", str(link)]) == 1
    assert snapshot(corpus) == before


def test_a_read_only_output_is_not_replaced(corpus, tmp_path):
    target = tmp_path / "keep.npz"
    target.write_bytes(b"precious")
    target.chmod(0o444)
    assert main(["train", "random", str(corpus), "-o", str(target)]) == 1
    assert target.read_bytes() == b"precious"


def test_files_get_the_mode_the_umask_gives(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a", lambda f: f.write(b"x"))
        os.umask(0o077)
        atomic_write(tmp_path / "b", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "b").st_mode) == 0o600


def test_protected_inputs_guard_every_writer(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("abc")
    with protected_inputs([src]):
        with pytest.raises(OutputError, match="also an input"):
            UnigramModel().fit(["ab"]).save(src)
    assert src.read_text() == "abc"


def test_an_unwritable_folder_names_the_users_path_not_a_temp_file(tmp_path, corpus):
    if os.geteuid() == 0:  # root writes anywhere; a missing folder stands in for the same message path
        out = tmp_path / "missing" / "m.npz"
        result = run("train", "random", str(corpus), "-o", str(out))
        assert result.returncode == 1 and "missing" in result.stderr and ".tmp-" not in result.stderr
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    result = run("train", "random", str(corpus), "-o", str(folder / "m.npz"))
    assert result.returncode == 1 and "m.npz" in result.stderr and ".tmp-" not in result.stderr


# --- memory estimates (items 2, 3, 11 use them) ------------------------------------------------------


def test_check_memory_refuses_with_the_estimate_and_the_option():
    with pytest.raises(ResourceError, match=r"hidden 100000 needs about 74.5 GiB.*lower --hidden"):
        check_memory(80_000_000_000, "hidden 100000", "lower --hidden", limit=2**34)
    check_memory(2**20, "a small table", limit=2**30)
    assert format_bytes(80 * 2**30) == "80.0 GiB"


def test_the_memory_limit_can_be_set(monkeypatch):
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "1M")
    with pytest.raises(ResourceError, match="more than the 1.0 MiB allowed"):
        check_memory(2 * 2**20, "two MiB")
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "lots")
    with pytest.raises(ResourceError, match="SCRATCHGEN_MEMORY_LIMIT"):
        check_memory(1, "anything")


# --- streaming generation (item 9) -------------------------------------------------------------------


def test_generate_streams_batches_so_memory_is_flat_in_n(tmp_path, corpus, monkeypatch, capsys):
    import scratchgen.decoding as decoding

    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    sizes = []
    original = decoding._sample

    def spy(model, n, *args):
        sizes.append(n)
        return original(model, n, *args)

    monkeypatch.setattr(decoding, "_sample", spy)
    capsys.readouterr()
    assert main(["generate", str(model), "-n", "10000", "--seed", "0", "--max-tokens", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10000
    assert max(sizes) <= 4096 and sum(sizes) == 10000  # never all 10,000 held at once


def test_iter_generate_concatenates_to_generate():
    m = UnigramModel().fit(["abc", "abd"])
    batches = [b for b, _ in iter_generate(m, 7, batch_size=3, seed=4)]
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sum(batches, []) == generate(m, 7, batch_size=3, seed=4)


def test_generate_json_is_one_object(tmp_path, corpus, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["generate", str(model), "-n", "300", "--seed", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"]) == 300


# --- linear chunking (item 10) -----------------------------------------------------------------------


def test_one_long_line_is_cut_into_chunks_exactly():
    text = "".join(chr(97 + i % 26) for i in range(200_003))
    chunks = read_corpus(io.StringIO(text), Tokenizer(), mode="chunks", chunk_size=256)
    assert all(len(c) == 256 for c in chunks[:-1])
    assert "".join("".join(c) for c in chunks) == text + "\n"


# --- the one token rule (item 20) --------------------------------------------------------------------


def test_the_word_tokenizer_keeps_reserved_tokens_whole():
    assert word_tokenize("a <unk> b") == ["a", "<unk>", "b"]
    assert word_tokenize("x</s>") == ["x", "</s>"]


def test_unk_in_text_is_the_unknown_token():
    m = UnigramModel(tokenizer=Tokenizer("word")).fit(["the <unk> sat", "the cat"])
    assert "<unk>" not in m.vocab_.to_list()  # not an ordinary word
    # <unk> was counted: (1 + k) / (N + k V') instead of k / (N + k V')
    N, V1 = 5 + 2, len(m.vocab_) - 1
    assert np.isclose(np.exp(m.logprobs_[0]), (1 + 1) / (N + V1))


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
@pytest.mark.parametrize("bad, problem", [
    (["a", "<s>", "b"], "cannot contain '<s>'"),
    (["a", "</s>"], "cannot contain '</s>'"),
    (["a", "\udc80"], "lone surrogate"),
    (["a", ""], "empty token"),
])
def test_every_family_follows_the_one_token_rule_at_fit(name, bad, problem):
    from cases_all import unfitted

    with pytest.raises(CorpusError, match=problem):
        unfitted(name).fit([["a", "b"], bad])


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_every_family_refuses_a_lone_surrogate_in_text_at_fit(name):
    from cases_all import unfitted

    with pytest.raises(CorpusError, match="lone surrogate"):
        unfitted(name).fit(["ab", "a\udc80b"])


def test_check_tokens_is_per_token():
    check_tokens(["<unk>", "a"])
    with pytest.raises(CorpusError, match="a token must be a str"):
        check_tokens(["a", 3])


# --- never <unk> unless asked; --stop (item 21) ------------------------------------------------------


def test_the_decoder_never_emits_unk_unless_allowed():
    # min_count 2 makes most tokens <unk>: <unk> is the likeliest token of this model
    m = UnigramModel(min_count=2).fit(["abcdefgh", "aij"])
    assert np.exp(m.logprobs_[0]) > 0.4
    assert not any("<unk>" in s for s in generate(m, 200, seed=0))
    assert any("<unk>" in s for s in generate(m, 200, seed=0, allow_unk=True))
    assert all("<unk>" not in tokens for tokens, _ in beam_search(m, width=3, n=3, max_tokens=4))


def test_cli_stop_and_allow_unk(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcdefgh\naij\n")
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model), "--min-count", "2"]) == 0
    capsys.readouterr()
    assert main(["generate", str(model), "-n", "50", "--seed", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["samples"]
    assert not any("<unk>" in r["tokens"] for r in rows)
    assert main(["generate", str(model), "-n", "50", "--seed", "0", "--json", "--allow-unk"]) == 0
    assert any("<unk>" in r["tokens"] for r in json.loads(capsys.readouterr().out)["samples"])
    assert main(["generate", str(model), "-n", "50", "--seed", "0", "--json", "--stop", "a"]) == 0
    for r in json.loads(capsys.readouterr().out)["samples"]:
        assert "a" not in r["tokens"][:-1]  # a stop token ends the sequence, kept at its end


# --- JSON null (item 26), encodings and the CLI's words (item 27) ------------------------------------


def test_print_json_writes_nan_as_null(capsys):
    print_json({"a": float("nan"), "b": [1.0, float("-inf")]})
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [1.0, "-inf"]}


def test_a_latin1_file_says_not_utf8_at_byte_n_and_encoding_reads_it(tmp_path):
    corpus = tmp_path / "latin.txt"
    corpus.write_bytes("caf\u00e9\nabc\n".encode("latin-1"))
    result = run("train", "random", str(corpus), "-o", str(tmp_path / "m.npz"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not UTF-8 at byte 3 (0xe9)" in result.stderr and "--encoding" in result.stderr
    assert "given encoding" not in result.stderr
    ok = run("train", "random", str(corpus), "-o", str(tmp_path / "m.npz"), "--encoding", "latin-1")
    assert ok.returncode == 0, ok.stderr


def test_an_unknown_encoding_is_one_line(tmp_path, corpus):
    result = run("train", "random", str(corpus), "-o", str(tmp_path / "m.npz"), "--encoding", "klingon")
    assert result.returncode == 1 and "unknown encoding 'klingon'" in result.stderr


def test_the_prompt_oov_message_names_the_flag(tmp_path, corpus):
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    result = run("generate", str(model), "--prompt", "xyz")
    assert result.returncode == 1 and "--unk-prompt" in result.stderr


def test_an_unexpected_error_is_one_line_without_a_traceback(monkeypatch, capsys, tmp_path, corpus):
    import scratchgen.cli.score as cli

    def boom(args):
        raise IndexError("deep inside")

    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(cli, "_score", boom)
    monkeypatch.delenv("SCRATCHGEN_DEBUG", raising=False)
    assert main(["score", str(model), str(corpus)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "IndexError" in err and "SCRATCHGEN_DEBUG" in err
    assert isinstance(ScratchgenError("x"), ValueError)


def test_a_warning_is_one_line_in_the_cli(monkeypatch, capsys, tmp_path, corpus):
    import warnings as w

    import scratchgen.cli.score as cli

    def warns(args):
        w.warn("weights of NP sum to 0.7; they are renormalised", stacklevel=2)
        np.log(np.zeros(1))  # a NumPy floating-point warning: not shown to a user
        return 0

    monkeypatch.setattr(cli, "_score", warns)
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["score", str(model), str(corpus)]) == 0
    assert capsys.readouterr().err == "scratchgen: warning: weights of NP sum to 0.7; they are renormalised\n"


def test_an_rnn_weight_too_large_for_float32_logits_is_refused(tmp_path):
    from scratchgen import RNNModel

    path = tmp_path / "r.npz"
    model = RNNModel(hidden=4, max_steps=2, batch_size=2, seq_len=4, valid_fraction=0.0, dtype="float32").fit(["ab"])
    model.save(path)
    with np.load(path) as z:
        b_y = z["param/b_y"].copy()
    b_y[3] = np.finfo(np.float32).max  # finite, but h W_hy + b_y overflows float32: the score was -inf
    bad = tmp_path / "bad.npz"
    _edit_npz(path, bad, **{"param/b_y": b_y})
    with pytest.raises(ModelFileError, match=r"param/b_y holds .*above the largest allowed value 1e\+15"):
        scratchgen.load(bad)


def test_a_huge_max_tokens_costs_only_the_tokens_generated():
    # the decoder used to preallocate (n, max_tokens): 500 x 10^9 int64 is 4 TB
    m = UnigramModel().fit(["ab", "ba"])
    samples = generate(m, 500, max_tokens=10**9, seed=0)
    assert len(samples) == 500 and max(map(len, samples)) < 200


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_sigterm_leaves_no_model_file_and_no_temporary_folder(tmp_path):
    """``kill`` (SIGTERM) in the middle of a spilling ``train ngram``: the command unwinds as from Ctrl-C (exit
    143, one line), its spill folder is removed and no model file appears."""
    import signal
    import time

    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(3000)])
    corpus, temp, out = tmp_path / "corpus.txt", tmp_path / "temp", tmp_path / "model.npz"
    corpus.write_text("\n".join(" ".join(line) for line in rng.choice(words, size=(150_000, 10))) + "\n")
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "scratchgen", "train", "ngram", "--order", "5", "--level", "word",
           "--memory", "100M", "--temp-dir", str(temp), str(corpus), "-o", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not any(temp.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(temp.iterdir()), "no spill folder appeared within 2 minutes"
    time.sleep(1.0)  # into the counting (a SIGTERM that arrives while CPython compiles a module was seen lost)
    assert proc.poll() is None, "the command ended before it could be stopped; make the corpus bigger"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "scratchgen: terminated"
    assert list(temp.iterdir()) == []
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--memory", "64M"]])
def test_a_corpus_that_is_not_a_regular_file_is_named_for_what_it_is(tmp_path, capsys, extra):
    """``train ngram`` reads its file by byte ranges (or twice): a directory, a pipe and a missing path each get
    their own reason (a directory was once reported as 'no such file'), and nothing is written."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, reason in [(tmp_path, "it is a directory"), (fifo, "not a regular file"),
                         (tmp_path / "missing.txt", "no such file")]:
        out = tmp_path / "m.npz"
        assert main(["train", "ngram", str(path), "-o", str(out), *extra]) == 1
        assert f"cannot read corpus {str(path)!r}: {reason}" in capsys.readouterr().err
        assert not out.exists()
