"""N-gram language models: ARPA reading/writing, merging, KenLM querying, CTC shallow fusion, TLG graphs."""
