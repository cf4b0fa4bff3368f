"""The {{ project_name }} model: a tiny mean predictor to start from."""

from __future__ import annotations

DEFAULT_EPOCHS = int("{{ epochs }}")


class MeanModel:
    """Predicts the mean of what it was trained on."""

    def __init__(self) -> None:
        self.mean = 0.0

    def fit(self, values: list[float], epochs: int = DEFAULT_EPOCHS) -> "MeanModel":
        """Fit on ``values``; more epochs change nothing for a mean, by design."""
        for _ in range(max(1, epochs)):
            self.mean = sum(values) / len(values) if values else 0.0
        return self

    def predict(self) -> float:
        return self.mean
