"""Tables, strategies and checks the test modules share (no tests here)."""
