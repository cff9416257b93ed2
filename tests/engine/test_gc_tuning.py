"""While syncs run the collector runs less often and skips what existed before; after, as it was."""

from __future__ import annotations

import gc
import threading

from integrations.engine.gc_tuning import GEN0_THRESHOLD, fewer_collections


def test_tuned_while_a_sync_runs_and_restored_after_the_last_one() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0  # (nothing in the test process freezes for good)
    with fewer_collections():
        assert gc.get_threshold()[0] == max(GEN0_THRESHOLD, before[0])
        assert gc.get_freeze_count() > 0  # objects that existed are out of the collector's scans
        with fewer_collections():  # a second sync in the same process, e.g. a flow's thread pool
            pass
        assert gc.get_threshold()[0] == max(GEN0_THRESHOLD, before[0])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_overlapping_syncs_on_threads_restore_once_both_end() -> None:
    before = gc.get_threshold()
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[int] = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            second_done.wait(5)
            seen.append(gc.get_threshold()[0])

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    with fewer_collections():
        pass
    second_done.set()
    t.join(5)
    assert seen == [max(GEN0_THRESHOLD, before[0])]  # the second sync ending did not undo it early
    assert gc.get_threshold() == before


def test_collection_switched_off_by_threshold_zero_stays_off() -> None:
    before = gc.get_threshold()
    gc.set_threshold(0, before[1], before[2])
    try:
        with fewer_collections():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_a_freeze_made_by_the_host_program_is_left_alone() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with fewer_collections():
            pass
        assert gc.get_freeze_count() > frozen // 2  # not unfrozen (a few frozen objects may be freed)
    finally:
        gc.unfreeze()
