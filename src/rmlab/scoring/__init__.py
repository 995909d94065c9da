"""Scoring (prompt, response) pairs with a reward model: classifiers and DPO implicit rewards.

Each unique pair is scored once, batches are built by length, and scores are cached on disk so that a killed
run resumes where it stopped (:mod:`rmlab.scoring.cache`, :func:`rmlab.scoring.driver.score_pairs`).
"""
