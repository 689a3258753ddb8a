"""Small real intent models for tests: a TF-IDF char n-gram + logistic regression, in ONNX.

`tiny_artifact()` fits in well under a second and follows the artifact contract (input `text`,
output `probabilities`); `serving_nlu_model()` stores one as the promoted NluModel.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Mapping, Sequence

from nlu.classifier.normalize import normalize

EXAMPLES: dict[str, list[str]] = {
    "greeting": ["hello", "hi there", "good morning", "hey", "你好", "早上好"],
    "order_meal": [
        "i want to order a burger",
        "two pizzas please",
        "can i get a meal delivered",
        "order food",
        "我要点餐",
        "来两份汉堡",
    ],
    "goodbye": ["bye", "see you later", "goodbye", "thanks, that's all", "再见", "拜拜"],
    "check_order": [
        "where is my order",
        "has my food shipped",
        "order status",
        "track my delivery",
        "我的订单到哪了",
        "查一下订单",
    ],
}


def fit_pipeline(examples: Mapping[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    """The sklearn pipeline on normalised texts (the training framework's own model)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = [normalize(t) for texts in examples.values() for t in texts]
    labels = [intent for intent, texts in examples.items() for _ in texts]
    pipe = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LogisticRegression(max_iter=1000)
    )
    pipe.fit(texts, labels)
    return pipe


def to_onnx(pipe) -> tuple[bytes, list[str]]:  # type: ignore[no-untyped-def]
    """The artifact bytes and labels (in the order of the `probabilities` columns)."""
    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import StringTensorType

    vec, clf = pipe.steps[0][1], pipe.steps[-1][1]
    with warnings.catch_warnings():
        # "only tokenizer='word' is fully supported": char n-grams convert fine for these texts.
        warnings.simplefilter("ignore", UserWarning)
        onx = skl_to_onnx(
            pipe,
            initial_types=[("text", StringTensorType([None, 1]))],
            options={id(clf): {"zipmap": False}, id(vec): {"locale": "C.UTF-8"}},
            target_opset=17,
        )
    # skl2onnx names the outputs label and probabilities; the contract needs only the latter.
    return onx.SerializeToString(), [str(c) for c in clf.classes_]


@functools.cache
def tiny_artifact(variant: int = 0) -> tuple[bytes, list[str]]:
    """A small artifact; another `variant` gives a different model (another label set)."""
    examples = dict(EXAMPLES)
    if variant:
        examples = {f"{intent}_v{variant}": texts for intent, texts in examples.items()}
    return to_onnx(fit_pipeline(examples))


def serving_nlu_model(  # type: ignore[no-untyped-def]
    variant: int = 0, *, promote: bool = True, artifact: tuple[bytes, list[str]] | None = None
):
    """Store a ready NluModel with a tiny artifact (or `artifact`); serving (the previous one
    demoted) if `promote`. The caller tells processes with
    serving.serving_version_changed(model.pk)."""
    from nlu.models import NluModel, NluModelStatus

    onnx_bytes, labels = artifact or tiny_artifact(variant)
    if promote:
        NluModel.objects.filter(is_serving=True).update(is_serving=False)
    return NluModel.objects.create(
        status=NluModelStatus.READY,
        is_serving=promote,
        recipe="tfidf-char/logreg",
        labels=labels,
        artifact=onnx_bytes,
        artifact_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        intent_count=len(labels),
    )


@functools.cache
def cascade_artifact() -> tuple[bytes, list[str]]:
    """The product's own default recipe (a TF-IDF first stage, then e5) on EXAMPLES: the
    artifact a cascade's serving code sees."""
    from nlu.classifier.export import to_onnx as export
    from nlu.classifier.model import DEFAULT_RECIPE, IntentClassifier
    from nlu.classifier.train import embed_all

    texts = [normalize(t) for texts in EXAMPLES.values() for t in texts]
    labels = [intent for intent, texts in EXAMPLES.items() for _ in texts]
    # Uncalibrated, with a gate that leaves the clear texts to the first stage (six examples an
    # intent make for modest confidences).
    model = IntentClassifier(DEFAULT_RECIPE, gate=0.6).fit(texts, labels, embed_all(texts))
    return export(model), model.labels
