import pytest

from asr.data.text import normalize_text
from asr.tokenizer import BPETokenizer, CharTokenizer, PinyinTokenizer, load_tokenizer, tokenizer_from_dict
from asr.tokenizer.pinyin import to_pinyin

TEXTS = [normalize_text(t) for t in ["今天 天气 很 好", "我们 去 北京 看 长城", "ＡＩ 模型 hello world 很好", "人工 智能 与 语音 识别"]]


def test_normalize_text():
    assert normalize_text("  我们 去\t北京 ") == "我们去北京"
    assert normalize_text("ＡＢＣ１２３ abc  def 好") == "ABC123 ABC DEF好"


@pytest.mark.parametrize("build", [lambda: CharTokenizer.build(TEXTS), lambda: BPETokenizer.build(TEXTS * 20, vocab_size=60)])
def test_round_trip(build, tmp_path):
    tok = build()
    for text in TEXTS:
        ids = tok.encode(text)
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text
    # special ids follow the WeNet convention and survive saving, loading and the model-file dict
    assert (tok.units[tok.blank_id], tok.units[tok.unk_id], tok.units[tok.eos_id]) == ("<blank>", "<unk>", "<sos/eos>")
    tok.save(tmp_path)
    for again in (load_tokenizer(tmp_path, tok.kind), tokenizer_from_dict(tok.to_dict())):
        assert again.units == tok.units and [again.encode(t) for t in TEXTS] == [tok.encode(t) for t in TEXTS]


def test_pinyin_round_trip():
    tok = PinyinTokenizer.build(TEXTS)
    for text in TEXTS:
        assert tok.decode(tok.encode(text)) == to_pinyin(text)
    assert tok.split("北京") == ["bei3", "jing1"]


def test_oov_becomes_unk_and_is_reported():
    tok = CharTokenizer.build(["今天"])
    assert tok.encode("今日") == [tok.unit_to_id["今"], tok.unk_id]
    assert tok.oov("今日") == ["日"]


def test_bad_units_file(tmp_path):
    (tmp_path / "units.txt").write_text("<blank> 0\n<unk> 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="units.txt:2"):
        load_tokenizer(tmp_path)
