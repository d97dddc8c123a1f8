"""`LearnedModel`: a request's input in, a strong-score in [0, 1] out, and the file it lives in.

The network is deliberately small: the input (embedding and `inputs.FEATURES`) is standardised
with the training set's mean and scale, then passed through dense layers with ReLU between them
to one raw score. A linear model is the one-layer case. A decision costs a few microseconds
beside the embedding.

**The strong-score** is the predicted probability that the strong model is needed (that the
weak model falls short): the raw score through a logistic curve (`calibration`, a and b of
sigmoid(a * raw + b)) fitted on the training prompts' outcomes, so that among training prompts
scored 0.4, about 40% were ones the weak model got wrong.

**The threshold** comes from a share of strong calls, not from the probability: the file keeps
the training prompts' raw scores at evenly spaced ranks (`quantiles`), so "the top 30% go
strong" is the strong-score of the raw score at rank 0.7, found without the training data. On
traffic unlike the training set the same threshold sends another share strong: re-calibrate
from the `learned.strong_score` of logged decisions (the threshold at the wanted quantile).

**The file** is JSON of numbers and names (`FORMAT` below), not a pickle: loading it parses
text and checks shapes, and can run no code. `fareway train` writes it; the package ships
`default.json` beside this module, the served `learned` strategy's model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fareway.core.errors import StartupError
from fareway.routing.embedding import Embedder
from fareway.routing.learned.inputs import FEATURES, embedded_text, features

FORMAT = "fareway.learned/1"
DEFAULT_MODEL = Path(__file__).with_name("default.json")

FloatArray = NDArray[np.float64]


class LearnedModelError(StartupError):
    """A model file is missing, is not JSON of the expected format, or its shapes disagree."""


@dataclass(frozen=True)
class Layer:
    """One dense layer: `inputs @ weights + bias`, weights shaped (inputs, outputs)."""

    weights: FloatArray
    bias: FloatArray


@dataclass(frozen=True)
class LearnedModel:
    """A trained learned router (module docstring).

    `embedder` names the local embedder its input starts with and `features` the cheap
    features after it; `mean` and `scale` standardise that input; `quantiles` are the training
    prompts' raw scores at evenly spaced ranks; `calibration` maps a raw score to a probability;
    `strong_share` is the share of strong calls it was calibrated to; `about` records how it
    was made (data, label, protocol).
    """

    embedder: str
    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    layers: tuple[Layer, ...]
    quantiles: FloatArray
    calibration: tuple[float, float]
    strong_share: float
    about: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        width = len(self.mean)
        if self.scale.shape != (width,) or not np.all(self.scale > 0):
            raise ValueError("scale must be positive and as long as mean")
        for layer in self.layers:
            if layer.weights.ndim != 2 or layer.weights.shape[0] != width:
                raise ValueError(f"a layer expects {layer.weights.shape[0]} inputs, not {width}")
            if layer.bias.shape != (layer.weights.shape[1],):
                raise ValueError("a layer's bias must have one entry per output")
            width = layer.weights.shape[1]
        if not self.layers or width != 1:
            raise ValueError("the last layer must have exactly one output")
        if len(self.quantiles) < 2 or np.any(np.diff(self.quantiles) < 0):
            raise ValueError("quantiles must be at least two non-decreasing scores")
        if len(self.calibration) != 2 or not all(math.isfinite(c) for c in self.calibration):
            raise ValueError("calibration must be two finite numbers")
        if not 0.0 <= self.strong_share <= 1.0:
            raise ValueError("strong_share must lie in [0, 1]")
        unknown = [name for name in self.features if name not in FEATURES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {', '.join(FEATURES)}")

    @property
    def threshold(self) -> float:
        """The strong-score at and above which a request goes strong, at `strong_share`."""
        return self.threshold_at(self.strong_share)

    def threshold_at(self, strong_share: float) -> float:
        """The strong-score threshold that sends `strong_share` of training-like traffic strong:
        1 (nothing reaches it) at share 0, 0 (everything does) at share 1."""
        if strong_share <= 0.0:
            return 1.0
        if strong_share >= 1.0:
            return 0.0
        ranks = np.linspace(0.0, 1.0, len(self.quantiles))
        raw = float(np.interp(1.0 - strong_share, ranks, self.quantiles))
        return float(self.probability(np.array([raw]))[0])

    def raw_scores(self, inputs: NDArray[np.floating]) -> FloatArray:
        """The network's raw output for each row of `inputs` (embedding then features)."""
        hidden = (np.asarray(inputs, dtype=np.float64) - self.mean) / self.scale
        for position, layer in enumerate(self.layers):
            hidden = hidden @ layer.weights + layer.bias
            if position < len(self.layers) - 1:
                hidden = np.maximum(hidden, 0.0)
        scores: FloatArray = hidden[:, 0]
        return scores

    def probability(self, raw: FloatArray) -> FloatArray:
        """Raw scores as probabilities that the strong model is needed."""
        slope, intercept = self.calibration
        result: FloatArray = 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
        return result

    def strong_scores(self, inputs: NDArray[np.floating]) -> FloatArray:
        """Each row's strong-score: the probability that the strong model is needed."""
        return self.probability(self.raw_scores(inputs))


def model_inputs(embedder: Embedder, queries: Sequence[str], names: tuple[str, ...]) -> FloatArray:
    """The model input of each query: its `embedded_text`'s embedding, then the named features.
    Blocking (it embeds); training and serving both build inputs here."""
    vectors = embedder.embed([embedded_text(query) for query in queries])
    extra = np.array([features(query, names) for query in queries], dtype=np.float64)
    return np.hstack([vectors.astype(np.float64), extra.reshape(len(queries), len(names))])


def save_model(model: LearnedModel, path: Path) -> None:
    """Write `model` as JSON (module docstring)."""
    document = {
        "format": FORMAT,
        "embedder": model.embedder,
        "features": list(model.features),
        "mean": _numbers(model.mean),
        "scale": _numbers(model.scale),
        "layers": [
            {"weights": [_numbers(row) for row in layer.weights], "bias": _numbers(layer.bias)}
            for layer in model.layers
        ],
        "quantiles": _numbers(model.quantiles),
        "calibration": list(model.calibration),
        "strong_share": model.strong_share,
        "about": dict(model.about),
    }
    # One key a line: readable and diffable, without a line per number.
    lines = ",\n".join(
        f" {json.dumps(key)}: {json.dumps(value)}" for key, value in document.items()
    )
    path.write_text(f"{{\n{lines}\n}}\n", encoding="utf-8")


def load_model(path: Path = DEFAULT_MODEL) -> LearnedModel:
    """Read a model file; LearnedModelError naming the file and what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise LearnedModelError(f"learned model {path}: cannot read it ({error})") from error
    except ValueError as error:
        raise LearnedModelError(f"learned model {path}: not JSON ({error})") from error
    try:
        return _model(document)
    except (KeyError, TypeError, ValueError) as error:
        raise LearnedModelError(f"learned model {path}: {error}") from error


def _model(document: Any) -> LearnedModel:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f'expected a JSON object with "format": "{FORMAT}"')
    layers = tuple(
        Layer(_array(layer["weights"], 2), _array(layer["bias"], 1)) for layer in document["layers"]
    )
    about = document.get("about", {})
    if not isinstance(about, dict):
        raise TypeError('"about" must be an object')
    return LearnedModel(
        embedder=str(document["embedder"]),
        features=tuple(str(name) for name in document["features"]),
        mean=_array(document["mean"], 1),
        scale=_array(document["scale"], 1),
        layers=layers,
        quantiles=_array(document["quantiles"], 1),
        calibration=(float(document["calibration"][0]), float(document["calibration"][1])),
        strong_share=float(document["strong_share"]),
        about={str(k): str(v) for k, v in about.items()},
    )


def _array(value: Sequence[Any], dimensions: int) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != dimensions or not np.all(np.isfinite(array)):
        raise ValueError(f"expected a {dimensions}-dimensional array of finite numbers")
    return array


def _numbers(values: NDArray[np.floating]) -> list[float]:
    # Seven significant digits keep the file small and the scores unchanged at float32's grain.
    return [float(f"{v:.7g}") for v in values]
