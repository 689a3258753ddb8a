"""The text features of the intent model: TF-IDF over character n-grams and words.

Both vectorisers must give the same numbers in scikit-learn and in the ONNX graph, which rules
out some settings (measured with skl2onnx 1.20): `sublinear_tf=True` converts but scores
differently, `analyzer="char_wb"` does not convert, and Python's Unicode `\\w` differs from
re2's ASCII `\\w`, so the ONNX tokeniser gets its own pattern (WORD_PATTERN_RE2).
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

# Character n-grams cover Chinese without segmentation (jieba would have to run at serving time
# too) and survive typos; 1-4 scored best of (1,3), (1,4), (2,5) on Banking77 and SMP2017.
CHAR_NGRAMS = (1, 4)
WORD_NGRAMS = (1, 2)
# Single-letter words count ("i", "a", digits) and so does every Han character run.
WORD_PATTERN = r"(?u)\b\w+\b"
WORD_PATTERN_RE2 = r"[\p{L}\p{N}_]+"
# Features seen in one example only are noise for ~100 examples per intent, and they cost
# graph size and latency; with fewer than MIN_DF_FROM examples every feature is kept.
MIN_DF_FROM = 200


def text_features(n_examples: int) -> FeatureUnion:
    """A fresh (unfitted) union of the character and word TF-IDF vectorisers."""
    min_df = 2 if n_examples >= MIN_DF_FROM else 1
    common = {"lowercase": False, "sublinear_tf": False, "min_df": min_df, "dtype": np.float32}
    return FeatureUnion(
        [
            ("char", TfidfVectorizer(analyzer="char", ngram_range=CHAR_NGRAMS, **common)),
            (
                "word",
                TfidfVectorizer(
                    analyzer="word", ngram_range=WORD_NGRAMS, token_pattern=WORD_PATTERN, **common
                ),
            ),
        ]
    )


def onnx_options(union: FeatureUnion) -> dict[int, dict[str, object]]:
    """skl2onnx options that make each vectoriser's graph tokenise like scikit-learn."""
    options: dict[int, dict[str, object]] = {}
    for _, vectorizer in union.transformer_list:
        option: dict[str, object] = {"locale": "C.UTF-8"}
        if vectorizer.analyzer == "word":
            option["tokenexp"] = WORD_PATTERN_RE2
        options[id(vectorizer)] = option
    return options
