"""Small pieces every other fareway package shares: the error tree and the clock."""
