import pytest

from meter_rig import Rig


@pytest.fixture
def rig(tmp_path, broker, clock):
    r = Rig(tmp_path, broker, clock)
    yield r
    r.close()
