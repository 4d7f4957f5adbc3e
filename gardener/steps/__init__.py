"""The pure steps of a pass: merge, prune, splice (render), verify, diff, and passes that
strings them together for one pattern."""
