"""The summary of the identity-check bench (bench/recovery.py): medians of the runs without
and with the check, in µs, what the check adds, and the ratio."""

from bench.recovery import paired


def test_medians_in_microseconds_the_difference_and_the_ratio() -> None:
    runs = {"off": [0.0009, 0.0005, 0.0004], "on": [0.0006, 0.0015, 0.0012, 0.0030]}
    assert paired(runs) == {"off_us": 500.0, "on_us": 1350.0, "added_us": 850.0, "ratio": 2.7}


def test_an_outlier_run_does_not_move_the_median() -> None:
    runs = {"off": [0.001, 0.001, 0.5], "on": [0.002, 0.002, 0.002]}
    assert paired(runs)["ratio"] == 2.0
