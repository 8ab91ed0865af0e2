"""Learning tools: one layer by hand, small exact convolutions, quizzes graded."""

from enum import Enum


class PoolMode(str, Enum):
    """Which pooling `cnncalc pool` computes by hand (`learn.numeric.pool`). Here, not in numeric,
    so the CLI can offer it without importing numeric at start-up."""

    MAX = "max"
    AVG = "avg"
