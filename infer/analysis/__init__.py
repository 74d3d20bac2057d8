"""The analyst's tools: scoring against truth, change between dates and its scoring, the HTML report."""
