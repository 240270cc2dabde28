"""The learning-rate schedule: a hold at the full rate, then an exponential decay to the final rate."""

import pytest

from sape_geom.nn.trainer import learning_rate


def test_constant_without_a_final_rate():
    assert learning_rate((1e-3, None, 100), 500, 1000) == 1e-3


@pytest.mark.parametrize("hold", [0, 150])
def test_holds_then_decays_to_the_final_rate_at_the_last_step(hold):
    schedule, total = (1e-3, 5e-5, hold), 1000
    rates = [learning_rate(schedule, step, total) for step in range(total + 1)]
    assert rates[: hold + 1] == [1e-3] * (hold + 1)
    assert rates[-1] == pytest.approx(5e-5)
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    mid = hold + (total - hold) // 2  # half-way through the decay: the geometric mean
    assert rates[mid] == pytest.approx((1e-3 * 5e-5) ** 0.5, rel=1e-6)


def test_a_short_run_holds_for_at_most_half_of_it():
    rates = [learning_rate((1e-3, 5e-5, 150), step, 100) for step in range(101)]
    assert rates[50] == 1e-3 and rates[51] < 1e-3 and rates[100] == pytest.approx(5e-5)
