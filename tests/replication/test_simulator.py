"""The simulator over the real replica: a fixed set of seeds, exact replay, and proof
that its checks fail when the protocol is broken."""

from __future__ import annotations

import pytest

from coopnode.replication import Effect, Message, Replica
from coopnode.replication.messages import DoViewChange, Prepare
from coopnode.replication.simulator import SimulationFailure, main, run_seed

# The seeds `make test` runs (about 30 ms each on this machine, so 200 take seconds); more
# run with `python -m coopnode.replication.simulator --seeds N`.
FIXED_SEEDS = range(200)


@pytest.mark.parametrize("seed", FIXED_SEEDS)
def test_a_fixed_seed_keeps_every_acknowledged_op(seed: int) -> None:
    result = run_seed(seed)
    assert result.acknowledged == 80
    assert result.final_op == 80


def test_the_fixed_seeds_inject_every_kind_of_fault() -> None:
    results = [run_seed(seed) for seed in range(24)]
    assert sum(result.crashes for result in results) > 0
    assert sum(result.entries_corrupted for result in results) > 0
    assert sum(result.disks_lost for result in results) > 0
    assert sum(result.snapshots_corrupted for result in results) > 0
    assert sum(result.snapshots_installed for result in results) > 0
    assert sum(result.partitions for result in results) > 0
    assert sum(result.stalls for result in results) > 0
    assert sum(result.messages_dropped for result in results) > 0
    assert max(result.final_view for result in results) > 0
    assert {result.replica_count for result in results} == {3, 5}


def test_a_seed_replays_exactly() -> None:
    assert run_seed(3) == run_seed(3)


class CommitsWithoutQuorum(Replica):
    """Broken on purpose: the primary commits what its own disk holds, alone."""

    def _commit_by_quorum(self) -> list[Effect]:
        return self._raise_commit(self.op_durable)


class AcceptsOlderViews(Replica):
    """Broken on purpose: a replica takes prepares of any view, even one it left."""

    def on_message(self, message: Message) -> list[Effect]:
        if isinstance(message, Prepare) and message.view < self.view:
            message = Prepare(view=self.view, commit=message.commit, entry=message.entry)
        return super().on_message(message)


class KeepsItsOwnLog(Replica):
    """Broken on purpose: a new primary keeps its own log instead of the most advanced
    of the quorum's (what Raft's election restriction and VR's log choice prevent)."""

    def _on_do_view_change(self, message: DoViewChange) -> list[Effect]:
        own = DoViewChange(
            view=message.view,
            replica=message.replica,
            log_view=self.log_view,
            commit=min(message.commit, self.op),
            log=list(self.log),
        )
        return super()._on_do_view_change(own)


@pytest.mark.parametrize("broken", [CommitsWithoutQuorum, AcceptsOlderViews, KeepsItsOwnLog])
def test_the_checks_catch_a_broken_protocol_within_the_fixed_seeds(
    broken: type[Replica],
) -> None:
    first_failure = None
    for seed in FIXED_SEEDS:
        try:
            run_seed(seed, replica_class=broken)
        except SimulationFailure as failure:
            first_failure = failure
            break
    assert first_failure is not None, "no fixed seed caught the broken replica"
    assert f"seed {first_failure.seed} " in str(first_failure)
    # The failing seed replays exactly: the same breach at the same tick.
    with pytest.raises(SimulationFailure) as replayed:
        run_seed(first_failure.seed, replica_class=broken)
    assert str(replayed.value) == str(first_failure)


def test_the_command_runs_a_range_of_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "2", "--first", "5"]) == 0
    assert "2 of 2 seeds passed" in capsys.readouterr().out
