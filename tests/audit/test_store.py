"""The AuditStore contract, run against every store: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from llm_localfirst.audit import AuditFilter, AuditRecord, AuditStore, TokenTotals

from .conftest import MakeRecord, ts_at


def test_every_field_survives_a_write_and_a_read(
    store: AuditStore, full_record: AuditRecord, make_record: MakeRecord
) -> None:
    sparse = make_record(
        ts=ts_at(2), destination=None, locality=None, model=None, tokens_in=None, tokens_out=None
    )
    store.write_many([full_record, sparse])

    assert store.get(full_record.id) == full_record
    assert store.get(sparse.id) == sparse
    assert store.query(AuditFilter()) == [sparse, full_record]


def test_get_returns_none_for_an_unknown_id(store: AuditStore) -> None:
    assert store.get("0190c7a0-0000-7000-8000-000000000000") is None


def test_writing_an_id_twice_keeps_the_first_row_so_a_retried_batch_is_harmless(
    store: AuditStore, make_record: MakeRecord
) -> None:
    first = make_record(kind="bulk")
    store.write_many([first])
    store.write_many([first, make_record(id=first.id, kind="reason")])
    store.write_many([])

    assert store.count(AuditFilter()) == 1
    assert store.get(first.id) == first


@pytest.fixture
def varied(store: AuditStore, make_record: MakeRecord) -> list[AuditRecord]:
    """Twelve records over twelve seconds, varied on every filterable field."""
    faces = ["python", "cli", "mcp", "proxy"]
    destinations = ["ollama", "claude", None]
    outcomes = ["ok", "error", "refused"]
    records = [
        make_record(
            ts=ts_at(i),
            face=faces[i % 4],
            destination=destinations[i % 3],
            locality={"ollama": "local", "claude": "cloud", None: None}[destinations[i % 3]],
            outcome=outcomes[i % 3],
            sensitive=i % 2 == 0,
            tokens_in=i,
            tokens_out=None if i == 4 else 10 * i,
        )
        for i in range(12)
    ]
    store.write_many(records[:5])  # two batches, to query across them
    store.write_many(records[5:])
    return records


def _newest_first(records: list[AuditRecord]) -> list[AuditRecord]:
    return sorted(records, key=lambda r: (r.ts, r.id), reverse=True)


@pytest.mark.parametrize(
    ("filter", "expected_count"),
    [
        (AuditFilter(), 12),
        (AuditFilter(face="cli"), 3),
        (AuditFilter(destination="claude"), 4),
        (AuditFilter(outcome="refused"), 4),
        (AuditFilter(locality="local"), 4),
        (AuditFilter(sensitive=True), 6),
        (AuditFilter(sensitive=False), 6),
        (AuditFilter(since=ts_at(3)), 9),
        (AuditFilter(until=ts_at(3)), 3),
        (AuditFilter(since=ts_at(3), until=ts_at(7)), 4),
        (AuditFilter(face="python", sensitive=True, destination="ollama"), 1),
        (AuditFilter(face="cli", outcome="refused"), 1),
        (AuditFilter(face="cli", sensitive=True), 0),
    ],
)
def test_filters_select_the_same_rows_in_every_store(
    store: AuditStore, varied: list[AuditRecord], filter: AuditFilter, expected_count: int
) -> None:
    expected = _newest_first([r for r in varied if filter.matches(r)])

    assert len(expected) == expected_count
    assert store.query(filter) == expected
    assert store.count(filter) == expected_count


def test_pages_walk_every_row_newest_first_without_gaps_or_repeats(
    store: AuditStore, varied: list[AuditRecord]
) -> None:
    pages = [store.query(AuditFilter(limit=5, offset=offset)) for offset in (0, 5, 10, 15)]

    assert [len(page) for page in pages] == [5, 5, 2, 0]
    assert [r for page in pages for r in page] == _newest_first(varied)
    assert store.count(AuditFilter(limit=1, offset=11)) == 12  # count ignores paging


def test_rows_with_the_same_timestamp_are_ordered_by_id(
    store: AuditStore, make_record: MakeRecord
) -> None:
    same_time = [make_record(ts=ts_at(0)) for _ in range(5)]
    store.write_many(list(reversed(same_time)))

    assert store.query(AuditFilter()) == list(reversed(same_time))


def test_token_totals_sum_per_destination_and_overall(
    store: AuditStore, varied: list[AuditRecord]
) -> None:
    totals = store.token_totals(AuditFilter(limit=1))

    # ollama: i = 0, 3, 6, 9; claude: 1, 4 (no tokens_out), 7, 10; none: 2, 5, 8, 11.
    assert totals.by_destination == {
        "claude": TokenTotals(requests=4, tokens_in=22, tokens_out=180),
        "ollama": TokenTotals(requests=4, tokens_in=18, tokens_out=180),
    }
    assert (totals.requests, totals.tokens_in, totals.tokens_out) == (12, 66, 620)
    assert totals.to_dict()["by_destination"] == {
        "claude": {"requests": 4, "tokens_in": 22, "tokens_out": 180},
        "ollama": {"requests": 4, "tokens_in": 18, "tokens_out": 180},
    }


def test_token_totals_respect_the_filter_and_are_zero_when_nothing_matches(
    store: AuditStore, varied: list[AuditRecord]
) -> None:
    local = store.token_totals(AuditFilter(locality="local", since=ts_at(6)))
    assert local == TokenTotals(
        requests=2,
        tokens_in=15,
        tokens_out=150,
        by_destination={"ollama": TokenTotals(2, 15, 150)},
    )
    assert store.token_totals(AuditFilter(face="worker")) == TokenTotals()


def test_a_closed_store_refuses_further_use(store: AuditStore) -> None:
    store.close()
    store.close()  # idempotent

    with pytest.raises(RuntimeError, match="closed"):
        store.count(AuditFilter())


def test_location_names_the_store(store: AuditStore) -> None:
    assert store.location
    assert store.location in repr(store) or type(store).__name__ == "MemoryAuditStore"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, r"limit must be between 1 and 1000, got 0"),
        ({"limit": 1001}, r"limit must be between 1 and 1000, got 1001"),
        ({"limit": True}, r"limit must be an integer"),
        ({"offset": -1}, r"offset must be 0 or more, got -1"),
        ({"since": "yesterday"}, r"since must be an ISO-8601 date or date-time"),
        ({"until": "2026-11-23T10:00:00"}, r"until must carry a UTC offset"),
        (
            {"since": "2026-11-24", "until": "2026-11-23"},
            r"since \(2026-11-24T00:00:00.000Z\)"
            r" must be before until",
        ),
        ({"face": "pyhton"}, r"face must be one of \['cli', 'mcp', 'proxy', 'python', 'worker'\]"),
        ({"outcome": "fine"}, r"outcome must be one of"),
        ({"sensitive": "yes"}, r"sensitive must be True, False or None"),
    ],
)
def test_an_invalid_filter_is_refused_with_a_precise_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AuditFilter(**kwargs)  # type: ignore[arg-type]


def test_filter_times_are_normalised_so_they_compare_with_record_times() -> None:
    f = AuditFilter(since="2026-11-23T05:00:00+02:00", until="2026-11-24")

    assert f.since == "2026-11-23T03:00:00.000Z"
    assert f.until == "2026-11-24T00:00:00.000Z"
