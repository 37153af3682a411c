"""Is the model still right? The training rows' reference profile, the mergeable counts of a
scored batch, the drift statistics between them, the backtest on real outcomes, and the
reports a person reads. Pure: nothing here reads or writes a file."""
