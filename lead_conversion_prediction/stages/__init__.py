"""The pipeline's stages, one module each: read the inputs, call the package's pure functions,
write the outputs. ``dvc.yaml`` runs each through its ``lcp`` command; ``pipeline.py`` runs
them all in one process and overlaps their work.
"""
