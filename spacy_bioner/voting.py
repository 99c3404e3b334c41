"""Combining the predictions of several entity recognisers (Verma, Bergler & Tahaei 2023, sections 4.4-4.5).

Pure functions: a prediction is ``(start, end, label)`` within one doc (token offsets),
a member's output is a mapping from its predictions to their scores.
"""

from typing import List, Mapping, NamedTuple, Sequence, Tuple

Prediction = Tuple[int, int, str]


class Vote(NamedTuple):
    prediction: Prediction
    votes: int
    score: float  # mean score of the members that made the prediction
    members: Tuple[bool, ...]  # which members made it, in member order
    member_scores: Tuple[float, ...]  # each member's score (0.0 where it did not vote)


def tally(members: Sequence[Mapping[Prediction, float]]) -> List[Vote]:
    """Every prediction of any member with its votes, ordered by position."""
    union = sorted(set().union(*members), key=lambda p: (p[0], p[1], p[2]))
    tallied = []
    for prediction in union:
        voted = tuple(prediction in member for member in members)
        scores = tuple(float(member.get(prediction, 0.0)) for member in members)
        n_votes = sum(voted)
        tallied.append(Vote(prediction, n_votes, sum(scores) / n_votes, voted, scores))
    return tallied


def majority_threshold(n_members: int) -> int:
    """More than floor(n/2) of n members (the paper's MajVote)."""
    return n_members // 2 + 1


def select_by_votes(votes: Sequence[Vote], min_votes: int) -> List[Vote]:
    """The predictions made by at least `min_votes` members (1: the union)."""
    return [vote for vote in votes if vote.votes >= min_votes]
