"""Which bodies from kopf's lagging index are older than the status the operator last wrote.

The sequence is the one a burst produces: the operator writes status on a body the index has not updated yet,
so its own earlier write's event arrives after a later write. Read as someone else's status, that event made
the operator write the same status a second time (seen as an extra write per deployment in the scale test).
"""

from modelplane.operator.state import WrittenStatus

PLANNED = {"plan": {"pool": "l4"}, "conditions": [{"type": "Ready", "status": "False"}]}
READY = {"plan": {"pool": "l4"}, "conditions": [{"type": "Ready", "status": "True"}]}


def test_a_late_event_of_our_own_earlier_write_is_older_than_our_last_write() -> None:
    # Reconciled at "10" (no status yet), wrote "11"; the index still held "10" on the next pass, which wrote "12".
    first = WrittenStatus((), {}).after("10", "11", PLANNED)
    second = first.after("10", "12", READY)
    assert second.covers("11"), "the event of our write 11 lacks write 12"
    # That event arrives: nothing is written, and the record moves forward with the index.
    third = second.after("11", None, READY)
    assert third.versions == ("11", "12")
    assert not third.covers("10"), "the index never goes back to a version it passed"
    assert third.after("12", None, READY).versions == ("12",)


def test_a_version_the_operator_did_not_write_is_read_as_it_is() -> None:
    written = WrittenStatus((), {}).after("10", "11", PLANNED)
    assert not written.covers("13"), "someone else's write (or a spec change) after ours"
    assert written.after("13", None, READY) == WrittenStatus(("13",), READY)


def test_a_pass_that_writes_nothing_keeps_only_the_body_it_read() -> None:
    assert WrittenStatus((), {}).after("7", None, READY) == WrittenStatus(("7",), READY)
