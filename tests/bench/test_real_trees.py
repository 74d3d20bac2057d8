"""Adding runs of more seeds to a row of the real-tree record."""

from __future__ import annotations

import pytest

from bench.real_trees import extend_row, merge_rows, summarize


def _run(seed: int, test: float) -> dict:
    return {"seed": seed, "test": {"ap@0.5": test}, "test_alive": {"ap@0.5": 2 * test},
            "train_tile": {"ap@0.5": 0.9}}


def test_runs_of_new_seeds_join_the_row_of_the_same_name_and_its_medians_are_retaken():
    earlier = {**summarize("ours", [_run(0, 0.1), _run(1, 0.5), _run(2, 0.2)]),
               "command": "python -m bench.real_trees", "measured_at": "2026-12-06 21:49 UTC"}
    other = {**summarize("peer", [_run(0, 0.3)]), "command": "c", "measured_at": "t"}
    new = {**summarize("ours", [_run(4, 0.0), _run(3, 0.01)]), "command": "python -m bench.real_trees --add "
           "--first-seed 3 --repeats 2", "measured_at": "2026-12-07 03:40 UTC"}
    row = extend_row([other, earlier], new)
    assert [r["seed"] for r in row["runs"]] == [0, 1, 2, 3, 4]
    assert row["test_ap@0.5"] == 0.1 and row["test_alive_ap@0.5"] == 0.2  # medians of five, not of three
    assert row["command"] == ("python -m bench.real_trees (2026-12-06 21:49 UTC), then python -m bench.real_trees "
                              "--add --first-seed 3 --repeats 2")
    assert row["measured_at"] == "2026-12-07 03:40 UTC"
    assert extend_row([other], new) is new  # a row not in the record yet stands as it is
    with pytest.raises(SystemExit, match="already has runs of seeds"):
        extend_row([earlier], {**summarize("ours", [_run(2, 0.3)]), "command": "c", "measured_at": "t"})


def test_a_row_run_again_keeps_its_place_and_a_new_one_comes_last():
    def row(name: str, *seeds: int) -> dict:
        return {**summarize(name, [_run(seed, 0.1 * seed) for seed in seeds]), "command": "c", "measured_at": "t"}

    record = [row("ours", 0, 1, 2), row("peer", 0, 1, 2), row("chance", 0, 1, 2)]
    merged = merge_rows(record, [row("new", 0, 1, 2), row("peer", 0, 1, 2)], extend=False)
    assert [r["system"] for r in merged] == ["ours", "peer", "chance", "new"]
    assert merged[1] is not record[1]
    merged = merge_rows(record, [row("peer", 3, 4)], extend=True)
    assert [r["system"] for r in merged] == ["ours", "peer", "chance"]
    assert [r["seed"] for r in merged[1]["runs"]] == [0, 1, 2, 3, 4]
    assert [r["seed"] for r in merge_rows(record, [row("peer", 3, 4)], extend=False)[1]["runs"]] == [3, 4]
