"""Differences of a page's text: line by line, and word by word inside a changed line."""

from wiki.diff import TOKEN, WORD_DIFF_BUDGET, compare, line_diff, word_diff


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


def test_long_changed_lines_are_marked_whole_once_the_word_budget_is_spent():
    """A long one-line paragraph, changed, must not cost a GET of the compare page seconds
    (word comparison is quadratic): past the budget its lines are compared whole."""
    words = " ".join(f"word{n % 50}" for n in range(5000))  # ~10,000 tokens
    assert len(TOKEN.findall(words)) ** 2 > WORD_DIFF_BUDGET
    short_old, short_new = "Retrain monthly.", "Retrain weekly."
    rows = line_diff(f"{words}\n{short_old}", f"{words} changed\n{short_new}")
    assert rows[0]["op"] == "replace" and "old_words" not in rows[0]
    assert rows[1]["new_words"] == [("Retrain ", False), ("weekly", True), (".", False)]


def test_reports_and_the_api_get_lines_without_word_marks():
    old = {"title": "T", "fields": {}, "body": "Retrain monthly."}
    new = {"title": "T", "fields": {}, "body": "Retrain weekly."}
    (body,) = [c for c in compare(None, old, new, words=False) if c.changed]
    assert body.lines == [{"op": "replace", "old": "Retrain monthly.", "new": "Retrain weekly."}]
