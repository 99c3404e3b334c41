import math

import numpy
import pytest

from spacy_bioner.losses import binary_cross_entropy, iou_scaled_bce, max_iou, pairwise_ranking_loss


def softplus(x):
    return math.log1p(math.exp(x))


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_max_iou_uses_inclusive_indices():
    spans = [(0, 2), (1, 3), (5, 6), (3, 4)]  # end exclusive: tokens 0-1, 1-2, 5, 3
    gold = [(0, 2), (3, 5)]  # tokens 0-1 and 3-4
    # (1,3) vs (0,2): overlap token 1 -> 1 / 3 tokens; (3,4) vs (3,5): 1 / 2
    assert max_iou(spans, gold).tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.5])
    assert max_iou(spans, []).tolist() == [0.0] * 4


def test_iou_scaled_bce_matches_eq_13():
    logits = numpy.asarray([0.5, -1.0, 2.0], dtype="f")
    q = numpy.asarray([1.0, 0.0, 0.0], dtype="f")
    eniou = numpy.asarray([1.0, 0.5, 0.0], dtype="f")
    loss, grad = iou_scaled_bce(numpy, logits, q, eniou, delta=0.25)
    p = [sig(z) for z in logits.tolist()]
    expected = (-0.75 * math.log(p[0]) - 0.25 * 1.5 * math.log(1 - p[1]) - 0.25 * 1.0 * math.log(1 - p[2])) / 3
    assert loss == pytest.approx(expected, rel=1e-5)
    assert grad.tolist() == pytest.approx([-0.75 * (1 - p[0]) / 3, 0.375 * p[1] / 3, 0.25 * p[2] / 3], rel=1e-5)
    plain, _ = binary_cross_entropy(numpy, logits, q)
    assert plain == pytest.approx((-math.log(p[0]) - math.log(1 - p[1]) - math.log(1 - p[2])) / 3, rel=1e-5)


def test_bce_gradient_matches_finite_differences():
    rng = numpy.random.default_rng(0)
    logits = rng.normal(size=5)
    q = numpy.asarray([1, 0, 1, 0, 0], dtype="f")
    eniou = rng.random(5)
    mask = numpy.asarray([1, 1, 0, 1, 1], dtype=bool)
    _, grad = iou_scaled_bce(numpy, logits, q, eniou, 0.25, mask)
    for i in range(5):
        step = numpy.zeros(5)
        step[i] = 1e-6
        up, _ = iou_scaled_bce(numpy, logits + step, q, eniou, 0.25, mask)
        down, _ = iou_scaled_bce(numpy, logits - step, q, eniou, 0.25, mask)
        assert grad[i] == pytest.approx((up - down) / 2e-6, abs=1e-6)
    assert grad[2] == 0.0


def test_pairwise_ranking_loss_matches_eq_7_to_9():
    scores = numpy.asarray([[3.0, 1.0, -0.2], [0.1, 0.4, -1.0]], dtype="f")
    targets = numpy.asarray([0, -1])
    loss, grad = pairwise_ranking_loss(numpy, scores, targets, 2.5, 0.5, 2.0)
    # row 0: gold 0 (score 3), best wrong class 1 (score 1); row 1: negative, best class 1
    l_pos = softplus(2 * (2.5 - 3.0))
    l_neg0 = softplus(2 * (0.5 + 1.0))
    l_neg1 = softplus(2 * (0.5 + 0.4))
    assert loss == pytest.approx((l_pos + l_neg0 + l_neg1) / 2, rel=1e-5)
    expected = numpy.zeros((2, 3))
    expected[0, 0] = -2 * sig(2 * (2.5 - 3.0)) / 2
    expected[0, 1] = 2 * sig(2 * (0.5 + 1.0)) / 2
    expected[1, 1] = 2 * sig(2 * (0.5 + 0.4)) / 2
    assert grad.tolist() == [pytest.approx(row, rel=1e-5) for row in expected.tolist()]


def test_ranking_loss_mask_and_empty():
    scores = numpy.asarray([[1.0, 0.0], [5.0, 0.0]], dtype="f")
    loss, grad = pairwise_ranking_loss(numpy, scores, numpy.asarray([-1, -1]), weights=numpy.asarray([True, False]))
    assert loss == pytest.approx(softplus(2 * 1.5), rel=1e-5)
    assert not grad[1].any()
    loss, grad = pairwise_ranking_loss(numpy, numpy.zeros((0, 2), dtype="f"), numpy.zeros((0,), dtype="int64"))
    assert loss == 0.0 and grad.shape == (0, 2)
