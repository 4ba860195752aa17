"""The downloader against a server this test starts on 127.0.0.1, and safe archive extraction."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import time
import zipfile

import pytest
from conftest_data import FileServer

from videogan.data.archive import ArchiveError, extract
from videogan.data.config import DataConfig
from videogan.data.download import DownloadError, OfflineError, download_dataset, fetch

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def serve():
    servers = []

    def start(files, **kw):
        servers.append(FileServer(files, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_clean_download(serve, tmp_path):
    srv = serve({"/data.npy": PAYLOAD})
    dest = fetch(srv.url + "/data.npy", tmp_path / "data.npy", MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert list(tmp_path.iterdir()) == [dest]
    fetch(srv.url + "/data.npy", dest, MD5, progress=False)  # already there: no second request
    assert srv.requests == [None]


def test_dropped_connection_resumes_with_range(serve, tmp_path):
    srv = serve({"/data.npy": PAYLOAD}, drop_first=100_000)
    dest = fetch(srv.url + "/data.npy", tmp_path / "data.npy", MD5, backoff=0.01, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert len(srv.requests) == 2 and srv.requests[0] is None
    resumed_at = int(srv.requests[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= 100_000


def test_server_without_range_support_restarts(serve, tmp_path):
    srv = serve({"/data.npy": PAYLOAD}, drop_first=100_000, ranges=False)
    dest = fetch(srv.url + "/data.npy", tmp_path / "data.npy", MD5, backoff=0.01, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_server_errors_are_retried_with_backoff(serve, tmp_path):
    srv = serve({"/data.npy": PAYLOAD}, fail_first=2)
    started = time.perf_counter()
    dest = fetch(srv.url + "/data.npy", tmp_path / "data.npy", MD5, backoff=0.1, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(srv.requests) == 3
    assert time.perf_counter() - started >= 0.1 + 0.2  # waited 0.1 s, then 0.2 s
    srv.fail_first = 10
    with pytest.raises(DownloadError, match="gave up after 2 attempts"):
        fetch(srv.url + "/data.npy", tmp_path / "other.npy", MD5, retries=1, backoff=0.01, progress=False)


def test_wrong_checksum_is_refused_and_nothing_left(serve, tmp_path):
    srv = serve({"/data.npy": PAYLOAD})
    with pytest.raises(DownloadError, match="md5"):
        fetch(srv.url + "/data.npy", tmp_path / "data.npy", "0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_names_the_url(serve, tmp_path):
    srv = serve({})
    with pytest.raises(DownloadError, match="404"):
        fetch(srv.url + "/missing.npy", tmp_path / "x.npy", MD5, progress=False)


def test_offline_fails_at_once_with_what_to_do(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mnist_test_seq.npy"
    started = time.perf_counter()
    with pytest.raises(OfflineError) as err:
        fetch(url, tmp_path / "mnist_test_seq.npy", MD5, backoff=10, progress=False)
    assert time.perf_counter() - started < 5
    message = str(err.value)
    assert url in message and str(tmp_path / "mnist_test_seq.npy") in message
    assert "moving_mnist_generated" in message and MD5 in message


def test_download_dataset_fetches_the_published_file(serve, tmp_path):
    srv = serve({"/mnist_test_seq.npy": PAYLOAD})
    data = DataConfig(dataset="moving_mnist", moving_mnist={"url": srv.url + "/mnist_test_seq.npy", "md5": MD5})
    assert download_dataset(data, tmp_path, progress=False) == tmp_path / "mnist_test_seq.npy"
    assert download_dataset(DataConfig(), tmp_path / "none") is None  # generated: nothing to fetch


# ------------------------------------------------------------------ archives
def _tar(entries: list[tarfile.TarInfo], data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info in entries:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_safe_tar_extracts(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(_tar([_member("Ms_Pacman", tarfile.DIRTYPE), _member("Ms_Pacman/a.txt")]))
    target = extract(archive, tmp_path / "out")
    assert (target / "Ms_Pacman" / "a.txt").read_bytes() == b"x"


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.txt"),
        _member("/tmp/absolute.txt"),
        _member("Ms_Pacman/../../escape.txt"),
        _member("Ms_Pacman/link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("Ms_Pacman/hard", tarfile.LNKTYPE, "Ms_Pacman/a.txt"),
        _member("Ms_Pacman/dev", tarfile.CHRTYPE),
        _member("Ms_Pacman/fifo", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "hardlink", "device", "fifo"],
)
def test_hostile_tar_is_refused_and_nothing_left(tmp_path, member):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_tar([_member("Ms_Pacman/a.txt"), member]))
    with pytest.raises(ArchiveError, match="refused"):
        extract(archive, tmp_path / "out" / "target")
    assert not (tmp_path / "out" / "target").exists() and not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []


def _zip(name: str, mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Ms_Pacman/a.txt", b"x")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, b"/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    "name,mode",
    [("../escape.txt", None), ("/abs.txt", None), ("link", 0o120777)],
    ids=["dotdot", "absolute", "symlink"],
)
def test_hostile_zip_is_refused(tmp_path, name, mode):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip(name, mode))
    with pytest.raises(ArchiveError, match="refused"):
        extract(archive, tmp_path / "out" / "target")
    assert list((tmp_path / "out").iterdir()) == []


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"hello")
    with pytest.raises(ArchiveError, match="not a zip or tar"):
        extract(tmp_path / "x.zip", tmp_path / "out")
