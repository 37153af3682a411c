"""The one-line reasons of a tracking store that cannot be used, without its secrets."""

from __future__ import annotations

import pytest

from lead_conversion_prediction.exceptions import RegistryError
from lead_conversion_prediction.modeling.tracking_check import check_tracking_store
from tests.support import free_port


def test_an_unreachable_server_is_named_without_its_password_or_nested_quotes() -> None:
    port = free_port()
    with pytest.raises(RegistryError) as raised:
        check_tracking_store(f"http://ann:s3cret-word@127.0.0.1:{port}")
    message = str(raised.value)
    assert message.startswith(f"http://ann@127.0.0.1:{port}: cannot reach the tracking server (")
    assert "refused" in message and "s3cret-word" not in message
    assert message.endswith("refused)"), message
    assert "\n" not in message


def test_a_store_that_needs_no_check_passes() -> None:
    check_tracking_store("sqlite:///does/not/matter.db")
