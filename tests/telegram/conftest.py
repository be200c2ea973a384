"""Fixtures of the Telegram tests (helpers live in tg_helpers.py)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from telegram.warnings import PTBDeprecationWarning
from tg_helpers import load_example_flows

from engine.model import FlowSet
from engine.runtime import Engine


@pytest.fixture(scope="session")
def example_flows() -> FlowSet:
    """flows/ of the repository, loaded once."""
    return load_example_flows()


@pytest.fixture(scope="session")
def engine(example_flows: FlowSet) -> Engine:
    """One engine for every test: it is immutable, and building one takes about a second."""
    return Engine(example_flows)


@pytest.fixture(autouse=True)
def _quiet_ptb_internals() -> Iterator[None]:
    """PTB 22 warns about its own RetryAfter whenever it builds one (a 429): not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*retry_after", category=PTBDeprecationWarning)
        yield
