"""Export an IntentClassifier to the ONNX graph of the artifact contract (artifact.py).

skl2onnx converts the TF-IDF union; the head (one MatMul + bias per member, the calibrated
scales folded into the weights, their sum, a softmax) is added by hand so that the graph is
exactly the trained model and its output is `probabilities`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.linear_model import LogisticRegression

from nlu.classifier.artifact import EMBEDDING_DIM, EMBEDDING_INPUT, OUTPUT, TEXT_INPUT, IntentModel
from nlu.classifier.features import onnx_options
from nlu.classifier.model import IntentClassifier

OPSET = 17
# skl2onnx's text vectoriser needs the ai.onnx.ml domain.
ML_OPSET = 3


def to_onnx(model: IntentClassifier) -> bytes:
    """The serialised graph: inputs `text` (and `embedding` if the recipe uses it)."""
    if model.union is None or not model.members:
        raise RuntimeError("fit the classifier first")
    with warnings.catch_warnings():
        # "analyzer='char' may not work": it does here, and train() checks every export.
        warnings.filterwarnings("ignore", "The conversion of CountVectorizer", UserWarning)
        graph_model = convert_sklearn(
            model.union,
            initial_types=[(TEXT_INPUT, StringTensorType([None, 1]))],
            options=onnx_options(model.union),
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        )
    graph = graph_model.graph
    (tfidf_output,) = [o.name for o in graph.output]
    del graph.output[:]
    inputs = [tfidf_output]
    if model.recipe.embeddings:
        graph.input.append(
            helper.make_tensor_value_info(EMBEDDING_INPUT, TensorProto.FLOAT, [None, EMBEDDING_DIM])
        )
        inputs.append(EMBEDDING_INPUT)
    logits = []
    for i, (member, scale, features) in enumerate(
        zip(model.members, model.scales, inputs, strict=True)
    ):
        weights, bias = scaled_head(member, scale)
        graph.initializer.extend(
            [
                numpy_helper.from_array(weights, f"head{i}_W"),
                numpy_helper.from_array(bias, f"head{i}_b"),
            ]
        )
        graph.node.extend(
            [
                helper.make_node("MatMul", [features, f"head{i}_W"], [f"head{i}_matmul"]),
                helper.make_node("Add", [f"head{i}_matmul", f"head{i}_b"], [f"head{i}_logits"]),
            ]
        )
        logits.append(f"head{i}_logits")
    graph.node.extend(
        [
            helper.make_node("Sum", logits, ["logits"]),
            helper.make_node("Softmax", ["logits"], [OUTPUT], axis=1),
        ]
    )
    graph.output.append(
        helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None, len(model.labels)])
    )
    onnx.checker.check_model(graph_model)
    return graph_model.SerializeToString()


def scaled_head(member: LogisticRegression, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A member's weights [F, L] and bias [L], times its calibrated scale."""
    weights, bias = member.coef_.T * scale, member.intercept_ * scale
    if weights.shape[1] == 1:  # two intents: see model.two_columns
        weights, bias = np.hstack([-weights / 2, weights / 2]), np.hstack([-bias / 2, bias / 2])
    return weights.astype(np.float32), bias.astype(np.float32)


def max_disagreement(
    model: IntentClassifier,
    onnx_bytes: bytes,
    texts: Sequence[str],
    embeddings: np.ndarray | None = None,
) -> float:
    """Largest absolute probability difference between scikit-learn and the graph on `texts`.

    The graph gets its embeddings from artifact.embed, as at serving time; pass the same ones
    to scikit-learn (or None for a text-only recipe).
    """
    if not texts:
        return 0.0
    expected = model.predict_proba(texts, embeddings)
    served = IntentModel(onnx_bytes, model.labels).predict_proba(texts)
    return float(np.abs(expected - served).max())
