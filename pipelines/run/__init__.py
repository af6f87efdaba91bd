"""One run of the study: the run function, its Prefect flow, the cache and the run folder."""
