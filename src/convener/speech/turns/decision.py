"""The turn-completion decision (pure): has the caller finished, given what the models say?

Two opinions may be available after the short VAD stop: the audio model's probability that the
turn is complete (Smart Turn, prosody and wording from the sound) and the transcript model's
(the words of the speculative recognition). ``decide`` combines those present:

- none: no decision possible here; the detector's silence limit ends the turn;
- one: that probability against the threshold;
- both: complete only when BOTH say so (the lower of the two against the threshold). A
  false "finished" cuts the caller off; a false "unfinished" costs waiting. On the project's
  benchmark speech the audio model calls most unfinished phrases finished (synthetic voices
  end every phrase with falling prosody), so an average would let it outvote the words.

``second_look`` is the graded rule after an "incomplete": once the caller has stayed silent
for ``turn_uncertain_wait_ms`` (800 ms) the bar is lower. The turn ends unless the
transcript ends on a word that is strongly unfinished (``strongly_unfinished``: an article,
a preposition, a conjunction, a possessive, an auxiliary, "to"/"too", a filler, a trailing
comma or dash),
and only those wait on to ``turn_incomplete_wait_ms``. It replaces a blind 2 s wait for the
finished requests the classifier doubts ("Thank you", "… at seven"), which set the p95 on
the benchmark set. "too" is there because Whisper hears a trailing "to" as "too" ("flights too");
"two" is not ("a room for two").

**Words heard badly are not trusted to end a turn at the first look.** The recogniser's
confidence (Whisper: exp of the mean token log-probability) comes with the words. Below
``turn_min_confidence`` (0.55) a "complete" from the transcript model becomes "incomplete",
and the second look does not lower the bar either (it reads the ending of words that were
not heard). ``doubt_look``, at ``turn_doubt_wait_ms`` (1.2 s) of silence, reads them as the
second look reads words heard well: the turn ends unless they end strongly unfinished. Before
it, such a turn ended by silence at ``turn_incomplete_wait_ms`` (2 s); the pauses a caller
leaves inside a turn rarely reach a second, and the benchmark's hesitations stop at 1.2 s. On the benchmark's
tuning part (tiny.en, first phrases + 200 ms): of the 9 unfinished phrases the classifier
called finished, all misheard ("Please remember my vocalist."), 8 had a confidence under 0.55;
of the 36 finished requests, 8 did (mostly the espeak voices), and those now wait 2 s. Live, the
misheard fragments of pauses over 800 ms were cut off at the second look when only the first
look was gated (3 of 12 hesitations on one tuning third, all three gated ones). Only
transcripts of three words or more are gated (``GATED_WORDS``): "Next Friday." and "Yes." are
recognised with confidences of 0.4-0.6 even when heard right, and the demo's "Next Friday."
waited 2 s before that rule.

**A guessed last word is doubted too** (``turn_min_last_word_confidence``, 0.4). Whisper gives
each token's probability; a last word under 0.4 (the product of its tokens', before the final
punctuation) makes the words doubted as a low confidence does. A fragment misheard as a
finished sentence is often heard well up to a guessed ending: on the benchmark's tuning part
"Show me flight 2." (hibari-fast, confidence 0.62, "2" 0.27) and "Can I get a flight from off
to non?" (0.67, "non" 0.24) passed the confidence gate, while the finished requests heard
with confidence 0.55 or more ended on words of 0.47 or more (one misheard espeak request,
"… after the morning.", 0.13). docs/decisions.md, "A guessed last word".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from convener.speech.turns.text_model import words


@dataclass(frozen=True, slots=True)
class TurnDecision:
    complete: bool
    probability: float | None  # the combined probability; None when no model gave one
    audio: float | None = None
    text: float | None = None
    doubted_words: bool = False  # the words' "complete" was not trusted: heard with low confidence
    unrouted: bool = False  # the words' "complete" waits: no agent fits them (``wait_unrouted``)

    def describe(self) -> str:
        parts = [f"{k} {v:.2f}" for k, v in (("audio", self.audio), ("text", self.text)) if v is not None]
        if self.doubted_words:
            parts.append("words heard with low confidence")
        if self.unrouted:
            parts.append("no agent fits the words yet")
        return ("complete" if self.complete else "incomplete") + (f" ({', '.join(parts)})" if parts else "")


def decide(audio: float | None, text: float | None, threshold: float = 0.5,
           confidence: float | None = None, min_confidence: float = 0.0,
           last_word: float | None = None, min_last_word: float = 0.0) -> TurnDecision:
    """``confidence``: the recogniser's for the words ``text`` judged; ``last_word``: its
    probability of their last word (None: unknown, trusted)."""
    present = [p for p in (audio, text) if p is not None]
    if not present:
        return TurnDecision(False, None, audio, text)
    p = min(present)
    if text is not None and p >= threshold and (
            (confidence is not None and confidence < min_confidence)
            or (last_word is not None and last_word < min_last_word)):
        return TurnDecision(False, p, audio, text, doubted_words=True)
    return TurnDecision(p >= threshold, p, audio, text)


# Last words after which a request does not stop: articles, prepositions, conjunctions,
# possessives and determiners, fillers, and auxiliaries ("… going to be", "… is"). Narrower
# than the classifier's closed-class prior: no pronouns ("Thank you", "Can I?" are finished)
# and no verbs like "want", "need", "like" ("What's it like?").
STRONGLY_UNFINISHED = frozenset("""
a an the
to too for from in on at of with by about into onto near via than between toward towards
and or but because if so that nor
my your our their his her its this these those some any every another each
um uh er erm hmm uhm mm ah
be been is are was were am do does did will would can could should shall may might must
""".split())


def strongly_unfinished(transcript: str) -> bool:
    """The words stop where no request stops: on a word above, or a trailing comma/dash/…"""
    t = transcript.rstrip()
    if t.endswith((",", "-", "...", "…", "–", "—")):
        return True
    w = words(t)
    return bool(w) and w[-1] in STRONGLY_UNFINISHED


def second_look(first: TurnDecision, transcript: str | None) -> TurnDecision:
    """The decision again after ``turn_uncertain_wait_ms`` of silence (the caller said nothing).

    Complete unless the transcript is strongly unfinished. Without words (no transcript, or an
    empty one), or with words heard too badly to read their ending (``doubted_words``), the
    first decision stands: there is nothing to lower the bar on."""
    if first.complete or first.doubted_words or transcript is None or not words(transcript):
        return first
    return replace(first, complete=not strongly_unfinished(transcript))


def wait_unrouted(first: TurnDecision) -> TurnDecision:
    """The first look's "complete" on words that no agent fits, as a first request, waits.

    Answering such words is answering "Sorry, none of our agents can help": the worst reply to
    a caller who had not finished ("Get me on the first." was the first half of "Get me on the
    first flight to Atlanta." a voice spoke with a gap in it, heard at 16 callers at once), and
    to words misheard into nothing. So the first look keeps listening; the second look
    (``turn_uncertain_wait_ms``) decides as for any "incomplete". A request that no agent
    serves hears its answer that much later; a request for an agent, or words for the agent
    holding the floor, are not delayed (the caller of the check decides what "fits" means:
    ``FloorSession.fits_nobody``)."""
    if not first.complete:
        return first
    return replace(first, complete=False, unrouted=True)


def doubt_look(first: TurnDecision, transcript: str | None) -> TurnDecision:
    """The decision after ``turn_doubt_wait_ms`` of silence: words heard with low confidence
    (``doubted_words``) are now read as the second look reads words heard well; any other
    decision is the second look's."""
    if first.doubted_words and transcript is not None and words(transcript):
        return replace(first, complete=not strongly_unfinished(transcript))
    return second_look(first, transcript)
