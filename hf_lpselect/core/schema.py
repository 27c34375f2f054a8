"""The row schema every stage shares: the statuses an input row can end with, and the column names that are ours.

Light: no third-party import.
"""

from __future__ import annotations

import re

# every input row ends with exactly one of these in rows.parquet and scores.parquet
STATUSES = ("ok", "excluded", "invalid", "duplicate")
# every column hf_lpselect writes into a user's dataset (pushed scores, row numbers); a source column matching it
# is ours, not content: it is left out of content ids and replaced on push
OUR_COLUMNS = re.compile(r"^(lp1|lp_app|lp1_rank|ppl_e\d+|ifd_nll|ifd_ppl|lpselect_[a-z_]+)$")
