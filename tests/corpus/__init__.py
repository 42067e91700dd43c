"""Generated, labelled corpora for testing the sensitivity detectors."""
