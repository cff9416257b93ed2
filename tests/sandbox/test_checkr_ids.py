"""The sandbox's Checkr ids: what a fan-out of a thousand connections needs of them."""

from __future__ import annotations

import pytest

from sandbox.checkr.ids import CANDIDATE, MAX_ACCOUNTS, REPORT, IdCodec, Ref


def test_ids_round_trip_past_256_accounts_and_keep_the_ids_below() -> None:
    codec = IdCodec(7, "checkr")
    for ref in (Ref(CANDIDATE, 0, 5, 0), Ref(REPORT, 255, 123_456, 3), Ref(REPORT, 256, 1, 0),
                Ref(CANDIDATE, 1000, 7, 0), Ref(REPORT, MAX_ACCOUNTS - 1, 99, 65_535)):
        assert codec.decode(codec.encode(*ref)) == ref
    # an account below 256 keeps the id it had when accounts were one byte
    assert codec.encode(CANDIDATE, 3, 42) != codec.encode(CANDIDATE, 3 + 256, 42)
    ids = {codec.encode(CANDIDATE, a, 1) for a in range(600)}
    assert len(ids) == 600


def test_an_account_the_id_cannot_hold_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="account below 4096"):
        IdCodec(7, "checkr").encode(CANDIDATE, MAX_ACCOUNTS, 1)


def test_a_world_of_334_accounts_finds_each_accounts_own_candidates() -> None:
    import time

    from sandbox.checkr.world import ApiError, CheckrWorld

    now = int(time.time())
    world = CheckrWorld(seed=3, scale=2, start=now - 86_400 * 30, staging=False, accounts=334)
    last, first = world.accounts[333], world.accounts[333 - 256]  # one byte would have made them the same
    cid = world.candidate_object(last, 0, now)["id"]
    assert world.find_candidate(last, cid, now) == 0
    with pytest.raises(ApiError):
        world.find_candidate(first, cid, now)
