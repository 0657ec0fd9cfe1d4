"""The security probes of the sandbox notes (§4), against the real executor.

CI runs these with SCALEENV_SANDBOX=strict, where every probe must be blocked. On a host that lacks
a hardening layer (an old kernel, no root) they are skipped in the default ``auto`` mode, because
the sandbox then runs degraded by design and says so.
"""

import os
import socket
import tempfile
from dataclasses import replace

import pytest

from environments.runtime import probes
from environments.runtime.executor import EnvironmentBundle, Sandbox, SandboxConfig
from environments.runtime.probes import sandbox_status

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def probe_config():
    mode = os.environ.get("SCALEENV_SANDBOX", "auto")
    config = SandboxConfig(mode=mode, call_timeout=3.0, probes=True, selftest=False)
    status = sandbox_status(replace(config, probes=False))
    if status.missing and mode != "strict":
        pytest.skip(f"host lacks hardening layers ({'; '.join(status.missing)}); run with SCALEENV_SANDBOX=strict in CI")
    return config


def run_probe(config, code: str, timeout: float | None = None, env: dict | None = None):
    """Every probe runs in a fresh worker."""
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        with Sandbox(EnvironmentBundle(tools={}, schema={"tables": {}}, state={}), config) as sandbox:
            return sandbox.probe(code, timeout=timeout)
    finally:
        os.environ.clear()
        os.environ.update(old)


def assert_blocked(reply):
    assert "lost" not in reply or reply["lost"] == "Timeout", reply
    if "result" in reply:
        assert str(reply["result"]).startswith("blocked"), reply


def test_probe_0_writing_in_own_scratch_still_works(probe_config):
    assert run_probe(probe_config, probes.SCRATCH_WRITE)["result"] == "ok"


def test_probe_1_reading_etc_passwd_is_blocked(probe_config):
    assert_blocked(run_probe(probe_config, probes.READ_PASSWD))


def test_probe_2_reading_a_world_readable_host_secret_is_blocked(probe_config, tmp_path):
    secret = tempfile.NamedTemporaryFile("w", delete=False, dir="/tmp", prefix="scaleenv-secret-")
    secret.write("TOP-SECRET")
    secret.close()
    os.chmod(secret.name, 0o644)
    try:
        assert_blocked(run_probe(probe_config, probes.read_file_probe(secret.name)))
    finally:
        os.unlink(secret.name)


def test_probe_3_writing_outside_scratch_is_blocked(probe_config):
    target = f"/tmp/scaleenv-escape-{os.getpid()}"
    os.makedirs("/tmp", exist_ok=True)
    assert_blocked(run_probe(probe_config, probes.write_outside_probe(target)))
    assert not os.path.exists(target)


def test_probe_4_tcp_connect_to_localhost_is_blocked(probe_config):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        assert_blocked(run_probe(probe_config, probes.tcp_connect_probe(listener.getsockname()[1])))
    finally:
        listener.close()


def test_probe_5_and_6_secrets_never_reach_the_worker_environment(probe_config):
    env = {"SCALEENV_PROBE_SECRET": "hunter2"}
    assert_blocked(run_probe(probe_config, probes.ENVIRON, env=env))
    reply = run_probe(probe_config, probes.READ_PROC_SELF_ENVIRON, env=env)
    assert "hunter2" not in str(reply)
    assert_blocked(reply)


def test_probe_7_the_parent_environment_is_unreadable(probe_config):
    reply = run_probe(probe_config, probes.READ_PARENT_ENVIRON, env={"SCALEENV_PROBE_SECRET": "hunter2"})
    assert "hunter2" not in str(reply)
    assert_blocked(reply)


def test_probe_8_signalling_the_parent_is_blocked(probe_config):
    assert_blocked(run_probe(probe_config, probes.SIGNAL_PARENT))


def test_probe_9_host_argv_in_proc_1_cmdline_is_unreadable(probe_config):
    assert_blocked(run_probe(probe_config, probes.READ_PROC1_CMDLINE))


def test_probe_10_exec_of_a_shell_is_blocked(probe_config):
    assert_blocked(run_probe(probe_config, probes.EXEC_SHELL))


def test_probe_11_a_fork_bomb_creates_no_child(probe_config):
    assert_blocked(run_probe(probe_config, probes.FORK_BOMB))


def test_probe_12_allocating_3_gib_fails(probe_config):
    assert_blocked(run_probe(probe_config, probes.ALLOCATE))


def test_probe_13_an_infinite_loop_is_killed_by_the_deadline(probe_config):
    reply = run_probe(probe_config, probes.INFINITE_LOOP, timeout=1.0)
    assert reply["lost"] == "Timeout"


def test_probe_14_a_host_unix_socket_is_unreachable(probe_config, tmp_path):
    path = f"/tmp/scaleenv-probe-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    try:
        assert_blocked(run_probe(probe_config, probes.unix_connect_probe(path)))
    finally:
        server.close()
        os.unlink(path)


def test_a_thread_started_by_a_tool_is_denied(probe_config):
    assert_blocked(run_probe(probe_config, probes.THREAD))


def test_no_file_descriptor_is_open_besides_the_protocol_pipes(probe_config):
    fds = run_probe(probe_config, probes.OPEN_FDS)["result"]
    # 0-2 are /dev/null, then exactly the two protocol pipes.
    assert len(fds) == 5, fds


def test_the_startup_selftest_passes(probe_config):
    status = probes.run_selftest(replace(probe_config, probes=False))
    assert status.error is None and status.leaks == [], status.as_dict()
