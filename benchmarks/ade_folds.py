"""ADE's cross-validation folds have no dev split: the benchmarks hold out the last
10% of a fold's training records (the fold files are already shuffled), so that every
benchmark that chooses on ADE dev chooses on the same sentences."""

from typing import List, Sequence, Tuple, TypeVar

ADE_DEV_SHARE = 0.1

Record = TypeVar("Record")


def hold_out_dev(train: Sequence[Record]) -> Tuple[List[Record], List[Record]]:
    """(train, dev): the last ADE_DEV_SHARE of `train` becomes dev."""
    n_dev = int(len(train) * ADE_DEV_SHARE)
    return list(train[: len(train) - n_dev]), list(train[len(train) - n_dev :])
