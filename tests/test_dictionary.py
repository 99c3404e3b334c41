"""The entity dictionary (gazetteer) and the DictionaryEmbed tok2vec input."""

import pickle

import numpy
import pytest
import spacy
from spacy.tokens import Doc

from spacy_bioner.dictionary import EntityDictionary
from spacy_bioner.layers.dictionary_embed import build_dictionary_embed

from .util import make_examples

TSV = "name\ttype\tid\nbreast cancer\tDisease\tD1\nBreast\tAnatomy\tA1\ncancer\tDisease\tD2\naspirin\tChemical\tC1\nx\tChemical\tC2\n"


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "names.tsv"
    path.write_text(TSV, encoding="utf8")
    return path


def columns(dictionary: EntityDictionary, array: numpy.ndarray):
    """The (type, B/I) pairs set in each row."""
    return [[(dictionary.types[i // 2], "BI"[i % 2]) for i in numpy.nonzero(row)[0]] for row in array]


def test_longest_match_per_type_case_insensitive(tsv):
    dictionary = EntityDictionary.from_tsv(tsv)
    assert dictionary.types == ["Anatomy", "Chemical", "Disease"]
    nlp = spacy.blank("en")
    (array,) = dictionary.features([nlp("BREAST Cancer after Aspirin x")])
    assert columns(dictionary, array) == [
        [("Anatomy", "B"), ("Disease", "B")],  # the longest Disease match wins over "cancer" alone
        [("Disease", "I")],
        [],
        [("Chemical", "B")],
        [],  # one-character names are left out
    ]


def test_types_filter_and_empty_doc(tsv):
    dictionary = EntityDictionary.from_tsv(tsv, types=["Chemical"])
    assert dictionary.types == ["Chemical"] and dictionary.n_features == 2
    (empty,) = dictionary.features([spacy.blank("en")("")])
    assert empty.shape == (0, 2)


def test_bytes_round_trip_matches_the_same(tsv):
    dictionary = EntityDictionary.from_tsv(tsv)
    loaded = EntityDictionary().from_bytes(dictionary.to_bytes())
    doc = spacy.blank("en")("breast cancer and aspirin")
    assert numpy.array_equal(dictionary.features([doc])[0], loaded.features([doc])[0])


def test_matching_leaves_the_pipeline_vocab_alone(tsv):
    nlp = spacy.blank("en")
    doc = nlp("nothing to see")
    before = len(nlp.vocab.strings)
    EntityDictionary.from_tsv(tsv).features([doc])
    assert len(nlp.vocab.strings) == before


@pytest.mark.parametrize(
    "text,message",
    [
        ("name\tid\nfoo\t1\n", "header with the columns 'name' and 'type'"),
        ("name\ttype\nfoo\n", ":2: expected at least 2 columns"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text, encoding="utf8")
    with pytest.raises(ValueError, match=message):
        EntityDictionary.from_tsv(path)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        EntityDictionary.from_tsv(tmp_path / "missing.tsv")


def dictionary_pipeline(path) -> spacy.Language:
    nlp = spacy.blank("en")
    embed = {
        "@architectures": "spacy_bioner.DictionaryEmbed.v1",
        "dictionary": str(path) if path else None,
        "types": None,
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": 16,
            "attrs": ["NORM", "SHAPE"],
            "rows": [100, 50],
            "include_static_vectors": False,
        },
    }
    encode = {
        "@architectures": "spacy.MaxoutWindowEncoder.v2",
        "width": 16,
        "depth": 1,
        "window_size": 1,
        "maxout_pieces": 2,
    }
    tok2vec = {"@architectures": "spacy.Tok2Vec.v2", "embed": embed, "encode": encode}
    nlp.add_pipe(
        "bioner_tagger",
        config={
            "scheme": "none",
            "model": {"@architectures": "spacy_bioner.Tagger.v1", "output": "crf", "tok2vec": tok2vec},
        },
    )
    return nlp


def test_dictionary_embed_adds_the_projected_matches(tsv):
    nlp = dictionary_pipeline(tsv)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    embed = nlp.get_pipe("bioner_tagger").model.get_ref("tok2vec").get_ref("embed")
    doc = nlp.make_doc("aspirin and breast cancer")
    with_dictionary = embed.predict([doc])[0]
    projection = embed.get_ref("projection")
    projection.set_param("W", projection.ops.alloc2f(*projection.get_param("W").shape))
    projection.set_param("b", projection.ops.alloc1f(*projection.get_param("b").shape))
    without = embed.predict([doc])[0]
    # Only the matched tokens differ (the bias is zero at init), and only by the projection.
    changed = numpy.abs(with_dictionary - without).sum(axis=1) > 0
    assert changed.tolist() == [True, False, True, True]


def test_trained_pipeline_carries_its_dictionary(tsv, tmp_path):
    nlp = dictionary_pipeline(tsv)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "pipeline")
    tsv.unlink()  # the file is read at initialize only: the saved model holds the names
    loaded = spacy.load(tmp_path / "pipeline")
    texts = [eg.reference.text for eg in examples]
    for before, after in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert [(e.start, e.end, e.label_) for e in before.ents] == [(e.start, e.end, e.label_) for e in after.ents]
    features = loaded.get_pipe("bioner_tagger").model.get_ref("tok2vec").get_ref("embed").get_ref("features")
    assert features.attrs["dictionary"].types == ["Anatomy", "Chemical", "Disease"]


def test_missing_dictionary_setting_is_named():
    nlp = dictionary_pipeline(None)
    with pytest.raises(ValueError, match="no dictionary file given"):
        nlp.initialize(lambda: make_examples(nlp))


def test_standalone_layer_needs_initialize(tsv):
    model = build_dictionary_embed(
        spacy.registry.architectures.get("spacy.MultiHashEmbed.v2")(
            width=8, attrs=["NORM"], rows=[10], include_static_vectors=False
        ),
        str(tsv),
    )
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="initialize the pipeline first"):
        model.predict([Doc(nlp.vocab, words=["a"])])


def test_pickled_pipeline_keeps_its_dictionary(tsv):
    """Worker processes (n_process with spawn) receive the pipeline pickled."""
    nlp = dictionary_pipeline(tsv)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(10):
        nlp.update(examples, sgd=optimizer)
    nlp("aspirin and breast cancer")  # builds the matcher, which is not pickled
    restored = pickle.loads(pickle.dumps(nlp))
    texts = [eg.reference.text for eg in examples]
    for before, after in zip(nlp.pipe(texts), restored.pipe(texts)):
        assert before.spans["bioner_tagger"].attrs["scores"] == pytest.approx(
            after.spans["bioner_tagger"].attrs["scores"]
        )
