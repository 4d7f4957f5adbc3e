"""People decide: the rejection ledger, promotion, the review branch, git and GitHub."""
