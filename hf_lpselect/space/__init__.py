"""The Gradio Space's logic, testable without a browser (``spaces/app.py`` wires it to the page).

- :mod:`~hf_lpselect.space.sources`: open a scored dataset (a run directory, a folder materialised
  by ``lpselect push-scores``, or a Hub id of one) as one :class:`~hf_lpselect.space.sources.Scored`;
  select, write and push subsets of it with the library's own functions.
- :mod:`~hf_lpselect.space.page_text`: the plain-words strategy names and the summaries the page shows.
- :mod:`~hf_lpselect.space.estimate`: the row limit and the time estimate shown before scoring.
- :mod:`~hf_lpselect.space.inputs`: what a visitor sends, checked before any work (numbers, the text of
  a source), and the first rows of an uploaded Parquet file read in bounded memory.
- :mod:`~hf_lpselect.space.progress`: a ``TrainerCallback`` that drives ``gr.Progress`` (imports
  transformers: the app loads it only when a dataset is scored).

Nothing here imports gradio, so all of it is tested without a browser.
"""
