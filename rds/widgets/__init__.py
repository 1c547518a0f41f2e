"""ipywidgets and offline HTML for notebooks: the owner's review desk, the scientist's
request tracker, and the reprs of rds objects.
"""
