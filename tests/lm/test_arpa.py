import math

import pytest

from asr.lm.arpa import ArpaError, read_arpa, read_arpa_vocab, write_arpa


def test_write_then_read_gives_the_same_model(domain_b, tmp_path):
    path = write_arpa(domain_b, tmp_path / "b.arpa")
    back = read_arpa(path)
    assert back.counts() == domain_b.counts()
    for n in range(domain_b.order):
        assert back.prob[n].keys() == domain_b.prob[n].keys()
        for g, p in domain_b.prob[n].items():
            assert back.prob[n][g] == pytest.approx(p, abs=1e-5)
        for g, w in domain_b.bow[n].items():
            assert back.bow[n].get(g, 0.0) == pytest.approx(w, abs=1e-5)
    assert read_arpa_vocab(path) == domain_b.vocab
    assert not [p for p in tmp_path.iterdir() if p.name != "b.arpa"]  # no temporary file left


def test_query_backs_off_as_the_definition_says(domain_a):
    m = domain_a
    # an unlisted trigram: bow(h) * P(w | h[1:]), h listed
    h, w = next((h, x) for h in m.bow[1] for x in m.vocab
                if h + (x,) not in m.prob[2] and h[1:] + (x,) in m.prob[1] and x != "<s>")
    assert m.log10_prob(h, w) == pytest.approx(m.bow[1][h] + m.prob[1][h[1:] + (w,)])
    # a word outside the vocabulary is <unk>
    assert m.log10_prob(h, "zzz") == m.log10_prob(h, "<unk>")
    # histories longer than N - 1 are cut
    assert m.log10_prob(("x", "y") + h, w) == m.log10_prob(h, w)
    assert math.isfinite(m.log10_prob((), "</s>"))


def _corrupt(tmp_path, model, edit):
    """Write the model, apply ``edit(lines) -> (lines, bad line text)``, return the path and the 1-based bad line."""
    path = write_arpa(model, tmp_path / "m.arpa")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines, marker = edit(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines.index(marker) + 1


def _first_index(lines, prefix):
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def bad_number(lines):
    i = _first_index(lines, "\\2-grams:") + 2
    lines[i] = "abc" + lines[i][lines[i].index("\t"):]
    return lines, lines[i]


def wrong_field_count(lines):
    i = _first_index(lines, "\\3-grams:") + 1
    lines[i] = lines[i] + "\tx\ty"
    return lines, lines[i]


def count_mismatch(lines):  # one 2-gram removed: the error is reported where the section ends
    i = _first_index(lines, "\\2-grams:") + 1
    del lines[i]
    return lines, "\\3-grams:"



def out_of_order(lines):
    i = _first_index(lines, "\\2-grams:")
    lines[i] = "\\3-grams:"
    return lines, lines[i]


def backoff_on_highest_order(lines):
    i = _first_index(lines, "\\3-grams:") + 1
    lines[i] = lines[i] + "\t-0.5"
    return lines, lines[i]


@pytest.mark.parametrize("edit,words", [
    (bad_number, "not a number"), (wrong_field_count, "fields"), (count_mismatch, "ngram 2="),
    (out_of_order, "out of order"), (backoff_on_highest_order, "highest order")])
def test_malformed_arpa_names_the_line(domain_a, tmp_path, edit, words):
    path, lineno = _corrupt(tmp_path, domain_a, edit)
    with pytest.raises(ArpaError, match=words) as e:
        read_arpa(path)
    assert str(e.value).startswith(f"{path}:{lineno}:")


def test_duplicate_ngram_names_the_second_line(domain_a, tmp_path):
    path = write_arpa(domain_a, tmp_path / "m.arpa")
    lines = path.read_text(encoding="utf-8").splitlines()
    i = _first_index(lines, "\\2-grams:") + 1
    lines[i + 1] = lines[i]  # the second 2-gram replaced by a copy of the first (counts still match)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ArpaError, match="listed twice") as e:
        read_arpa(path)
    assert str(e.value).startswith(f"{path}:{i + 2}:")


def test_truncated_file_and_missing_header(domain_a, tmp_path):
    path = write_arpa(domain_a, tmp_path / "m.arpa")
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\\end\\")], encoding="utf-8")
    with pytest.raises(ArpaError, match="without \\\\end"):
        read_arpa(path)
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(ArpaError, match="no \\\\data"):
        read_arpa(path)
