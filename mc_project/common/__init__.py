"""What every layer of corpus shares: its vocabulary and its message helpers."""
