"""One throwaway Synapse for the whole test session (see matrix_support.py for the bot and
the people who talk to it).

The Synapse tests are marked `slow` (CI runs them too). They are skipped, saying why, only
when `matrix-synapse` is not installed (pip install matrix-synapse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from matrix_support import FLOWS

from adapters.matrix.synapse_launcher import LocalSynapse, synapse_available
from engine.loader import load_folder
from engine.model import FlowSet


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSynapse]:
    if not synapse_available():
        pytest.skip("matrix-synapse is not installed (pip install matrix-synapse)")
    server = LocalSynapse(tmp_path_factory.mktemp("synapse"), max_upload_size="1M")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def matrix_flows() -> FlowSet:
    loaded, report = load_folder(FLOWS)
    assert loaded is not None, report.sorted()
    return loaded
