"""Learning tools: one layer by hand, small exact convolutions, quizzes graded."""
