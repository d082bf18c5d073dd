"""``TrainConfig.gradient_checkpointing`` switches the model's checkpointing on, or refuses in one line."""

from __future__ import annotations

import pytest
from torch import nn

from sara.errors import ConfigError
from sara.train.loop import TrainConfig, _enable_checkpointing


class _Switchable(nn.Linear):
    enabled = False

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        self.enabled = enabled


def test_flag_enables_the_models_switch_and_refuses_models_without_one() -> None:
    assert TrainConfig(run_dir="r").gradient_checkpointing is False
    model = _Switchable(2, 2)
    _enable_checkpointing(model, "t2a")
    assert model.enabled
    with pytest.raises(ConfigError, match="not available for the encoder trainer"):
        _enable_checkpointing(nn.Linear(2, 2), "encoder")
