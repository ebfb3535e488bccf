from convener.app.room_policy import may_interrupt


def test_addressee_only_cuts_its_own_reply():
    assert may_interrupt("addressee", "tag:a", "tag:a")
    assert not may_interrupt("addressee", "tag:a", "tag:b")
    assert not may_interrupt("addressee", "tag:a", None)


def test_a_reply_to_the_room_anyone_may_cut():
    assert may_interrupt("addressee", None, "tag:b")


def test_anyone_policy():
    assert may_interrupt("anyone", "tag:a", "tag:b")
