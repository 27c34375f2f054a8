"""From scores to subsets: strategies, clusters, agreement between runs, reports."""
