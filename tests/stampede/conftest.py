import pytest

from tests.stampede.helpers import LoadGate


@pytest.fixture
def load_gate(monkeypatch: pytest.MonkeyPatch) -> LoadGate:
    return LoadGate().install(monkeypatch)
