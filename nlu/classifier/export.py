"""Export an IntentClassifier to the ONNX graph of the artifact contract (artifact.py).

skl2onnx converts the TF-IDF union; the head (one MatMul + bias per member, times its calibrated
scale, their sum, a softmax) is added by hand so that the graph is exactly the trained model and
its output is `probabilities`. A cascade also outputs the text member alone, `text_probabilities`
(its decision values times its own scale), and names its gate in the model's metadata.
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

from nlu.classifier.artifact import (
    CASCADE_GATE,
    EMBEDDING_DIM,
    EMBEDDING_INPUT,
    OUTPUT,
    TEXT_INPUT,
    TEXT_OUTPUT,
    IntentModel,
)
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
        weights, bias = member_head(member)
        graph.initializer.extend(
            [
                numpy_helper.from_array(weights, f"head{i}_W"),
                numpy_helper.from_array(bias, f"head{i}_b"),
                numpy_helper.from_array(np.array(scale, dtype=np.float32), f"head{i}_scale"),
            ]
        )
        graph.node.extend(
            [
                helper.make_node("MatMul", [features, f"head{i}_W"], [f"head{i}_matmul"]),
                helper.make_node("Add", [f"head{i}_matmul", f"head{i}_b"], [f"head{i}_raw"]),
                helper.make_node("Mul", [f"head{i}_raw", f"head{i}_scale"], [f"head{i}_logits"]),
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
    if model.cascade_gate:
        # The cascade's first stage: the text member alone, with its own scale (artifact.py).
        graph.initializer.append(
            numpy_helper.from_array(np.array(model.text_scale, dtype=np.float32), "text_scale")
        )
        graph.node.extend(
            [
                helper.make_node("Mul", ["head0_raw", "text_scale"], ["text_logits"]),
                helper.make_node("Softmax", ["text_logits"], [TEXT_OUTPUT], axis=1),
            ]
        )
        graph.output.append(
            helper.make_tensor_value_info(TEXT_OUTPUT, TensorProto.FLOAT, [None, len(model.labels)])
        )
        onnx.helper.set_model_props(graph_model, {CASCADE_GATE: repr(model.cascade_gate)})
    onnx.checker.check_model(graph_model)
    return graph_model.SerializeToString()


def member_head(member: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """A member's weights [F, L] and bias [L] (its decision values: logits before scaling)."""
    weights, bias = member.coef_.T, member.intercept_
    if weights.shape[1] == 1:  # two intents: see model.two_columns
        weights, bias = np.hstack([-weights / 2, weights / 2]), np.hstack([-bias / 2, bias / 2])
    return weights.astype(np.float32), bias.astype(np.float32)


def max_disagreement(
    model: IntentClassifier,
    onnx_bytes: bytes,
    texts: Sequence[str],
    embeddings: np.ndarray | None = None,
) -> float:
    """Largest absolute probability difference between scikit-learn and the graph on `texts`,
    over each output of the graph (both stages of a cascade, compared separately so that a text
    right at the gate cannot fail the check by taking a different stage).

    The graph gets its embeddings from artifact.embed, as at serving time; pass the same ones
    to scikit-learn (or None for a text-only recipe).
    """
    if not texts:
        return 0.0
    served = IntentModel(onnx_bytes, model.labels)
    if not model.cascade_gate:
        expected = model.predict_proba(texts, embeddings)
        return float(np.abs(expected - served.predict_proba(texts)).max())
    first, combined = model.stage_probabilities(texts, embeddings)
    served_first, served_combined = served.stage_probabilities(texts)
    return float(max(np.abs(first - served_first).max(), np.abs(combined - served_combined).max()))
