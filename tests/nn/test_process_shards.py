"""nn/process_shards.py: the shards of a step in worker processes give the numbers of the shards in one process.

eq. (P1)-(P3) of nn/parallel.py. Checked in float64 against the whole batch's forward + backward (to rounding:
the sums over rows are grouped by shard) and against sharded_step_reference, the shards one after another in
this process (the same functions on the same rows: equal to 1e-13), with and without labels, a padding mask,
dropout and a carried state; a worker that dies makes the step fail with WorkerError, not hang.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nn_inputs import chunk_inputs, network  # tests/nn/nn_inputs.py

from scratchgen.nn.gated import GatedNetwork
from scratchgen.nn.parallel import DataParallel, sharded_step_reference
from scratchgen.nn.process_shards import ProcessShards, WorkerError

NETS = {labelled: network("lstm", labelled, np.random.default_rng(7)) for labelled in (False, True)}


@pytest.fixture(scope="module")
def shards():
    """One pool of workers per labelled/unlabelled network (the layout of the parameters picks the workers)."""
    pools = {labelled: ProcessShards(NETS[labelled][0], processes=2, min_work=0) for labelled in NETS}
    yield pools
    for pool in pools.values():
        pool.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    B=st.integers(8, 13),
    T=st.integers(1, 7),
    labelled=st.booleans(),
    masked=st.booleans(),
    dropout=st.booleans(),
    carried=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_step_in_processes_equals_the_whole_batch(shards, B, T, labelled, masked, dropout, carried, seed):
    rng = np.random.default_rng(seed)
    net, params = NETS[labelled]
    inputs = chunk_inputs(net, params, "lstm", B, T, labelled, masked, dropout, carried, rng)
    (loss, state_T), cache = net.forward(params, inputs)  # the whole batch, one process
    grads, _ = net.backward(params, cache)
    loss_p, state_p, grads_p = shards[labelled].step(params, inputs)
    assert len(shards[labelled].workers) == 1  # the batch was cut: one worker process ran the second shard
    assert abs(loss_p - loss) <= 1e-12 * max(1.0, abs(loss))  # eq. (P1)
    assert set(grads_p) == set(grads)
    for key in grads:  # eq. (P2)
        np.testing.assert_allclose(grads_p[key], grads[key], rtol=1e-10, atol=1e-12, err_msg=key)
    if state_T is None:
        assert state_p is None
    else:  # eq. (P3)
        np.testing.assert_allclose(state_p, state_T, rtol=1e-12, atol=1e-14)
    loss_r, state_r, grads_r = sharded_step_reference(net, params, inputs, 2, min_work=0)
    assert abs(loss_p - loss_r) <= 1e-13 * max(1.0, abs(loss_r))
    for key in grads_r:
        np.testing.assert_allclose(grads_p[key], grads_r[key], rtol=1e-13, atol=1e-15, err_msg=key)


def test_the_workers_read_the_parameters_of_each_step(shards):
    """The caller's parameters change between steps (the optimiser): the workers see the new values."""
    net, params = NETS[False]
    rng = np.random.default_rng(1)
    inputs = chunk_inputs(net, params, "lstm", 8, 4, False, False, False, False, rng)
    first = shards[False].step(params, inputs)
    moved = {k: v * 0.5 for k, v in params.items()}
    second = shards[False].step(moved, inputs)
    (loss, _), cache = net.forward(moved, inputs)
    assert abs(second[0] - loss) <= 1e-12 * max(1.0, abs(loss))
    assert second[0] != first[0]


def test_a_dead_worker_fails_the_step_with_a_clear_error():
    net, params = NETS[False]
    inputs = chunk_inputs(net, params, "lstm", 8, 3, False, False, False, False, np.random.default_rng(2))
    with ProcessShards(net, processes=2, min_work=0) as pool:
        pool.step(params, inputs)
        process, _ = pool.workers[0]
        process.kill()
        process.wait()
        with pytest.raises(WorkerError, match="worker process"):
            pool.step(params, inputs)
        assert pool.workers == []  # closed: nothing left running
        loss, _, _ = pool.step(params, inputs)  # a new worker starts
        (expected, _), _ = net.forward(params, inputs)
        assert abs(loss - expected) <= 1e-12


@pytest.mark.parametrize("cell, processes", [("lstm", True), ("gru", False)])
def test_two_threads_shard_the_lstm_over_processes_and_the_gru_over_threads(cell, processes):
    net = GatedNetwork(cell, 1)
    with DataParallel(net, threads=2) as parallel:
        assert (parallel.processes is not None) == processes
    assert parallel.processes is None  # closed with the context


def test_a_message_on_the_pipe_comes_back_equal_and_runs_no_code():
    """The pipe's messages are JSON and raw array bytes (no pickle): nested tuples, lists, dicts, None, NaN,
    NumPy scalars and arrays of any shape come back equal, of the same types; objects are refused."""
    import io

    from scratchgen.nn.process_shards import _receive_from, _send

    rng = np.random.default_rng(3)
    message = (
        "ok",
        float("nan"),
        np.float32(1.5),
        (rng.normal(size=(2, 3, 4)).astype(np.float32), None, (rng.random((3, 2)) < 0.5, 0.25)),
        ["W.0", "b"],
        {"input[3]": np.arange(6, dtype=np.int64).reshape(2, 3)[:, ::2], "empty": np.zeros((0, 5))},
        True,
        7,
    )
    stream = io.BytesIO()
    _send(stream, message)
    _send(stream, None)
    stream.seek(0)
    back = _receive_from(stream)
    assert _receive_from(stream) is None
    with pytest.raises(EOFError):
        _receive_from(stream)
    assert type(back) is tuple and back[0] == "ok" and np.isnan(back[1]) and back[4] == ["W.0", "b"]
    assert type(back[2]) is np.float32 and back[2] == np.float32(1.5)
    x, none, (drop, p) = back[3]
    assert none is None and p == 0.25 and drop.dtype == bool
    np.testing.assert_array_equal(x, message[3][0])
    np.testing.assert_array_equal(drop, message[3][2][0])
    assert back[5].keys() == message[5].keys()
    for key in message[5]:
        assert back[5][key].dtype == message[5][key].dtype
        np.testing.assert_array_equal(back[5][key], message[5][key])
    assert back[6:] == (True, 7)
    with pytest.raises(TypeError, match="Python objects"):
        _send(io.BytesIO(), np.array([object()]))


def test_a_worker_builds_networks_of_scratchgen_only():
    from scratchgen.nn.process_shards import _network, _spec

    net = GatedNetwork("lstm", 2)
    built = _network(_spec(net))
    assert type(built) is GatedNetwork and (built.cell, built.layers) == ("lstm", 2)
    with pytest.raises(ValueError, match="scratchgen.nn only"):
        _network({"module": "os", "name": "system", "arguments": {}})
