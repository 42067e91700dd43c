"""PostgresAuditStore specifics: the optional dependency and keeping passwords out of sight."""

from __future__ import annotations

import sys

import pytest

from llm_localfirst.audit import AuditFilter, PostgresAuditStore
from llm_localfirst.audit.postgres import redact_url
from llm_localfirst.errors import AuditError

from .conftest import MakeRecord


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://lf:s3cret@db:5432/audit", "postgresql://lf:***@db:5432/audit"),
        (
            "postgres://lf:p%40ss@db/audit?sslmode=require",
            "postgres://lf:***@db/audit?sslmode=require",
        ),
        ("postgresql://lf@db/audit", "postgresql://lf@db/audit"),
        (
            "postgresql://db/audit?user=lf&password=s3cret&sslmode=require",
            "postgresql://db/audit?user=lf&password=***&sslmode=require",
        ),
        ("postgresql://:s3cret@db1,db2/audit", "postgresql://:***@db1,db2/audit"),
    ],
)
def test_redact_url_hides_the_password_wherever_it_is(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url)


def test_a_missing_psycopg_raises_import_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail

    with pytest.raises(ImportError, match=r"pip install 'llm-localfirst\[postgres\]'"):
        PostgresAuditStore("postgresql://lf:s3cret@127.0.0.1:1/x")


def test_an_unreachable_server_is_an_audit_error_without_the_password() -> None:
    import psycopg

    with pytest.raises(AuditError) as caught:
        PostgresAuditStore("postgresql://lf:topsecret-pw@127.0.0.1:1/x", timeout=2)

    assert "topsecret-pw" not in str(caught.value)
    assert caught.value.location == "postgresql://lf:***@127.0.0.1:1/x"
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


@pytest.mark.postgres
def test_location_and_repr_of_a_live_store_hide_the_password(postgres_url: str) -> None:
    store = PostgresAuditStore(postgres_url)
    try:
        password = postgres_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        assert password
        assert password not in store.location
        assert password not in repr(store)
        assert ":***@" in store.location
    finally:
        store.close()


@pytest.mark.postgres
def test_a_broken_connection_is_replaced_instead_of_reused(
    postgres_url: str, make_record: MakeRecord
) -> None:
    store = PostgresAuditStore(postgres_url, max_connections=1)
    try:
        with store._pool.connection() as conn:
            conn.close()  # as if the server dropped it
        store.write_many([make_record()])
        assert store.count(AuditFilter()) == 1
    finally:
        store.close()
