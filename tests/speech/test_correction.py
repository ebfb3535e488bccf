"""Vocabulary correction (convener.speech.correction): near misses become the term, words that
are what they look like stay."""

from __future__ import annotations

import pytest

from convener.settings import ConfigError
from convener.speech.correction import VocabularyCorrector, correct_text
from convener.speech.settings import SpeechSettings

CITIES = ("San Francisco", "Las Vegas", "Seattle", "Dallas", "Madrid", "Austin", "Boston", "Oak Street")


def fix(text: str, terms=CITIES, sim: float = 0.8) -> str:
    return VocabularyCorrector(terms, sim).correct(text)[0]


def test_a_near_miss_after_a_preposition_becomes_the_term_and_the_rest_is_kept():
    text, changes = VocabularyCorrector(CITIES).correct("Is it going to rain and San Francis Coach Mars?")
    assert text == "Is it going to rain and San Francisco Coach Mars?"
    assert [(c.heard, c.term) for c in changes] == [("San Francis", "San Francisco")]
    assert fix("I need a hotel in Los Vegas with me.") == "I need a hotel in Las Vegas with me."
    assert fix("Boston to Dalas, please.") == "Boston to Dallas, please."  # first in the text too


def test_words_that_are_what_they_look_like_are_left_alone():
    for text in ("So my sister is getting married in Austin.",  # Madrid: not after "getting"
                 "Reserve a seven seater in Boston.",  # Seattle
                 "Convert 100 dollars to euros.",  # Dallas
                 "Find the place to stay in the throat seat.",  # "the ..." window: no
                 "is the thai place on main street open tonight"):  # Oak Street
        assert fix(text) == text


def test_terms_already_there_are_not_touched_nor_overlapped():
    for text in ("I need a hotel in Las Vegas tonight.", "Is it cold in Austin's old town?",
                 "From Boston to Austin."):
        assert fix(text) == text


def test_the_threshold_and_the_settings():
    assert fix("in Dalas", sim=0.95) == "in Dalas"  # not close enough at 0.95
    assert correct_text("in Dalas", CITIES, 1.0) == ("in Dalas", [])  # 1.0: off
    assert correct_text("in Dalas", (), 0.8) == ("in Dalas", [])
    assert SpeechSettings().vocabulary_min_similarity == 0.8
    with pytest.raises(ConfigError, match="vocabulary_min_similarity"):
        SpeechSettings(vocabulary_min_similarity=0.2).validate()
    with pytest.raises(ValueError):
        VocabularyCorrector(CITIES, 0.0)


def test_short_terms_and_huge_vocabularies_are_bounded():
    assert VocabularyCorrector(("NY", "LA", "Rome")).terms[0].text == "Rome"  # under 4 letters: dropped
    letters = "abcdefghij"
    big = VocabularyCorrector(["Term" + "".join(letters[int(d)] for d in f"{i:04d}") for i in range(10_000)])
    assert len(big.terms) == 40  # the vocabulary's bound, as for the bias
    assert VocabularyCorrector(["x" * 1_000_000, "Dallas"]).terms[0].text == "Dallas"  # too long: dropped


def test_the_caller_voice_corrects_with_the_configured_vocabulary():
    from types import SimpleNamespace

    from convener.app.conversation import CallerVoice

    def voice(**speech) -> CallerVoice:
        return CallerVoice(SimpleNamespace(config=SimpleNamespace(speech=SpeechSettings(**speech))), None)

    assert voice(vocabulary=["Dallas"])._correct(None, "A room in Dalas.") == "A room in Dallas."
    assert voice()._correct(None, "A room in Dalas.") == "A room in Dalas."  # no vocabulary
    assert voice(vocabulary=["Dallas"], vocabulary_min_similarity=1.0)._correct(None, "in Dalas") == "in Dalas"
