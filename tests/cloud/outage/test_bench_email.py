"""``smartmeter bench email`` at a tiny size: the real collector, manager and notifiers, Mosquitto and
the SMTP sink process run, and every customer of the area that lost power gets exactly one e-mail,
the storm's customers none again, nobody else any. Counts only: timings are the bench's to print."""
from __future__ import annotations

from smartmeter.bench.email import Options, run


def test_the_bench_mails_each_customer_of_the_area_once_and_nobody_else(tmp_path, capsys):
    outcome = run(Options(meters=2_000, area=50, storm=10, notifiers=2, declaration_delay=2.0), tmp_path)

    assert (outcome.area_customers, outcome.area_mailed, outcome.area_twice) == (50, 50, 0)
    assert (outcome.storm_customers, outcome.storm_mailed, outcome.storm_twice) == (400, 400, 0)
    assert outcome.others_mailed == 0
    assert len(outcome.delays) == 50
    assert "checks: area 50 of 50 customers e-mailed" in capsys.readouterr().out
