"""Grading of lab submissions: read, replay, compare, evaluate, give feedback.

- submission.py  read a folder or .zip into memory (bytes travel to workers)
- replay.py      re-run session.json headless; compare with the CSVs; the tolerance
- grader.py      one submission -> Grade (and the session it was evaluated on)
- feedback.py    one HTML page per submission with a depth-profile picture
"""
