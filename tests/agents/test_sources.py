"""The worker reads files itself, only inside allowed roots, and refuses everything else.

Every refusal is checked through ``Worker.run`` against loopback fakes: the error
names the path and why, and neither the local model nor the "cloud" receives a byte.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_localfirst import Router
from llm_localfirst.agents import Worker
from llm_localfirst.agents.readers import UnreadableDocument, html_text, read_document
from llm_localfirst.agents.sources import NO_ROOTS, Roots, SourceRefused, collect, roots_from_env
from llm_localfirst.audit import AuditRecord
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy
from tests.agents.documents import write_docx, write_pdf

Rows = Callable[[Router], list[AuditRecord]]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/`` with notes, a nested folder and a hidden folder; ``outside/`` beside it."""
    root = tmp_path / "root"
    (root / "contracts").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "notes.md").write_text("# Notes\nRenewal of Acme on 2027-03-01.\n", encoding="utf-8")
    (root / "contracts" / "acme.txt").write_text(
        "Acme contract, renews 2027-03-01.", encoding="utf-8"
    )
    (root / "contracts" / "globex.txt").write_text(
        "Globex contract, renews 2026-12-31.", encoding="utf-8"
    )
    (root / "contracts" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / ".git" / "config").write_text("secret", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("not yours", encoding="utf-8")
    return root


def router_with_roots(
    local: FakeUpstream,
    cloud: FakeUpstream,
    store: MemoryAuditStore,
    roots: list[str],
    **worker: object,
) -> Router:
    data = offline_policy(local, cloud).model_dump()
    data["worker"] = {"roots": roots, **worker}
    return Router(policy_from_data(data), audit=store, probe_ttl=0.001)


@pytest.fixture
def rooted(
    tree: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> Iterator[Router]:
    router = router_with_roots(fake_local, fake_cloud, memory_audit, [str(tree)])
    yield router
    router.close()


# ------------------------------------------------------------------ reading


def test_paths_under_a_root_reach_the_local_model_labelled_by_relative_path(
    rooted: Router, tree: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    result = Worker(rooted).run("List renewal dates", paths=["contracts"])
    (call,) = fake_local.model_calls()
    sent = str(call.body["messages"][-1]["content"])
    assert "=== File: contracts/acme.txt ===" in sent and "Acme contract" in sent
    assert "=== File: contracts/globex.txt ===" in sent and "logo.png" not in sent
    assert str(tree) not in sent  # relative labels only, never absolute paths
    assert fake_cloud.model_calls() == []
    assert result.files == ("contracts/acme.txt", "contracts/globex.txt")
    assert result.bytes_read == sum(
        (tree / "contracts" / n).stat().st_size for n in ("acme.txt", "globex.txt")
    )


def test_globs_absolute_paths_and_tilde_are_read_inside_the_roots(
    rooted: Router, tree: Path, fake_local: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tree.parent))
    result = Worker(rooted).run(
        "x", paths=["**/*.md", str(tree / "contracts" / "acme.txt"), "~/root/contracts/globex.txt"]
    )
    assert result.files == ("notes.md", "contracts/acme.txt", "contracts/globex.txt")


def test_hidden_folders_are_skipped_when_a_folder_is_read(
    rooted: Router, fake_local: FakeUpstream
) -> None:
    result = Worker(rooted).run("x", paths=["."])
    assert ".git/config" not in result.files and "notes.md" in result.files


def test_pdf_docx_and_html_are_read_through_their_readers(
    rooted: Router, tree: Path, fake_local: FakeUpstream
) -> None:
    write_pdf(
        tree / "contracts" / "initech.pdf", ["Initech master agreement", "Renewal date 2028-01-15"]
    )
    write_docx(
        tree / "contracts" / "hooli.docx", ["Hooli services agreement"], [["Renewal", "2029-06-30"]]
    )
    (tree / "contracts" / "page.html").write_text(
        "<html><head><script>alert(1)</script></head><body><p>Umbrella renews "
        "<b>2030-02-02</b></p></body></html>",
        encoding="utf-8",
    )
    Worker(rooted).run(
        "List renewal dates", paths=["contracts/*.pdf", "contracts/*.docx", "contracts/page.html"]
    )
    sent = str(fake_local.model_calls()[0].body["messages"][-1]["content"])
    assert "Initech master agreement" in sent and "Renewal date 2028-01-15" in sent
    assert "Hooli services agreement" in sent and "Renewal | 2029-06-30" in sent
    assert "Umbrella renews 2030-02-02" in sent and "alert(1)" not in sent


def test_html_visible_text_drops_scripts_styles_and_markup() -> None:
    assert html_text("<title>T</title><style>p{}</style><p>a&amp;b</p><div>c</div>") == (
        "T\na&b\nc"
    )


def test_an_unsupported_or_binary_file_named_on_its_own_is_refused_by_name(
    rooted: Router, fake_local: FakeUpstream
) -> None:
    with pytest.raises(SourceRefused, match=r"logo\.png.*format"):
        Worker(rooted).run("x", paths=["contracts/logo.png"])
    with pytest.raises(UnreadableDocument, match="binary"):
        read_document("x.txt", b"ab\x00cd")
    assert fake_local.model_calls() == []


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../outside/private.txt", "'..' leads outside"),
        ("{outside}/private.txt", "outside the allowed roots"),
        ("link.txt", "symlink"),
        ("linkdir/private.txt", "symlink"),
        ("missing.txt", "no such file"),
    ],
)
def test_paths_outside_the_roots_are_refused_naming_the_path_and_nothing_is_sent(
    rooted: Router,
    tree: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    audit_rows: Rows,
    delegation_rows: Rows,
    path: str,
    why: str,
) -> None:
    outside = tree.parent / "outside"
    (tree / "link.txt").symlink_to(outside / "private.txt")
    (tree / "linkdir").symlink_to(outside)
    path = path.format(outside=outside)
    with pytest.raises(SourceRefused, match=why) as info:
        Worker(rooted).run("Summarize", paths=[path])
    assert path in str(info.value) and info.value.param == "paths"
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []
    assert audit_rows(rooted) == []
    (row,) = delegation_rows(rooted)
    assert (row.outcome, row.error_class, row.metadata["files"]) == (
        "refused",
        "SourceRefused",
        "0",
    )


def test_a_symlink_inside_a_folder_that_leaves_the_root_refuses_the_whole_folder(
    rooted: Router, tree: Path, fake_local: FakeUpstream
) -> None:
    (tree / "contracts" / "sneaky.txt").symlink_to(tree.parent / "outside" / "private.txt")
    with pytest.raises(SourceRefused, match="symlink"):
        Worker(rooted).run("x", paths=["contracts"])
    assert fake_local.model_calls() == []


def test_a_fifo_is_refused_from_stat_without_being_opened(
    rooted: Router, tree: Path, fake_local: FakeUpstream
) -> None:
    os.mkfifo(tree / "pipe.txt")  # opening it for reading would block forever
    with pytest.raises(SourceRefused, match="FIFO"):
        Worker(rooted).run("x", paths=["pipe.txt"])
    with pytest.raises(SourceRefused, match="FIFO"):
        Worker(rooted).run("x", paths=["."])
    assert fake_local.model_calls() == []


def test_a_socket_is_refused(rooted: Router, tree: Path, fake_local: FakeUpstream) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tree / "s.txt"))
        with pytest.raises(SourceRefused, match="socket"):
            Worker(rooted).run("x", paths=["s.txt"])
    finally:
        sock.close()
    assert fake_local.model_calls() == []


def test_too_many_bytes_or_files_are_refused_before_anything_is_read(
    tree: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = router_with_roots(fake_local, fake_cloud, memory_audit, [str(tree)], max_bytes=40)
    try:
        with pytest.raises(SourceRefused, match="more than 40 bytes"):
            Worker(router).run("x", paths=["contracts"])
    finally:
        router.close()
    router = router_with_roots(fake_local, fake_cloud, memory_audit, [str(tree)], max_files=1)
    try:
        with pytest.raises(SourceRefused, match="more than 1 files"):
            Worker(router).run("x", paths=["contracts"])
    finally:
        router.close()
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []


def test_without_any_root_paths_are_refused_with_how_to_configure_one(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    with pytest.raises(SourceRefused) as info:
        Worker(small_router).run("x", paths=["/etc/hostname"])
    assert "LF_WORKER_ROOTS" in str(info.value) and "worker: {roots" in str(info.value)
    assert fake_local.model_calls() == []


# ------------------------------------------------------------------ roots


def test_roots_come_from_the_worker_the_env_setting_and_the_policy(
    tree: Path,
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("from env", encoding="utf-8")
    env_value = os.pathsep.join([str(other), str(tmp_path / "does-not-exist")])
    assert roots_from_env(env_value) == [str(other), str(tmp_path / "does-not-exist")]
    router = router_with_roots(fake_local, fake_cloud, memory_audit, [str(tree)])
    router.settings = router.settings.model_copy(update={"worker_roots": env_value})
    try:
        worker = Worker(router)
        assert worker.roots().paths == (other.resolve(), tree.resolve())
        assert worker.run("x", paths=["a.txt"]).files == ("a.txt",)
        assert worker.run("x", paths=["notes.md"]).files == ("notes.md",)
    finally:
        router.close()


def test_file_uris_from_an_mcp_client_are_roots(tree: Path) -> None:
    roots = Roots.of([tree.as_uri(), "https://example.invalid/x", ""])
    assert roots.paths == (tree.resolve(),)
    found = collect(["notes.md"], roots, max_files=10, max_bytes=10_000)
    assert [f.relative for f in found] == ["notes.md"]
    assert found[0].digest().startswith("r0:") and "notes" not in found[0].digest()


def test_no_roots_message_says_how_to_configure_one() -> None:
    with pytest.raises(SourceRefused) as info:
        collect(["x"], Roots(), max_files=1, max_bytes=1)
    assert info.value.why == NO_ROOTS


def test_registered_documents_are_read_by_name_and_listed_without_content(
    small_router: Router, tmp_path: Path, fake_local: FakeUpstream
) -> None:
    write_pdf(tmp_path / "q3.pdf", ["Q3 revenue grew 12 percent"])
    worker = Worker(
        small_router, documents={"q3-report": tmp_path / "q3.pdf", "memo": "The memo text."}
    )
    listed = worker.describe_documents()
    assert "q3-report (" in listed and "memo (14 characters)" in listed
    assert "revenue" not in listed and "memo text" not in listed
    result = worker.run("Summarize", documents=["q3-report", "memo"])
    sent = str(fake_local.model_calls()[0].body["messages"][-1]["content"])
    assert "=== File: q3-report ===" in sent and "Q3 revenue grew 12 percent" in sent
    assert "The memo text." in sent and result.files == ("q3-report", "memo")
    with pytest.raises(SourceRefused, match="no document has this name"):
        worker.run("Summarize", documents=["nope"])


def test_lf_worker_roots_is_read_by_from_env_style_settings(
    tree: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    from llm_localfirst import Settings

    settings = Settings.load(environ={"LF_WORKER_ROOTS": str(tree)}, env_file=None)
    assert settings.worker_roots == str(tree)
    router = Router(offline_policy(fake_local, fake_cloud), settings=settings, audit=memory_audit)
    try:
        assert Worker(router).run("x", paths=["notes.md"]).files == ("notes.md",)
    finally:
        router.close()


# ------------------------------------------------------------------ invariant

_PARTS = [
    "..",
    ".",
    "contracts",
    "acme.txt",
    "link.txt",
    "linkdir",
    "private.txt",
    "outside",
    "*",
    "**",
    "*.txt",
    "notes.md",
    "root",
]


def test_invariant_the_worker_reads_only_inside_allowed_roots(tmp_path: Path) -> None:
    """Any path a director can write either is refused or yields files inside a root."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    root = tmp_path / "root"
    (root / "contracts").mkdir(parents=True)
    (root / "notes.md").write_text("n", encoding="utf-8")
    (root / "contracts" / "acme.txt").write_text("a", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("p", encoding="utf-8")
    (root / "link.txt").symlink_to(outside / "private.txt")
    (root / "linkdir").symlink_to(outside)
    roots = Roots.of([root])

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(parts=st.lists(st.sampled_from(_PARTS), min_size=1, max_size=5), absolute=st.booleans())
    def check(parts: list[str], absolute: bool) -> None:
        path = os.path.join(str(tmp_path) if absolute else "", *parts)
        try:
            found = collect([path], roots, max_files=100, max_bytes=10_000)
        except SourceRefused:
            return
        for file in found:
            assert file.real.is_relative_to(root.resolve()), (path, file.real)
            assert "private" not in file.real.name

    check()


@pytest.mark.parametrize(("module", "name"), [("pypdf", "a.pdf"), ("docx", "a.docx")])
def test_a_missing_document_reader_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, name: str
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(UnreadableDocument, match=r"pip install 'llm-localfirst\[documents\]'"):
        read_document(name, b"%PDF-1.4")
