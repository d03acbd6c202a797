"""Train-and-evaluate runs: learning curves, the best pass kept, what a cluster gets wrong, comparison."""
