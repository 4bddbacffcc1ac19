"""Differences of a page's text: line by line, and word by word inside a changed line."""

from wiki.diff import line_diff, word_diff


def test_only_the_changed_words_of_a_line_are_marked():
    old, new = word_diff("Retrain every month, on Monday.", "Retrain every week, on Monday!")
    assert old == [("Retrain every ", False), ("month", True), (", on Monday", False), (".", True)]
    assert new == [("Retrain every ", False), ("week", True), (", on Monday", False), ("!", True)]


def test_the_pieces_put_together_are_the_lines_as_they_were():
    before, after = "a  b\tc <d> e", "a b\tX <d> e f"
    old, new = word_diff(before, after)
    assert "".join(text for text, _ in old) == before
    assert "".join(text for text, _ in new) == after
    assert ("X", True) in new and (" f", True) in new


def test_a_changed_line_pair_carries_its_words_an_added_line_does_not():
    rows = line_diff("keep\nold words\ngone", "keep\nnew words")
    assert rows[0] == {"op": "equal", "old": "keep", "new": "keep"}
    assert rows[1]["op"] == "replace"
    assert rows[1]["old_words"] == [("old", True), (" words", False)]
    assert rows[1]["new_words"] == [("new", True), (" words", False)]
    assert rows[2] == {"op": "replace", "old": "gone", "new": None}
