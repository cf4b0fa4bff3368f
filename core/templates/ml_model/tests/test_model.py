"""Tests for the {{ project_name }} model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from model import MeanModel  # noqa: E402


def test_mean_model_predicts_mean() -> None:
    assert MeanModel().fit([1.0, 3.0]).predict() == 2.0
