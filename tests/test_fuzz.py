"""The fuzz suite: reliability on damaged input, as a law checked on thousands of inputs.

**The law.** Whatever the input, each case ends in valid output or in *one* scratchgen error
(``isinstance(e, ScratchgenError)``): never another exception (``IndexError``, ``FloatingPointError``,
``RecursionError``, ``MemoryError``, a NumPy error), never a hang (:data:`CASE_SECONDS` of CPU time),
and no input file changes (its bytes and mode are compared before and after). A model that loads must
also work: it scores a tiny corpus to a log-probability that is neither NaN nor positive, and finite
(but for a grammar's exact -inf for a sentence it cannot generate, or an n-gram model's probability 0
under maximum likelihood or from an ARPA file), and it generates two samples of ordinary tokens. At the
command line (:func:`scratchgen.cli.main`, in-process) the law reads: exit 0, 1 or 2; exit 1 prints
exactly one line on stderr, and not the "this is a bug" line; no input changes; no temporary file is
left behind.

**The inputs** (``tests/fuzz_inputs.py``): model files of every registered class (truncated, bytes
flipped, header values changed to 0, -1, huge, NaN, the wrong type or removed, arrays reshaped,
swapped, retyped to int, complex, str, bool or pickled objects, NaN and inf poked in, arrays added or
dropped), ARPA files, grammar text, Tracery JSON, and corpora (Latin-1, UTF-16, binary, NUL bytes,
lone surrogates, one huge line, the reserved tokens, empty and blank files).

**The counts.** Each test runs ``n * scale`` hypothesis examples: ``scale`` is 1 in the default run,
which is derandomized (CI sees the same cases every time), and :data:`SLOW_SCALE` in the run marked
``slow`` (``python -m pytest -m slow tests/test_fuzz.py``). Run with ``-s`` to see how many cases ran.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import shutil
import signal
import stat

import fuzz_inputs as fi
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import note as hypothesis_note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import scratchgen
from scratchgen import GrammarModel, NGramModel, RNNModel, Tokenizer, UnigramModel
from scratchgen.errors import DecodingError, ResourceError, ScratchgenError
from scratchgen.model import MODEL_REGISTRY
from scratchgen.text import BOS, EOS, read_corpus

SLOW_SCALE = 20
SCALES = [pytest.param(1, id="default"), pytest.param(SLOW_SCALE, id="slow", marks=pytest.mark.slow)]
CASE_SECONDS = 20  # a case still running after this many CPU seconds is a hang

CASES_RUN: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def count_cases():
    """Print how many cases each test ran (visible with ``-s``)."""
    yield
    if CASES_RUN:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(CASES_RUN.items()))
        print(f"\nfuzz cases run: {sum(CASES_RUN.values())} ({detail})")


@pytest.fixture(autouse=True)
def memory_limit(monkeypatch):
    """A damaged file must be refused by the estimate before allocating, not by a machine that swaps."""
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "2G")


@pytest.fixture(scope="module")
def models():
    return fi.make_models()


@pytest.fixture(scope="module")
def model_files(models, tmp_path_factory):
    """The bytes of each model saved, by class name."""
    folder = tmp_path_factory.mktemp("models")
    files = {}
    for name, model in models.items():
        model.save(folder / f"{name}.npz")
        files[name] = (folder / f"{name}.npz").read_bytes()
    return files


@pytest.fixture(scope="module")
def labelled_files(tmp_path_factory):
    """The bytes of each labelled model saved, by name."""
    folder = tmp_path_factory.mktemp("labelled")
    files = {}
    for name, model in fi.make_labelled_models().items():
        model.save(folder / f"{name}.npz")
        files[name] = (folder / f"{name}.npz").read_bytes()
    return files


@pytest.fixture(scope="module")
def arpa_file(models, tmp_path_factory):
    path = tmp_path_factory.mktemp("arpa") / "model.arpa"
    models["NGramModel"].to_arpa(path)
    return path.read_bytes()


# --- the law -----------------------------------------------------------------------------------------


def note(message: str) -> None:
    """Shown with a failing example (printed, outside hypothesis: pytest shows it for a failing test)."""
    try:
        hypothesis_note(message)
    except InvalidArgument:
        print(message)


class CaseTimeout(Exception):
    """A case ran past CASE_SECONDS: not a scratchgen error, so the law fails."""


@contextlib.contextmanager
def time_limit(seconds: float = CASE_SECONDS):
    """Stop a case after ``seconds`` of this process's CPU time (not wall time: a busy machine is no hang)."""

    def stop(signum, frame):
        raise CaseTimeout(f"the case used more than {seconds} CPU seconds")

    old = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def snapshot(paths) -> dict:
    """Bytes and mode of each file (None for a missing one)."""
    out = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                out[str(p)] = (f.read(), stat.S_IMODE(os.stat(p).st_mode))
        except FileNotFoundError:
            out[str(p)] = None
    return out


@contextlib.contextmanager
def unchanged(paths):
    """No file of ``paths`` changes within the block."""
    before = snapshot(paths)
    yield
    after = snapshot(paths)
    changed = [p for p in before if before[p] != after[p]]
    assert not changed, f"an input file changed: {changed}"


def outcome(action):
    """The result of ``action()``, or the scratchgen error it raised; any other exception is a failure."""
    try:
        with time_limit():
            return action()
    except ScratchgenError as e:
        note(f"refused: {type(e).__name__}: {e}")
        return e


def refused(result) -> bool:
    return isinstance(result, ScratchgenError)


def check_score(model, score) -> None:
    lp = score.logprob
    assert not math.isnan(lp), f"{type(model).__name__} scored NaN"
    assert lp <= 1e-9, f"{type(model).__name__} gave a positive log-probability {lp}"
    if not isinstance(model, (GrammarModel, NGramModel)):  # a grammar's language, an MLE or ARPA zero
        assert math.isfinite(lp), f"{type(model).__name__} scored {lp}"


def exercise(model, texts=fi.SCORE_TEXTS) -> None:
    """A model that loaded (or fitted) must score and generate; errors here are failures too, except a
    :class:`ResourceError`: a limit the file sets (a grammar's ``max_length`` of 1) refused with its name
    and its estimate is the documented answer, not a corrupted model."""
    try:
        with time_limit():
            score = model.score(texts)
    except ResourceError as e:
        note(f"refused by a limit: {e}")
        return
    with time_limit():
        check_score(model, score)
        try:
            samples = model.generate(2, seed=0, max_tokens=12)
        except DecodingError as e:  # a grammar may make <unk>, an ordinary terminal there, the only way on
            assert "allows only '<unk>'" in str(e) and "allow_unk=True" in str(e), e
            samples = model.generate(2, seed=0, max_tokens=12, allow_unk=True)
    assert len(samples) == 2
    for sample in samples:
        assert all(isinstance(t, str) and t and t not in (BOS, EOS) for t in sample), sample


def fuzz(strategy, check, n: int, key: str) -> None:
    """Run ``check`` on ``n`` examples drawn from ``strategy`` (derandomized: the same every run)."""

    def run(case):
        CASES_RUN[key] += 1
        check(case)

    settings(max_examples=n, derandomize=True, deadline=None, database=None, print_blob=False,
             suppress_health_check=list(HealthCheck))(given(strategy)(run))()


def fresh_folder(root) -> str:
    """An empty folder for one case (made writable again first: a case may leave read-only files)."""
    folder = os.path.join(root, "case")
    if os.path.exists(folder):
        for dirpath, _, names in os.walk(folder):
            os.chmod(dirpath, 0o755)
            for name in names:
                os.chmod(os.path.join(dirpath, name), 0o644)
        shutil.rmtree(folder)
    os.mkdir(folder)
    return folder


# --- model files ---------------------------------------------------------------------------------------


def test_every_registered_class_is_fuzzed(model_files):
    assert sorted(model_files) == sorted(MODEL_REGISTRY)


def test_the_valid_inputs_are_valid(model_files, arpa_file, tmp_path):
    """The corruptions start from inputs that work, so a refusal is the corruption's doing."""
    for data in model_files.values():
        (tmp_path / "m.npz").write_bytes(data)
        exercise(scratchgen.load(tmp_path / "m.npz"))
    (tmp_path / "m.arpa").write_bytes(arpa_file)
    exercise(NGramModel.from_arpa(tmp_path / "m.arpa"))
    for text in fi.GRAMMAR_TEXTS:
        exercise(GrammarModel.from_grammar(text), fi.GRAMMAR_SENTENCES)
    exercise(GrammarModel.from_grammar(scratchgen.from_tracery(fi.TRACERY)), ["hello , world !"])


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", fi.MODEL_CLASSES)
def test_damaged_model_file(name, scale, model_files, tmp_path):
    data = model_files[name]
    path = tmp_path / "model.npz"

    def check(corruption):
        path.write_bytes(corruption.apply(data))
        with unchanged([path]):
            model = outcome(lambda: scratchgen.load(path))
            if not refused(model):
                exercise(model)

    fuzz(fi.model_file_corruptions(data), check, n=70 * scale, key=f"model file {name}")


def exercise_labelled(model) -> None:
    """A labelled model that loaded must also work given each label: score, classify, generate."""
    exercise(model)
    with time_limit():
        for label in model.labels_.names:
            check_score(model, model.score(fi.SCORE_TEXTS, labels=label))
            samples = model.generate(2, seed=0, max_tokens=12, label=label)
            assert all(isinstance(t, str) and t and t not in (BOS, EOS) for s in samples for t in s), samples
        result = model.classify(fi.SCORE_TEXTS)
    assert np.allclose(result.posterior.sum(axis=1), 1.0)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", fi.LABELLED_CLASSES)
def test_damaged_labelled_model_file(name, scale, labelled_files, tmp_path):
    data = labelled_files[name]
    path = tmp_path / "model.npz"

    def check(corruption):
        path.write_bytes(corruption.apply(data))
        with unchanged([path]):
            model = outcome(lambda: scratchgen.load(path))
            if not refused(model):
                if model.labels_ is None:  # a header edit may remove the labels: then the arrays must still fit
                    exercise(model)
                else:
                    exercise_labelled(model)

    fuzz(fi.model_file_corruptions(data), check, n=50 * scale, key=f"labelled model file {name}")


def test_unigram_file_giving_a_token_probability_zero_is_refused(model_files, tmp_path):
    """Found by the fuzz suite: logprobs[4] = -inf passed the schema (-inf is allowed for <s>), and the
    loaded model scored -inf although add-k smoothing gives every token but <s> a share."""
    path = tmp_path / "m.npz"
    for name in ("UniformModel", "UnigramModel"):
        path.write_bytes(fi.EditArray("logprobs", poke=(1.0, "-inf", False)).apply(model_files[name]))
        with pytest.raises(scratchgen.ModelFileError, match=r"logprobs\[\d+\] is -inf: only <s>"):
            scratchgen.load(path)


def test_unigram_file_whose_probabilities_do_not_sum_to_one_is_refused(model_files, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(fi.EditArray("logprobs", poke=(1.0, "zero", False)).apply(model_files["UnigramModel"]))
    with pytest.raises(scratchgen.ModelFileError, match="sum to .*, not 1"):
        scratchgen.load(path)
    header, arrays = fi.unpack(model_files["UniformModel"])
    arrays["logprobs"][1] = -1.0  # <s> given a probability
    path.write_bytes(fi.pack(header, arrays))
    with pytest.raises(scratchgen.ModelFileError, match=r"logprobs\[1\] \(the token <s>\) is -1.0, expected -inf"):
        scratchgen.load(path)


def test_utf16_corpus_without_a_byte_order_mark_is_one_corpus_error(tmp_path):
    """Found by the fuzz suite: UTF-16 without a BOM raised a bare UnicodeError (not UnicodeDecodeError)."""
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"the cat sat")
    with pytest.raises(scratchgen.CorpusError, match="is not utf-16 .*does not start with BOM.*--encoding"):
        read_corpus(path, encoding="utf-16")


def test_model_file_whose_vocabulary_holds_a_lone_surrogate_is_refused(model_files, tmp_path):
    """Found by the fuzz suite: a header's vocabulary entry "\\udce9" loaded, and such a model generated
    tokens that are not text (the token rule refuses them at fit; a file must not smuggle them in)."""
    path = tmp_path / "m.npz"
    path.write_bytes(fi.EditHeader(("vocab", 0), "\udce9").apply(model_files["UniformModel"]))
    with pytest.raises(scratchgen.ModelFileError, match="holds a lone surrogate"):
        scratchgen.load(path)


# --- ARPA files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_damaged_arpa_file(scale, arpa_file, tmp_path):
    path = tmp_path / "model.arpa"

    def check(corruption):
        path.write_bytes(corruption.apply(arpa_file))
        with unchanged([path]):
            model = outcome(lambda: NGramModel.from_arpa(path))
            if not refused(model):
                exercise(model)

    fuzz(fi.arpa_corruptions(arpa_file), check, n=60 * scale, key="arpa")


# --- grammar text and Tracery JSON -------------------------------------------------------------------------


def exercise_grammar(model) -> None:
    exercise(model, fi.GRAMMAR_SENTENCES)
    outcome(lambda: model.sample(2, seed=0))  # a derivation past the limits may be refused


@pytest.mark.parametrize("scale", SCALES)
def test_damaged_grammar_text(scale):
    def check(case):
        text = case if isinstance(case, str) else case.text
        note(f"grammar text: {text!r}")
        model = outcome(lambda: GrammarModel.from_grammar(text))
        if not refused(model):
            exercise_grammar(model)

    fuzz(st.one_of(fi.grammar_text_edits(), fi.grammar_soups()), check, n=60 * scale, key="grammar text")


@pytest.mark.parametrize("scale", SCALES)
def test_damaged_tracery_json(scale):
    def check(case):
        text = case if isinstance(case, str) else case.text
        note(f"Tracery JSON: {text!r}")
        model = outcome(lambda: GrammarModel.from_grammar(scratchgen.from_tracery(text)))
        if not refused(model):
            exercise_grammar(model)

    fuzz(st.one_of(fi.tracery_documents(), fi.tracery_text_edits()), check, n=50 * scale, key="tracery")


# --- corpora ---------------------------------------------------------------------------------------------


def fit_and_use(make, corpus) -> None:
    model = outcome(lambda: make().fit(corpus))
    if not refused(model):
        exercise(model)


def tiny_rnn() -> RNNModel:
    return RNNModel(hidden=4, epochs=1, max_steps=2, batch_size=2, seq_len=8, valid_fraction=0.0, seed=0)


def score_with_every_model(models, corpus) -> None:
    for model in models.values():
        score = outcome(lambda model=model: model.score(corpus))
        if not refused(score):
            check_score(model, score)


@pytest.mark.parametrize("scale", SCALES)
def test_damaged_corpus_file(scale, models, tmp_path):
    path = tmp_path / "corpus.txt"

    def check(case):
        path.write_bytes(case.data)
        with unchanged([path]):
            corpus = outcome(lambda: read_corpus(path, Tokenizer(case.level), mode=case.mode,
                                                 encoding=case.encoding))
            if refused(corpus):
                return
            score_with_every_model(models, corpus)
            for make in (UnigramModel, lambda: NGramModel(order=2), tiny_rnn):
                fit_and_use(make, corpus)

    fuzz(fi.corpus_files(), check, n=60 * scale, key="corpus file")


@pytest.mark.parametrize("scale", SCALES)
def test_strange_texts_through_the_api(scale, models):
    def check(texts):
        score_with_every_model(models, texts)
        for make in (scratchgen.UniformModel, UnigramModel, lambda: NGramModel(order=2), tiny_rnn):
            fit_and_use(make, texts)
        for model in models.values():
            for prompt in texts[:1]:
                result = outcome(lambda model=model, prompt=prompt: model.generate(
                    2, prompt=prompt, prompt_oov="unk", max_tokens=6, seed=0))
                if not refused(result):
                    assert len(result) == 2

    fuzz(fi.api_texts(), check, n=40 * scale, key="api texts")


# --- the command line ------------------------------------------------------------------------------------

# Each command with the kind of input the case damages; {out} is where the case points the output.
COMMANDS = {
    "train random": (["train", "random", "{corpus}", "-o", "{out}", "--encoding", "{encoding}"], "corpus"),
    "train ngram": (["train", "ngram", "{corpus}", "-o", "{out}", "--order", "2", "--encoding", "{encoding}"],
                    "corpus"),
    "train rnn": (["train", "rnn", "{corpus}", "-o", "{out}", "--hidden", "4", "--epochs", "1", "--max-steps", "2",
                   "--batch", "2", "--seq-len", "8", "--quiet", "--encoding", "{encoding}"], "corpus"),
    "train grammar": (["train", "grammar", "{grammar}", "{corpus}", "-o", "{out}", "--iterations", "1"], "corpus"),
    "score": (["score", "{model}", "{corpus}"], "model"),
    "generate": (["generate", "{model}", "-n", "2", "--seed", "0", "--max-tokens", "8"], "model"),
    "export-arpa": (["export-arpa", "{model}", "{out}"], "model"),
    "eval": (["eval", "{model}", "--train", "{corpus}", "-n", "2", "--no-discriminator"], "model"),
    "train ngram --from-arpa": (["train", "ngram", "--from-arpa", "{arpa}", "-o", "{out}"], "arpa"),
    "grammar check": (["grammar", "check", "{grammar}"], "grammar"),
    "grammar sample": (["grammar", "sample", "{grammar}", "-n", "2", "--seed", "0"], "grammar"),
    "grammar score": (["grammar", "score", "{grammar}", "{corpus}"], "grammar"),
    # labels (issue 11): a damaged labelled model, or a damaged corpus read as LABEL<TAB>TEXT lines
    "train random --labelled": (["train", "random", "{corpus}", "--labelled", "-o", "{out}", "--encoding",
                                 "{encoding}"], "corpus"),
    "generate --label": (["generate", "{lmodel}", "--label", "a", "-n", "2", "--seed", "0", "--max-tokens", "8"],
                         "lmodel"),
    "score --labelled": (["score", "{lmodel}", "{lcorpus}", "--labelled", "--encoding", "{encoding}"], "lcorpus"),
    "score --labelled (model)": (["score", "{lmodel}", "{lcorpus}", "--labelled"], "lmodel"),
    "classify": (["classify", "{lmodel}", "{corpus}", "--encoding", "{encoding}"], "corpus"),
    "classify --labelled": (["classify", "{lmodel}", "{lcorpus}", "--labelled", "--json", "--encoding",
                             "{encoding}"], "lcorpus"),
    "classify (model)": (["classify", "{lmodel}", "{corpus}", "--json"], "lmodel"),
    "eval --labelled": (["eval", "{lmodel}", "--train", "{lcorpus}", "--labelled", "-n", "2", "--max-tokens", "8",
                         "--no-discriminator"], "lmodel"),
    # explain (issue 14): a damaged model explained, its page written to the output
    "explain": (["explain", "{model}", "the cat sat", "--html", "{out}", "--top", "2"], "model"),
    "explain --label": (["explain", "{lmodel}", "the cat", "--label", "a", "--json"], "lmodel"),
}
# Where the output goes: a new file, an input of the command, a read-only file, a missing folder, a folder.
OUTPUTS = ["new", "an input", "read-only", "missing folder", "a folder"]


@dataclasses.dataclass(frozen=True)
class CommandCase:
    command: str
    damage: object  # a corpus file, a (class name, model corruption), an ARPA corruption, a grammar text
    output: str


def command_cases(model_files, arpa_file) -> st.SearchStrategy:
    damaged_model = st.sampled_from(fi.MODEL_CLASSES).flatmap(
        lambda name: st.tuples(st.just(name), fi.model_file_corruptions(model_files[name]) | st.none()))
    damaged_labelled = st.sampled_from(fi.LABELLED_CLASSES).flatmap(
        lambda name: st.tuples(st.just(name), fi.model_file_corruptions(model_files[name]) | st.none()))
    damage = {
        "corpus": fi.corpus_files(),
        "lcorpus": fi.corpus_files(),
        "model": damaged_model,
        "lmodel": damaged_labelled,
        "arpa": fi.arpa_corruptions(arpa_file),
        "grammar": st.one_of(fi.grammar_text_edits(), fi.grammar_soups(), fi.tracery_documents(),
                             fi.tracery_text_edits()),
    }
    return st.sampled_from(sorted(COMMANDS)).flatmap(lambda command: st.builds(
        CommandCase, st.just(command), damage[COMMANDS[command][1]], st.sampled_from(OUTPUTS)))


def write_inputs(case: CommandCase, folder: str, model_files, arpa_file) -> dict:
    """The command's input files, the damaged one among them; returns the argv fields."""
    paths = {"corpus": os.path.join(folder, "corpus.txt"), "model": os.path.join(folder, "model.npz"),
             "arpa": os.path.join(folder, "model.arpa"), "grammar": os.path.join(folder, "grammar.cfg"),
             "lcorpus": os.path.join(folder, "labelled.txt"), "lmodel": os.path.join(folder, "labelled.npz")}
    corpus, encoding = b"the cat sat on the mat\na dog sat\n", "utf-8"
    lcorpus, lmodel = fi.LABELLED_CORPUS, model_files["LabelledUnigramModel"]
    model = model_files["NGramModel"]
    grammar = fi.TOY_GRAMMAR
    arpa = arpa_file
    kind = COMMANDS[case.command][1] if case.damage is not None else "none"
    if "--labelled" in COMMANDS[case.command][0]:  # a labelled command's valid corpus is LABEL<TAB>TEXT
        corpus = fi.LABELLED_CORPUS
    if kind == "corpus":
        corpus, encoding = case.damage.data, case.damage.encoding
    elif kind == "lcorpus":
        lcorpus, encoding = case.damage.data, case.damage.encoding
    elif kind == "model":
        name, corruption = case.damage
        model = model_files[name] if corruption is None else corruption.apply(model_files[name])
    elif kind == "lmodel":
        name, corruption = case.damage
        lmodel = model_files[name] if corruption is None else corruption.apply(model_files[name])
    elif kind == "arpa":
        arpa = case.damage.apply(arpa_file)
    elif kind == "grammar":
        grammar = case.damage if isinstance(case.damage, str) else case.damage.text
        if grammar.lstrip().startswith(("{", "[")):
            paths["grammar"] = os.path.join(folder, "grammar.json")  # Tracery
    contents = {"corpus": corpus, "model": model, "arpa": arpa,
                "grammar": grammar.encode("utf-8", "surrogatepass"), "lcorpus": lcorpus, "lmodel": lmodel}
    for key, path in paths.items():
        with open(path, "wb") as f:
            f.write(contents[key])
    fields = dict(paths, encoding=encoding)
    inputs = [p for k, p in paths.items() if "{" + k + "}" in COMMANDS[case.command][0]]
    fields["out"] = {
        "new": os.path.join(folder, "out.npz"),
        "an input": inputs[0],
        "read-only": os.path.join(folder, "readonly.npz"),
        "missing folder": os.path.join(folder, "no", "such", "out.npz"),
        "a folder": folder,
    }[case.output]
    if case.output == "read-only":
        with open(fields["out"], "wb") as f:
            f.write(b"keep me")
        os.chmod(fields["out"], 0o444)
    return fields, inputs


def run_command(argv, capsys) -> tuple[int, str]:
    """``scratchgen.cli.main(argv)`` in-process: its exit code and stderr."""
    from scratchgen.cli import main

    try:
        with time_limit():
            code = main(argv)
    except SystemExit as e:  # argparse: usage errors (2), --help (0)
        code = e.code
    _, err = capsys.readouterr()
    return code, err


def check_command(case: CommandCase, root, model_files, arpa_file, capsys) -> int:
    folder = fresh_folder(root)
    fields, inputs = write_inputs(case, folder, model_files, arpa_file)
    argv = [a.format(**fields) for a in COMMANDS[case.command][0]]
    note(f"scratchgen {' '.join(argv)}")
    watched = inputs + ([fields["out"]] if case.output == "read-only" else [])
    with unchanged(watched):
        code, err = run_command(argv, capsys)
    note(f"exit {code}, stderr: {err!r}")
    assert code in (0, 1, 2), f"exit code {code}"
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"exit 1 must print one line, got {err!r}"
        assert "this is a bug" not in err, err
    leftovers = [n for _, _, names in os.walk(folder) for n in names if n.startswith(".tmp-")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    return code


@pytest.mark.parametrize("scale", SCALES)
def test_command_line(scale, model_files, labelled_files, arpa_file, tmp_path, capsys):
    model_files = {**model_files, **labelled_files}
    fuzz(command_cases(model_files, arpa_file),
         lambda case: check_command(case, tmp_path, model_files, arpa_file, capsys), n=80 * scale, key="cli")


WRITERS = ["train random", "train random --labelled", "train ngram", "train rnn", "train grammar", "export-arpa",
           "train ngram --from-arpa", "explain"]


@pytest.mark.parametrize("output", ["an input", "read-only", "missing folder", "a folder"])
@pytest.mark.parametrize("command", WRITERS)
def test_command_line_refuses_an_output_that_would_lose_something(command, output, model_files, labelled_files,
                                                                 arpa_file, tmp_path, capsys):
    """Every writer, valid inputs, an output that must not be written: exit 1, one line, nothing changed."""
    model_files = {**model_files, **labelled_files}
    case = CommandCase(command, damage=None, output=output)
    assert check_command(case, tmp_path, model_files, arpa_file, capsys) == 1
