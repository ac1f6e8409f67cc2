"""The mistakes of a first hour with r2v, each answered by one line and a documented code.

Every command runs as a user runs it, in a child process, against real things: a file that
is not there, a port a socket holds, a data dir under a regular file, an extra made to fail
its import. None may print a traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from r2v.cli import main
from r2v.cli.client import DEFAULT_BASE_URL, generate
from r2v.cli.exits import Failure
from r2v.cli.server import load_settings
from r2v.client.wire import DEFAULT_BASE_URL as SDK_DEFAULT_BASE_URL
from tests.conftest import LiveServer

R2V = [sys.executable, "-m", "r2v.cli"]
NOWHERE = "http://127.0.0.1:9"  # a port nothing listens on


def r2v(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The command, with none of the runner's own `R2V_…` variables."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("R2V_")}
    return subprocess.run(
        [*R2V, *args],
        env=clean | {"R2V_LOG_LEVEL": "warning"} | (env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The single `error: …` line of a failed command, which must name every word."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port a listening socket holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hidden(tmp_path: Path, module: str) -> dict[str, str]:
    """An environment in which `import module` fails, as it does without its extra."""
    root = tmp_path / "hidden"
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(f"raise ImportError('{module} is hidden')\n")
    paths = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


# --- the client ---------------------------------------------------------------------------


def test_a_reference_that_is_no_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    result = r2v(
        "generate", "@Image1", "--image", str(missing),
        env={"R2V_BASE_URL": NOWHERE, "R2V_API_KEY": "r2v_x"},
    )  # fmt: skip
    one_line(result, 2, f"--image {missing}", "no such file", "http(s)://")


def test_an_output_in_a_missing_directory_is_refused_before_the_task(
    live_server: LiveServer, key: str, tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir" / "x.mp4"
    result = r2v(
        "generate", "rain", "--model", "fast", "-o", str(target),
        env={"R2V_BASE_URL": live_server.url, "R2V_API_KEY": key},
    )  # fmt: skip
    one_line(result, 2, str(target.parent), "does not exist", "create it")
    listed = httpx.get(f"{live_server.url}/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    assert listed.json()["data"] == [], "no task was created"


def test_the_missing_key_names_the_flag_and_the_variable() -> None:
    result = r2v("tasks", "list", env={"R2V_BASE_URL": NOWHERE})
    line = one_line(result, 2, "--api-key", "R2V_API_KEY", "r2v keys create")
    assert "api_key=" not in line


def test_a_base_url_without_a_scheme_is_a_usage_error() -> None:
    result = r2v("tasks", "list", "--base-url", "127.0.0.1:8000", "--api-key", "r2v_x")
    one_line(result, 2, "--base-url 127.0.0.1:8000", "http://HOST:PORT")


def test_a_create_refused_locally_names_the_option() -> None:
    result = r2v(
        "generate", "rain", "--duration", "100", env={"R2V_BASE_URL": NOWHERE, "R2V_API_KEY": "k"}
    )
    one_line(result, 2, "--duration", "4 to 15")


def test_generate_help_documents_every_option_the_default_url_and_the_exit_codes() -> None:
    undocumented = [p.name for p in generate.params if isinstance(p, click.Option) and not p.help]
    assert undocumented == []
    assert DEFAULT_BASE_URL == SDK_DEFAULT_BASE_URL
    shown = CliRunner().invoke(main, ["generate", "--help"])
    text = " ".join(shown.output.split())
    assert f"default: {DEFAULT_BASE_URL}" in text
    assert "Exit codes: 0 done, 1 the task failed, 2 wrong usage" in text
    assert "130 interrupted" in text


def test_json_downloads_only_with_o_and_more_keeps_the_filters(
    live_server: LiveServer, key: str, tmp_path: Path
) -> None:
    env = {"R2V_BASE_URL": live_server.url, "R2V_API_KEY": key}
    fast = ["--model", "fast", "--resolution", "480p", "--duration", "4"]
    here = tmp_path / "here"
    here.mkdir()
    for prompt in ("rain", "snow"):
        made = r2v("generate", prompt, *fast, "--json", env=env, cwd=here)
        assert made.returncode == 0, made.stderr
        assert made.stdout.count("\n") == 1 and made.stderr == ""
    assert list(here.iterdir()) == [], "--json without -o downloads nothing"
    listed = r2v("tasks", "list", "--status", "completed", "--limit", "1", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "--status completed --limit 1)" in listed.stderr


# --- the server ---------------------------------------------------------------------------


def test_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    data = blocker / "data"
    result = r2v("serve", "--port", str(free_port()), "--data-dir", str(data))
    one_line(result, 2, str(data), "cannot be created", "--data-dir")


def test_a_data_dir_that_cannot_be_written(tmp_path: Path) -> None:
    data = tmp_path / "read-only"
    data.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes into any directory, but not into /proc
        data = Path("/proc")
    try:
        result = r2v("worker", env={"R2V_DATA_DIR": str(data)})
    finally:
        (tmp_path / "read-only").chmod(0o700)
    one_line(result, 2, f"the data directory {data} cannot be written", "R2V_DATA_DIR")


def test_a_database_url_that_is_no_url(tmp_path: Path) -> None:
    result = r2v(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
        env={"R2V_DATABASE_URL": "garbage"},
    )  # fmt: skip
    one_line(result, 2, "R2V_DATABASE_URL is not a database URL", "postgresql+psycopg://")


def test_postgresql_without_the_postgres_extra(tmp_path: Path) -> None:
    env = hidden(tmp_path, "psycopg") | {"R2V_DATABASE_URL": "postgresql://r2v@127.0.0.1/r2v"}
    result = r2v("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"), env=env)
    one_line(result, 2, "PostgreSQL", "pip install 'r2v[postgres]'")


def test_s3_without_the_s3_extra(tmp_path: Path) -> None:
    env = hidden(tmp_path, "boto3") | {"R2V_STORAGE": "s3", "R2V_S3_BUCKET": "r2v"}
    result = r2v("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"), env=env)
    one_line(result, 2, "R2V_STORAGE=s3", "pip install 'r2v[s3]'")


def test_a_database_that_does_not_answer() -> None:
    env = {"R2V_DATABASE_URL": f"postgresql://r2v:secret@127.0.0.1:{free_port()}/r2v"}
    result = r2v("keys", "list", env=env)
    line = one_line(result, 4, "cannot be used", "R2V_DATABASE_URL")
    assert "secret" not in line


def test_a_taken_port_stops_serve_before_the_banner_or_a_key(
    tmp_path: Path, taken_port: int
) -> None:
    data = tmp_path / "data"
    result = r2v("serve", "--port", str(taken_port), "--data-dir", str(data))
    one_line(result, 2, f"127.0.0.1:{taken_port} is already in use", "--port")
    assert result.stdout == ""
    assert not data.exists(), "nothing was created"


def test_a_taken_metrics_port(tmp_path: Path, taken_port: int) -> None:
    result = r2v(
        "worker", "--data-dir", str(tmp_path / "w1"), env={"R2V_METRICS_PORT": str(taken_port)}
    )
    one_line(result, 2, f"R2V_METRICS_PORT={taken_port}", "choose a free port")


def test_a_misspelled_variable_is_warned_about_with_the_real_name(tmp_path: Path) -> None:
    result = r2v(
        "worker", "--data-dir", str(tmp_path / "w"),
        env={
            "R2V_WORKRES": "2",
            "R2V_MODELS__SEEDANCE_2_0_REFERENCE_TO_VIDEO__ENGIN": "diffusers",
            "R2V_DATABASE_URL": "garbage",  # stops the worker once it has warned
        },
    )  # fmt: skip
    assert "Traceback" not in result.stderr and result.returncode == 2, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2, result.stderr
    nested = "R2V_MODELS__SEEDANCE_2_0_REFERENCE_TO_VIDEO__ENGIN"
    assert warnings[0].endswith(
        f"{nested} is not an r2v setting, so it is ignored; did you mean {nested}E?"
    )
    assert warnings[1].endswith(
        "R2V_WORKRES is not an r2v setting, so it is ignored; did you mean R2V_WORKERS?"
    )


def test_a_nested_setting_is_named_by_its_variable(tmp_path: Path) -> None:
    variable = "R2V_MODELS__SEEDANCE_2_0_REFERENCE_TO_VIDEO__ENGINE"
    result = r2v("worker", "--data-dir", str(tmp_path / "w"), env={variable: "gpu"})
    one_line(result, 2, f"{variable}: ", "'compositor', 'diffusers' or 'upstream'", "fix or unset")


def test_a_setting_is_named_by_its_flag_when_a_flag_gave_it() -> None:
    umask = os.umask(0o022)  # load_settings tightens the umask of the process it runs in
    try:
        with pytest.raises(Failure, match=r"^--port: Input should be less than or equal"):
            load_settings(port=70000)
    finally:
        os.umask(umask)
    result = r2v("serve", env={"R2V_PORT": "http"})
    one_line(result, 2, "R2V_PORT: Input should be a valid integer")


def test_a_loopback_reference_refused_at_create_says_how_to_allow_it(
    api: TestClient, auth: dict[str, str]
) -> None:
    for url, entry in (
        ("http://127.0.0.1:9/photo.jpg", "127.0.0.1:9"),
        ("http://localhost:9000/photo.jpg", "localhost:9000"),
    ):
        body = {
            "model": "seedance-2.0-reference-to-video",
            "prompt": "@Image1",
            "image_urls": [url],
        }
        refused = api.post("/v1/videos/generations", json=body, headers=auth)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
        assert message.endswith(f"set R2V_FETCH_ALLOW_HOSTS={entry} on the server to allow it")


# --- keys ---------------------------------------------------------------------------------


def test_keys_create_says_where_it_makes_a_data_dir(tmp_path: Path) -> None:
    created = r2v("keys", "create", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines()[-1].startswith("r2v_")
    notice = created.stderr.splitlines()
    assert len(notice) == 1, created.stderr
    assert f"no data directory at {tmp_path / 'r2v-data'}: creating one there" in notice[0]
    assert "will not know this key" in notice[0]
    again = r2v("keys", "create", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == "", "the second finds the first's dir"
    listed = r2v("keys", "list", "--data-dir", str(tmp_path / "elsewhere"))
    one_line(listed, 2, "no data directory at", "--data-dir")
    assert not (tmp_path / "elsewhere").exists()
