"""The hashed character n-gram layer of the WordLlama router."""

from __future__ import annotations

import numpy as np

from chronoken.toolkens.model import char_ngrams

MASK = (1 << 64) - 1


def reference(text: str, buckets: int, ns: tuple[int, ...]) -> list[int]:
    """The same hash in plain Python integers (explicit modulo 2**64)."""
    s = " " + " ".join(text.lower().split()) + " "
    codes = [ord(ch) for ch in s]
    out = []
    for n in ns:
        for i in range(len(codes) - n + 1):
            h = n
            for j in range(n):
                h = (h * 1000003 + codes[i + j]) & MASK
            h ^= h >> 31
            out.append(h % buckets)
    return out


def test_numpy_hash_matches_the_plain_integer_definition() -> None:
    # The shipped weights are indexed by these ids: any change to the hash breaks the store.
    texts = [
        "Forecast 12 months",
        "预测未来12个月的值。",
        "  Ünïcödé\tspaces  ",
        "a",
        "",
        "bad \udcff byte",
    ]
    for text in texts:
        got = char_ngrams(text, 131072, (2, 3, 4)).tolist()
        assert got == reference(text, 131072, (2, 3, 4)), text


def test_case_and_whitespace_do_not_change_the_grams() -> None:
    a = char_ngrams("Find  the BREAKS", 4096)
    b = char_ngrams("find the breaks", 4096)
    assert np.array_equal(a, b)


def test_a_typo_keeps_most_grams() -> None:
    right = set(char_ngrams("forecast the demand", 1 << 17).tolist())
    typo = set(char_ngrams("forcast the demand", 1 << 17).tolist())
    other = set(char_ngrams("segment the signal", 1 << 17).tolist())
    assert len(right & typo) / len(right | typo) > 0.6
    assert len(right & other) / len(right | other) < 0.3


def test_cjk_characters_get_distinct_grams() -> None:
    # LLaMA's tokenizer falls back to shared byte tokens for many CJK characters; the
    # character grams of two different words must not collide that way.
    blank = set(char_ngrams("", 1 << 17).tolist())  # the padding spaces every text shares
    a = set(char_ngrams("预测", 1 << 17).tolist()) - blank
    b = set(char_ngrams("趋势", 1 << 17).tolist()) - blank
    assert a and b and not (a & b)


def test_batch_gives_the_same_ids_as_one_text_at_a_time() -> None:
    from chronoken.toolkens.model import gram_ids_batch

    texts = [
        "Forecast 12 months",
        "",
        "a",
        "ab",
        "预测未来12个月的值。",
        " x  y ",
        "SSA, not ARIMA",
    ] * 2  # more than 8 texts: the vectorised pass over all texts at once
    batch = gram_ids_batch(texts, 4096, (2, 3, 4), ())
    assert len(batch) == len(texts)
    for text, ids in zip(texts, batch, strict=True):
        assert np.array_equal(ids, char_ngrams(text, 4096, (2, 3, 4))), text
    assert gram_ids_batch([], 4096, (2, 3, 4), ()) == []


def test_word_ngrams_keep_word_order_and_ignore_case_and_punctuation() -> None:
    from chronoken.toolkens.model import word_ngrams

    a = word_ngrams("Don't RUN it!", 1 << 17, (2,))
    assert len(a) == 3  # don t | t run | run it
    assert np.array_equal(a, word_ngrams("don't run it", 1 << 17, (2,)))
    # The same words in another order are other features: what a bag of words loses.
    b = word_ngrams("run it now", 1 << 17, (2,))
    assert not set(b.tolist()) & set(word_ngrams("now it run", 1 << 17, (2,)).tolist())
    assert len(word_ngrams("one two three four", 1 << 17, (2, 3))) == 3 + 2
    assert len(word_ngrams("alone", 1 << 17, (2,))) == 0
    assert len(word_ngrams("", 1 << 17, (2,))) == 0


def test_word_ngram_ids_are_fixed() -> None:
    # The shipped weights are indexed by these ids (crc32 of each word, mixed): a change to
    # the hash breaks the store, as for the character n-grams.
    from chronoken.toolkens.model import word_ngrams

    assert word_ngrams("don't run it now", 131072, (2,)).tolist() == [46512, 38363, 100434, 111634]


def test_word_ngram_batch_keeps_each_texts_grams_apart() -> None:
    from chronoken.toolkens.model import word_ngrams_batch

    texts = ["Forecast 12 months", "", "a", "a b", "预测 未来 12 个月", "SSA, not ARIMA, ok?"]
    batch = word_ngrams_batch(texts, 1 << 20, (2, 3))
    assert len(batch) == len(texts) and word_ngrams_batch([], 4096, (2,)) == []
    for text, ids in zip(texts, batch, strict=True):
        n = len(text.replace(",", " ").replace("?", " ").split())
        assert len(ids) == max(n - 1, 0) + max(n - 2, 0), text
        # No gram spans two texts: each text alone gives the same ids.
        assert np.array_equal(ids, word_ngrams_batch([text], 1 << 20, (2, 3))[0]), text
