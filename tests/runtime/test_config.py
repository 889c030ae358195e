"""Settings come from the environment, with typed parsing and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import Settings
from runtime.errors import ConfigError


def test_defaults_describe_the_single_machine_setup() -> None:
    s = Settings.from_env({})
    assert s.gateway_port == 8080
    assert s.orchestrator_url == "http://127.0.0.1:8081"
    assert s.reasoning_url == "http://127.0.0.1:8082"
    assert s.llm_base_url == "http://127.0.0.1:8090/v1"
    assert s.uses_local_llm


def test_values_are_parsed_by_type() -> None:
    s = Settings.from_env(
        {
            "SWITCHBOARD_GATEWAY_PORT": "9000",
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "2.5",
            "SWITCHBOARD_TRACING": "off",
            "SWITCHBOARD_DATA_DIR": "/tmp/sb",
            "SWITCHBOARD_LLM_BASE_URL": "http://vllm:8000/v1",
            "SWITCHBOARD_ADVERTISE_HOST": "reasoning",
        }
    )
    assert (s.gateway_port, s.shutdown_grace_seconds, s.tracing, s.data_dir) == (9000, 2.5, False, Path("/tmp/sb"))
    assert not s.uses_local_llm
    assert s.reasoning_url == "http://reasoning:8082"


@pytest.mark.parametrize(
    ("name", "value"), [("GATEWAY_PORT", "eighty"), ("TRACING", "maybe"), ("LLM_TIMEOUT_SECONDS", "x")]
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"SWITCHBOARD_{name}"):
        Settings.from_env({f"SWITCHBOARD_{name}": value})
