import gc

import pytest

from sync.bulk import gc_paused


def _failing_batch() -> None:
    with gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("the batch failed")


def test_gc_paused_turns_collection_off_and_back_on_even_when_the_batch_fails():
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="the batch failed"):
        _failing_batch()
    assert gc.isenabled()


def test_gc_paused_leaves_collection_off_when_the_caller_had_turned_it_off():
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
