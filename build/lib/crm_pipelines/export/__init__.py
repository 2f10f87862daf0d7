"""Export batches, their gates and the write ledger: plain Python over DataFrames."""
