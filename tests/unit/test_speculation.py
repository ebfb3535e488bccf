"""The rule that decides when a speculative decode starts (convener.app.speculation)."""

from convener.app.speculation import should_speculate


def test_first_speculation_of_an_utterance_after_speculate_after_ms():
    assert not should_speculate(True, 0.04, 0.05, 0.15, dropped=0)
    assert should_speculate(True, 0.05, 0.05, 0.15, dropped=0)


def test_after_a_dropped_one_the_next_waits_for_the_retry_silence():
    assert not should_speculate(True, 0.10, 0.05, 0.15, dropped=1)
    assert not should_speculate(True, 0.14, 0.05, 0.15, dropped=3)
    assert should_speculate(True, 0.15, 0.05, 0.15, dropped=1)


def test_retry_zero_or_shorter_than_after_is_after():
    assert should_speculate(True, 0.05, 0.05, 0.0, dropped=2)
    assert not should_speculate(True, 0.08, 0.10, 0.05, dropped=1)
    assert should_speculate(True, 0.10, 0.10, 0.05, dropped=1)


def test_forced_decode_is_never_held_back():
    assert should_speculate(True, 0.0, 0.05, 0.15, dropped=5, force=True)
    assert should_speculate(True, 0.0, 0.0, 0.0, dropped=0, force=True)


def test_nothing_outside_an_utterance_or_when_speculation_is_off():
    assert not should_speculate(False, 1.0, 0.05, 0.15, dropped=0, force=True)
    assert not should_speculate(True, 1.0, 0.0, 0.15, dropped=0)


def test_no_speculation_while_every_decoder_is_busy_but_the_decision_still_decodes():
    assert not should_speculate(True, 0.30, 0.05, 0.0, dropped=0, busy=True)
    assert should_speculate(True, 0.30, 0.05, 0.0, dropped=0, busy=False)
    assert should_speculate(True, 0.0, 0.05, 0.0, dropped=0, force=True, busy=True)
