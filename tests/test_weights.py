import math

import pytest

from spacy_bioner.weights import SCHEMES, class_weights, weights_table

# The WeLT paper's NCBI-disease instance counts (section 3).
PAPER_COUNTS = {"O": 4_262_718, "B": 389_892, "I": 1_215_981}


def test_welt_reproduces_the_papers_softmax_values():
    weights = class_weights(PAPER_COUNTS, "welt")
    # The paper lists the vector (0.2167, 0.4192, 0.3641). Its text labels the middle
    # values inconsistently; by Eq. 1 the rarest class (B, 389,892) gets the largest weight.
    assert round(weights["O"], 4) == 0.2167
    assert round(weights["B"], 4) == 0.4192
    assert round(weights["I"], 4) == 0.3641
    assert math.isclose(sum(weights.values()), 1.0)


@pytest.mark.parametrize("scheme", ["ins", "isns", "ens"])
def test_rescaled_schemes_have_mean_instance_weight_one(scheme):
    weights = class_weights(PAPER_COUNTS, scheme, beta=0.999999)
    total = sum(PAPER_COUNTS.values())
    assert math.isclose(sum(weights[c] * n for c, n in PAPER_COUNTS.items()), total, rel_tol=1e-9)


def test_ins_and_isns_keep_the_published_ratios():
    ins = class_weights(PAPER_COUNTS, "ins")
    isns = class_weights(PAPER_COUNTS, "isns")
    assert math.isclose(ins["B"] / ins["O"], PAPER_COUNTS["O"] / PAPER_COUNTS["B"])
    assert math.isclose(isns["B"] / isns["O"], math.sqrt(PAPER_COUNTS["O"] / PAPER_COUNTS["B"]))


def test_ens_uses_cui_et_al_formula_with_correct_precedence():
    counts = {"a": 1, "b": 3}
    beta = 0.5
    weights = class_weights(counts, "ens", beta=beta)
    expected_ratio = ((1 - beta) / (1 - beta**1)) / ((1 - beta) / (1 - beta**3))
    assert math.isclose(weights["a"] / weights["b"], expected_ratio)
    # (1 - beta) / (1 - beta**n) with n=1 is exactly 1; the precedence bug 1 - beta / 1 - beta**n is not.
    assert math.isclose(expected_ratio, 1.75)


def test_none_is_all_ones():
    assert class_weights(PAPER_COUNTS, "none") == {"O": 1.0, "B": 1.0, "I": 1.0}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zero_count_gets_a_finite_weight(scheme):
    weights = class_weights({"O": 100, "B-X": 10, "I-X": 0}, scheme, beta=0.5)
    assert all(math.isfinite(w) and w > 0 for w in weights.values())


def test_zero_count_is_weighted_like_a_class_seen_once():
    with_zero = class_weights({"O": 100, "B": 0}, "ins")
    assert with_zero["B"] / with_zero["O"] == pytest.approx(100.0)


def test_strength_zero_turns_weighting_off_and_softens_in_between():
    assert len(set(round(w, 12) for w in class_weights(PAPER_COUNTS, "ins", strength=0.0).values())) == 1
    half = class_weights(PAPER_COUNTS, "ins", strength=0.5)
    full = class_weights(PAPER_COUNTS, "ins")
    assert 1 < half["B"] / half["O"] < full["B"] / full["O"]
    welt_soft = class_weights(PAPER_COUNTS, "welt", strength=0.5)
    welt = class_weights(PAPER_COUNTS, "welt")
    assert welt_soft["B"] / welt_soft["O"] < welt["B"] / welt["O"]


def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(ValueError, match="welt.*ins.*isns.*ens|none, welt, ins, isns, ens"):
        class_weights(PAPER_COUNTS, "focal")


@pytest.mark.parametrize(
    "counts,kwargs,message",
    [
        ({}, {}, "without any classes"),
        ({"O": -1}, {}, "negative"),
        ({"O": 1}, {"beta": 1.0}, "beta"),
        ({"O": 1}, {"strength": -1}, "strength"),
    ],
)
def test_invalid_arguments_are_named(counts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        class_weights(counts, "ens", **kwargs)


def test_weights_table_has_a_row_per_class_and_a_column_per_scheme():
    lines = weights_table({"O": 90, "B-X": 4, "I-X": 6}, "ens", 0.9, 1.0)
    assert lines[0].split() == ["tag", "count", "none", "welt", "ins", "isns", "ens*"]
    assert [line.split()[:2] for line in lines[1:]] == [["O", "90"], ["B-X", "4"], ["I-X", "6"]]
    assert float(lines[1].split()[3]) == pytest.approx(
        class_weights({"O": 90, "B-X": 4, "I-X": 6}, "welt")["O"], abs=1e-4
    )
    assert len({len(line) for line in lines}) == 1
