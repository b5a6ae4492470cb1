"""The benchmark's pure helpers: percentiles, summaries, the table, the profile summary. No timings."""

from __future__ import annotations

import io
import json
import urllib.request

import pytest

from bench import stats
from bench.profile import summarize
from bench.progress import Progress, table, verdict
from tests.fakes.twilio_server import FakeTwilio


def test_percentile_interpolates_between_closest_ranks():
    values = [4, 1, 3, 2]  # unsorted on purpose
    assert stats.percentile(values, 0) == 1
    assert stats.percentile(values, 100) == 4
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(list(range(101)), 99) == 99
    assert stats.percentile([7], 99) == 7


def test_percentile_of_nothing_is_none_and_bad_percentiles_are_refused():
    assert stats.percentile([], 50) is None
    with pytest.raises(ValueError):
        stats.percentile([1], 101)


def test_summary_and_its_empty_case():
    result = stats.summary([3.0, 1.0, 2.0])
    assert result == {"n": 3, "p50": 2.0, "p95": 2.9, "p99": pytest.approx(2.98), "max": 3.0, "min": 1.0}
    assert stats.summary([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "min": None}


def test_rate_ratio_scaled_and_duplicates():
    assert stats.rate(10, 2.0) == 5.0
    assert stats.rate(10, 0) is None
    assert stats.ratio(1.0, 4.0) == 0.25
    assert stats.ratio(None, 4.0) is None
    assert stats.ratio(1.0, 0) is None
    assert stats.scaled(0.0123, 1000) == 12.3
    assert stats.scaled(None, 1000) is None
    assert stats.duplicates([1, 1, 3, 2]) == 3  # 2 extra for the third key, 1 for the fourth


def test_verdict_and_table():
    assert verdict(None, lambda v: v < 1) == "n/a"
    assert verdict(0, lambda v: v < 1) == "met"
    assert verdict(2, lambda v: v < 1) == "MISSED"
    text = table([("a", "1", "<= 2", "met"), ("longer name", "10", "", "")], headers=("figure", "value", "t", ""))
    lines = text.splitlines()
    assert lines[0].startswith("figure       value")
    assert lines[3].startswith("longer name  10")
    assert all(line == line.rstrip() for line in lines)


def test_progress_writes_quarters_when_not_on_a_terminal():
    stream = io.StringIO()
    with Progress("phase", 8, stream=stream) as bar:
        for done in range(1, 9):
            bar.update(done)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5  # 0%, 25%, 50%, 75% and the closing line
    assert "8/8" in lines[-1] and "100%" in lines[-1]


def test_profile_summary_counts_busy_samples_only(tmp_path):
    raw = tmp_path / "worker.txt"
    raw.write_text(
        "process 1;main (a.py:1);work (b.py:2);query (c.py:3) 30\n"
        "process 1;main (a.py:1);work (b.py:2) 10\n"
        "process 1;main (a.py:1);select (selectors.py:468) 60\n"
    )
    text = summarize(raw)
    assert text.startswith("40 busy samples")
    assert "100.0%  work (b.py:2)" in text
    assert "75.0%  query (c.py:3)" in text
    assert "selectors" not in text


def test_the_fake_twilio_server_tells_another_process_what_it_received():
    with FakeTwilio() as fake:
        fake._accept({"To": "+14155550100", "From": "+15005550006", "Body": "first"})
        fake._accept({"To": "+14155550101", "From": "+15005550006", "Body": "second"})
        with urllib.request.urlopen(f"{fake.url}/_fake/count") as response:
            assert json.load(response) == {"count": 2, "failed": 0}
        with urllib.request.urlopen(f"{fake.url}/_fake/messages?after=1") as response:
            answer = json.load(response)
    assert answer["count"] == 2
    assert [m["body"] for m in answer["messages"]] == ["second"]
    assert answer["messages"][0]["received_at"] == fake.messages[1].received_at
