"""The candidate shortlist: which patterns a pattern may link to, ranked by BM25
over their text and by the human graph; and the one text folding (case,
plurals, filler words) every stage compares words with.

Takes patterns (``gardener.model``); gives ranked candidates.
"""
