"""cAdvisor (the stand-in here) listens on its node's address and serves cAdvisor's metrics."""

from conftest import http_get, listening, mode, node_address


def test_listens_on_the_node_address(session):
    node = session["jobs"]["exporter"]["node"]
    assert f"{node_address(node)}:8080" in listening(node)


def test_serves_cadvisor_metrics_for_slurm_jobs(session):
    node = session["jobs"]["exporter"]["node"]
    metrics = http_get(f"http://{node}:8080/metrics")
    assert "container_cpu_usage_seconds_total" in metrics
    assert "machine_memory_bytes" in metrics
    assert f'id="/slurm/uid_0/job_{session["jobs"]["exporter"]["job_id"]}"' in metrics
    assert http_get(f"http://{node}:8080/healthz").strip() == "ok"


def test_job_script_is_executable_and_session_record_readable(host, session):
    assert mode(host, session["jobs"]["exporter"]["script"]) == 0o700
