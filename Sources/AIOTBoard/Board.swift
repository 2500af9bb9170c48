// The board link (filled in by the board issue).
