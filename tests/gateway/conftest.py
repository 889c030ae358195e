"""The whole platform with the knowledge agent too, so every route of the gateway has a real agent behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.platform import Platform


@pytest.fixture(scope="session")
def full_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("full-platform"))
    try:
        p.start(knowledge=True)
        yield p
    finally:
        p.stop()
