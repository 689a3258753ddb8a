"""Content safety: sensitive-word matching on user and model text (pure Python, no Django).

`normalize` folds text (NFKC, case, invisible characters, separators), `matcher` finds and masks
words with one Aho-Corasick automaton, `stream` does the same on a reply arriving in chunks.
"""
