"""nn/lstm_units.py: the LSTM step with its hidden units split between two processes gives the numbers of the
step in one process.

eq. (U1)-(U4) of nn/lstm_units.py. Checked in float64 against the whole step's forward + backward in this
process (to rounding: the products and the output layer's sums are grouped by part), with and without a
padding mask, a carried state and a folded embedding; steps it does not serve go to the batch shards and
give their numbers; a worker that dies, or fails inside a step, makes the step fail with WorkerError, not hang.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nn_inputs import chunk_inputs, network  # tests/nn/nn_inputs.py

from scratchgen.nn import lstm_units
from scratchgen.nn.gated import GatedNetwork, init_gated_params
from scratchgen.nn.lstm_units import UnitSplit, _columns, unit_columns
from scratchgen.nn.parallel import DataParallel, _forward_backward
from scratchgen.nn.process_shards import ProcessShards, WorkerError

pytestmark = pytest.mark.skipif(not lstm_units._X86, reason="the unit split runs on x86-64 only (module docstring)")


def _net(E, H=6, V=7, seed=7):
    """One LSTM layer (embedding E, or one-hot inputs for None) with every parameter nonzero."""
    rng = np.random.default_rng(seed)
    params = init_gated_params("lstm", V, H, 1, E, rng)
    return GatedNetwork("lstm", 1), {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}


NETS = {E: _net(E) for E in (4, None)}


@pytest.fixture(scope="module")
def split():
    """One split per network (a worker each), kept for the module: starting a worker takes about a second."""
    pools = {E: UnitSplit(NETS[E][0], ProcessShards(NETS[E][0], min_work=0), min_work=0) for E in NETS}
    yield pools
    for pool in pools.values():
        pool.close()


def _inputs(net, params, B, T, masked, carried, rng):
    x, y = rng.integers(0, 7, size=(B, T)), rng.integers(0, 7, size=(B, T))
    mask = (rng.random((B, T)) < 0.7) if masked else None
    state = rng.normal(size=net.start_state(params, B).shape) if carried else net.start_state(params, B)
    return (x, y, mask, state)


def _assert_same_step(got, expected, rtol=1e-10):
    loss, state_T, grads = got
    (loss_1, state_1), grads_1 = expected
    assert abs(loss - loss_1) <= 1e-12 * max(1.0, abs(loss_1))
    np.testing.assert_allclose(state_T, state_1, rtol=1e-12, atol=1e-14)
    assert set(grads) == set(grads_1)
    for key in grads_1:
        np.testing.assert_allclose(grads[key], grads_1[key], rtol=rtol, atol=1e-13, err_msg=key)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    B=st.integers(2, 9),
    T=st.integers(1, 12),
    E=st.sampled_from([4, None]),
    masked=st.booleans(),
    carried=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_split_step_equals_the_step_in_one_process(split, B, T, E, masked, carried, seed):
    net, params = NETS[E]
    inputs = _inputs(net, params, B, T, masked, carried, np.random.default_rng(seed))
    assert split[E].serves(params, inputs) == ("C" not in params or params["C"].shape[0] < B * T)
    got = split[E].step(params, inputs)
    _assert_same_step(got, _forward_backward(net, params, inputs))
    if split[E].serves(params, inputs):
        assert split[E].process is not None and split[E].process.poll() is None  # the worker ran part 1


def test_each_step_reads_the_new_parameters_and_a_new_shape(split):
    """The optimiser changes the parameters between steps, and the last chunk may be shorter: the worker sees
    the new values and the new shapes."""
    net, params = NETS[None]
    rng = np.random.default_rng(1)
    for scale, T in ((1.0, 5), (0.5, 5), (0.5, 3), (0.25, 8)):
        moved = {k: v * scale for k, v in params.items()}
        inputs = _inputs(net, moved, 4, T, False, True, rng)
        _assert_same_step(split[None].step(moved, inputs), _forward_backward(net, moved, inputs))


def test_what_the_split_does_not_serve_goes_to_the_batch_shards():
    """Dropout, labels, two layers, an odd H, one row: the fallback's step (here the shards), the same numbers."""
    rng = np.random.default_rng(3)
    cases = []
    for labelled, dropout in ((True, False), (False, True)):
        net, params = network("lstm", labelled, rng, L=1)
        cases.append((net, params, chunk_inputs(net, params, "lstm", 6, 4, labelled, False, dropout, True, rng)))
    net, params = network("lstm", False, rng, L=2)  # two layers
    cases.append((net, params, chunk_inputs(net, params, "lstm", 6, 4, False, False, False, True, rng)))
    net, params = _net(None, H=5)  # odd H
    cases.append((net, params, _inputs(net, params, 6, 4, False, True, rng)))
    net, params = _net(None)  # one row
    cases.append((net, params, _inputs(net, params, 1, 4, False, True, rng)))
    for net, params, inputs in cases:
        with UnitSplit(net, ProcessShards(net, min_work=0), min_work=0) as split:
            assert not split.serves(params, inputs)
            got = split.step(params, inputs)
            assert split.process is None  # no worker of its own started
        _assert_same_step(got, _forward_backward(net, params, inputs))


def test_too_little_work_stays_in_one_process():
    net, params = NETS[None]
    inputs = _inputs(net, params, 4, 5, False, False, np.random.default_rng(4))
    with UnitSplit(net, ProcessShards(net)) as split:  # the default least work: far more than this
        assert not split.serves(params, inputs)
        _assert_same_step(split.step(params, inputs), _forward_backward(net, params, inputs))
        assert split.process is None and split.fallback.workers == []


def test_a_dead_worker_fails_the_step_with_a_clear_error():
    net, params = NETS[None]
    inputs = _inputs(net, params, 4, 6, False, True, np.random.default_rng(5))
    with UnitSplit(net, ProcessShards(net, min_work=0), min_work=0) as split:
        split.step(params, inputs)
        split.process.kill()
        split.process.wait()
        with pytest.raises(WorkerError, match="worker process"):
            split.step(params, inputs)
        assert split.process is None  # closed: nothing left running
        _assert_same_step(split.step(params, inputs), _forward_backward(net, params, inputs))  # a new worker


def test_a_failure_inside_the_workers_part_reaches_the_caller(monkeypatch):
    """The worker's part raises in the middle of the recurrence (here: its parameters hold an id the table
    has no row for, which only the worker reads): the caller, waiting at the barrier, raises WorkerError with
    the worker's traceback, and the next step works."""
    net, params = NETS[None]
    inputs = _inputs(net, params, 4, 6, False, True, np.random.default_rng(6))
    with UnitSplit(net, ProcessShards(net, min_work=0), min_work=0) as split:
        split.step(params, inputs)
        work = split.work[3]
        original = np.copyto

        def damage(dst, src, *args, **kwargs):  # the ids the worker reads get an id past the table's rows
            original(dst, src, *args, **kwargs)
            if dst is work["ids"]:
                dst[0, 0] = 10**6

        monkeypatch.setattr(np, "copyto", damage)
        with pytest.raises(WorkerError, match="IndexError"):
            split.step(params, inputs)
        monkeypatch.undo()
        assert split.process is None
        _assert_same_step(split.step(params, inputs), _forward_backward(net, params, inputs))


def test_two_threads_split_the_lstm_by_units():
    with DataParallel(GatedNetwork("lstm", 1), threads=2) as parallel:
        assert isinstance(parallel.processes, UnitSplit)
        assert isinstance(parallel.processes.fallback, ProcessShards)
    with DataParallel(GatedNetwork("lstm", 1), threads=3) as parallel:  # three processes: the batch shards
        assert isinstance(parallel.processes, ProcessShards)


@given(H=st.sampled_from([2, 4, 6, 10]), rows=st.integers(1, 3))
def test_the_columns_of_a_part_are_its_units_four_gates(H, rows):
    """_columns (a view by reshaping) picks J_k of eq. (U1): gate g's columns g H + u for the units u of part k,
    and the two parts' columns are all columns once."""
    W = np.arange(rows * 4 * H).reshape(rows, 4 * H)
    n = H // 2
    both = []
    for k in range(2):
        J = unit_columns(H, k)
        assert J.tolist() == [g * H + u for g in range(4) for u in range(k * n, (k + 1) * n)]
        np.testing.assert_array_equal(_columns(W, k).reshape(rows, -1), W[:, J])
        both += J.tolist()
    assert sorted(both) == list(range(4 * H))


def test_the_worker_fits_in_its_share_of_the_memory_estimate():
    """The unit split's worker's peak resident memory after a step (VmHWM, Linux) is within what the estimate
    counts for one worker (nn/memory.py)."""
    from scratchgen.nn.memory import training_memory

    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc: the peak resident memory of a process is read from /proc/PID/status")
    V, H, E, B, T = 65, 64, 16, 32, 256
    net, _ = _net(E, H=H, V=V)
    p = init_gated_params("lstm", V, H, 1, E, np.random.default_rng(0), np.float32)
    x = np.random.default_rng(1).integers(3, V, size=(B, T))
    with UnitSplit(net, ProcessShards(net, min_work=0), min_work=0) as split:
        split.step(p, (x, x, None, net.start_state(p, B)))
        with open(f"/proc/{split.process.pid}/status") as f:
            peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    args = (V, H, 1, E, B, T, 4, "adam", B, T, 0, 4)
    per_worker = training_memory(*args, processes=2) - training_memory(*args)
    assert peak <= per_worker, (peak, per_worker)
